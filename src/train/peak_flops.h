// The MFU denominator: this machine's sustained GEMM FLOP/s for a precision and thread count, measured once and
// cached in $DSEEK_CACHE_DIR (default $XDG_CACHE_HOME/dseek or ~/.cache/dseek)/peak_flops.json. A measurement
// taken while the machine was busy reads low, so a training step that runs faster than the cached peak raises it:
// MFU never shows more than 100%.
#pragma once
#include <string>

#include "core/precision.h"

namespace dseek {

class PeakFlops {
 public:
  // The cached peak for `p` at the current thread count, measured (best of five 0.1 s runs) when absent.
  explicit PeakFlops(Precision p);
  double value() const { return peak_; }
  // Model FLOP utilisation of `flops_per_s`, raising (and caching) the peak when `flops_per_s` exceeds it.
  double utilisation(double flops_per_s);

 private:
  std::string key_;
  double peak_ = 0;
};

}  // namespace dseek
