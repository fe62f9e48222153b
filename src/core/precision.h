// Precision of the matrix products of a training or inference run (weights and master copies are separate:
// F32 master weights may be multiplied as BF16 copies).
#pragma once
#include <string_view>

namespace dseek {

enum class Precision {
  F32,   // F32 operands
  BF16,  // BF16 operands, F32 accumulation and output
};

inline std::string_view precision_name(Precision p) { return p == Precision::BF16 ? "bf16" : "f32"; }

}  // namespace dseek
