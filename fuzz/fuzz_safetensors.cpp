// safetensors reader: any bytes as a .safetensors file; every tensor it accepts is read in full.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "formats/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = dseek::fuzz::write_temp(data, size, "x.safetensors");
  try {
    dseek::SafetensorsFile f = dseek::SafetensorsFile::open(path);
    for (const auto& name : f.names()) {
      (void)f.info(name);
      dseek::Tensor t = f.get(name);
      const auto* p = static_cast<const volatile uint8_t*>(t.data);
      uint8_t acc = 0;
      for (size_t i = 0; i < t.nbytes(); i++) acc ^= p[i];  // ASan sees any read outside the file
      (void)acc;
    }
    dseek::WeightFiles w = dseek::WeightFiles::open(path);
    for (const auto& name : w.names()) (void)w.info(name);
  } catch (const dseek::Error&) {
  }
  return 0;
}
