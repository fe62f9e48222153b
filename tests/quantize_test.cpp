// dseek quantize: DeepSeek-V3's FP8 checkpoint format (E4M3 projections with 128 x 128 block scales) and back to
// BF16, checked with a hand-written E4M3 decoder and BF16 rounding, and against DeepSeek's reference logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/fileio.h"
#include "formats/safetensors.h"
#include "inference/forward.h"
#include "model/model.h"
#include "numeric_util.h"
#include "test_util.h"

namespace dseek {
namespace {

using test::e4m3;
float bf16_round(float f) {  // round to nearest even, as torch.bfloat16
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}
float bf16_value(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct Quantize : ::testing::Test {
  std::string ref = test::shared_dir() + "/conformance/v3-tiny";
  test::TempDir d;
};

TEST_F(Quantize, Fp8CheckpointHoldsBlockScaledE4M3WithinHalfAStepOfTheWeights) {
  test::CommandResult r = test::run_dseek("quantize --model '" + ref + "' --to fp8 --out '" + d / "fp8" + "' --block 32");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json config = nlohmann::json::parse(read_file(d / "fp8/config.json"));
  EXPECT_EQ(config["quantization_config"]["quant_method"], "fp8");
  EXPECT_EQ(config["quantization_config"]["fmt"], "e4m3");
  EXPECT_EQ(config["quantization_config"]["weight_block_size"], (nlohmann::json{32, 32}));
  const WeightFiles orig = WeightFiles::open(ref), fp8 = WeightFiles::open(d / "fp8");
  int quantised = 0;
  for (const std::string& name : orig.names()) {
    const Tensor w = orig.get(name);
    const Tensor q = fp8.get(name);
    // the projections (q_a_proj, kv_a_proj_with_mqa, o_proj, experts' gate/up/down_proj, ...), not the
    // embedding, head, router or norms
    const bool projection = name.find("_proj") != std::string::npos && name.ends_with(".weight");
    ASSERT_EQ(q.dtype == DType::F8_E4M3, projection) << name << " " << q.desc();
    if (!projection) continue;
    quantised++;
    const Tensor s = fp8.get(name + "_scale_inv");
    const int64_t rows = w.dim(0), cols = w.dim(1);
    ASSERT_EQ(s.shape, (Shape{(rows + 31) / 32, (cols + 31) / 32})) << name;
    const Tensor wf = w.dtype == DType::F32 ? w : w.to(DType::F32);
    for (int64_t br = 0; br < s.dim(0); br++)
      for (int64_t bc = 0; bc < s.dim(1); bc++) {
        const double scale = s.as<float>()[br * s.dim(1) + bc];
        double amax = 0;
        for (int64_t i = br * 32; i < std::min(rows, br * 32 + 32); i++)
          for (int64_t j = bc * 32; j < std::min(cols, bc * 32 + 32); j++) amax = std::max(amax, std::abs(double(wf.f32()[i * cols + j])));
        EXPECT_NEAR(scale, amax / 448, 1e-6 * amax) << name;  // the block's largest weight maps to E4M3's 448
        for (int64_t i = br * 32; i < std::min(rows, br * 32 + 32); i++)
          for (int64_t j = bc * 32; j < std::min(cols, bc * 32 + 32); j++) {
            const double x = wf.f32()[i * cols + j] / scale, v = e4m3(q.as<uint8_t>()[i * cols + j]);
            // round to nearest: at most half a step of E4M3 (3 mantissa bits; 2^-9 apart below 2^-6)
            const double half_step = std::abs(x) < std::ldexp(1.0, -6) ? std::ldexp(1.0, -10)
                                                                       : std::ldexp(1.0, int(std::floor(std::log2(std::abs(x)))) - 4);
            ASSERT_LE(std::abs(v - x), half_step * (1 + 1e-6)) << name << " [" << i << ", " << j << "]";
          }
      }
  }
  EXPECT_GT(quantised, 10);
}

TEST_F(Quantize, Fp8LogitsStayCloseToDeepSeeksReferenceAndBf16HoldsTheDequantisedValues) {
  ASSERT_EQ(test::run_dseek("quantize --model '" + ref + "' --to fp8 --out '" + d / "fp8" + "'").status, 0);
  test::CommandResult r = test::run_dseek("quantize --model '" + d / "fp8" + "' --to bf16 --out '" + d / "bf16" + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  // the FP8 model's logits are the reference's up to the quantisation error (F32 weights match to 7e-6)
  SafetensorsFile expected = SafetensorsFile::open(ref + "/expected.safetensors");
  const Tensor tokens = expected.get("tokens"), logits = expected.get("logits");
  Model m = Model::load(d / "fp8");
  Forward fwd(m);
  const std::vector<float> got = sequence_logits(fwd, tokens.as<int32_t>(), tokens.dim(0), tokens.dim(1), false);
  ASSERT_EQ(int64_t(got.size()), logits.numel());
  double err = 0, norm = 0;
  for (size_t i = 0; i < got.size(); i++) {
    const double e = logits.f32()[i];
    err += (got[i] - e) * (got[i] - e);
    norm += e * e;
  }
  // E4M3 rounds each weight by up to 2^-4 of itself (about 3.6% RMS); through the layers of this small random
  // model that is about 17% of the logits' RMS. A wrong scale or sign would be 100% or more.
  EXPECT_LT(std::sqrt(err / norm), 0.25) << "relative RMS error of the FP8 logits";
  EXPECT_GT(std::sqrt(err / norm), 1e-4) << "the FP8 weights were not used";
  // every BF16 projection is its E4M3 value times the block scale, rounded to BF16
  const WeightFiles fp8 = WeightFiles::open(d / "fp8"), bf16 = WeightFiles::open(d / "bf16");
  EXPECT_FALSE(nlohmann::json::parse(read_file(d / "bf16/config.json")).contains("quantization_config"));
  for (const std::string& name : fp8.names()) {
    if (name.find("_scale_inv") != std::string::npos) continue;
    const Tensor q = fp8.get(name), b = bf16.get(name);
    if (q.dtype != DType::F8_E4M3) continue;
    ASSERT_EQ(b.dtype, DType::BF16) << name;
    const Tensor s = fp8.get(name + "_scale_inv");
    const int64_t cols = q.dim(1);
    for (int64_t i = 0; i < q.numel(); i++) {
      const float scale = s.as<float>()[(i / cols) / 128 * s.dim(1) + (i % cols) / 128];
      ASSERT_EQ(bf16_value(b.as<uint16_t>()[i]), bf16_round(float(e4m3(q.as<uint8_t>()[i]) * scale))) << name << " " << i;
    }
  }
  // the folder stays complete and a non-empty --out is refused
  r = test::run_dseek("quantize --model '" + ref + "' --to fp8 --out '" + d / "fp8" + "'");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--out " + d / "fp8" + ": exists and is not empty"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace dseek
