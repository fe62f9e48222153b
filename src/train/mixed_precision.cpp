#include "train/mixed_precision.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "core/json_util.h"
#include "kernels/matmul.h"

namespace dseek {

using json = nlohmann::json;

std::string_view train_precision_name(TrainPrecision p) {
  switch (p) {
    case TrainPrecision::BF16: return "bf16";
    case TrainPrecision::FP8: return "fp8";
    case TrainPrecision::F16: return "fp16";
    default: return "f32";
  }
}

Precision PrecisionSettings::products() const {
  return precision == TrainPrecision::BF16 || precision == TrainPrecision::FP8 ? Precision::BF16 : Precision::F32;
}

void PrecisionSettings::write(json& j) const {
  j["precision"] = std::string(train_precision_name(precision));
  j["fp8_scales"] = fp8_tensor_scales ? "tensor" : "tile";
  j["fp8_pow2_scales"] = fp8_pow2_scales;
  j["loss_scale"] = loss_scale;
  j["loss_scale_window"] = loss_scale_window;
  j["moments"] = bf16_moments ? "bf16" : "f32";
}

void PrecisionSettings::read(const json& j, const std::string& origin) {
  std::string p(train_precision_name(precision)), scales = fp8_tensor_scales ? "tensor" : "tile",
      moments = bf16_moments ? "bf16" : "f32";
  read_field(j, "precision", p, origin);
  read_field(j, "fp8_scales", scales, origin);
  read_field(j, "fp8_pow2_scales", fp8_pow2_scales, origin);
  read_field(j, "loss_scale", loss_scale, origin);
  read_field(j, "loss_scale_window", loss_scale_window, origin);
  read_field(j, "moments", moments, origin);
  if (p == "auto") precision = native_bf16_products() ? TrainPrecision::BF16 : TrainPrecision::F32;
  else if (p == "f32") precision = TrainPrecision::F32;
  else if (p == "bf16") precision = TrainPrecision::BF16;
  else if (p == "fp8") precision = TrainPrecision::FP8;
  else if (p == "fp16" || p == "f16") precision = TrainPrecision::F16;
  else fail("{}: must be f32, bf16, fp8, fp16 or auto, got '{}'", setting_name(origin, "precision"), p);
  if (scales != "tile" && scales != "tensor")
    fail("{}: must be tile or tensor, got '{}'", setting_name(origin, "fp8_scales"), scales);
  fp8_tensor_scales = scales == "tensor";
  if (moments != "f32" && moments != "bf16")
    fail("{}: must be f32 or bf16, got '{}'", setting_name(origin, "moments"), moments);
  bf16_moments = moments == "bf16";
  if (!(loss_scale >= 0) || !std::isfinite(loss_scale))
    fail("{}: must be a number >= 0 (0: no loss scaling), got {}", setting_name(origin, "loss_scale"), loss_scale);
  if (loss_scale_window < 1)
    fail("{}: must be at least 1, got {}", setting_name(origin, "loss_scale_window"), loss_scale_window);
}

const std::vector<std::pair<std::string, std::string>>& precision_setting_flags() {
  static const std::vector<std::pair<std::string, std::string>> flags{
      {"precision",
       "Products: f32; bf16 (emulated, slower, without CPU BF16 support); fp8 = DeepSeek-V3's fine-grained FP8 "
       "Linears, the rest BF16; fp16 = F16 Linears with dynamic loss scaling; auto = bf16 where the CPU has BF16 "
       "products (docs/low-precision.md)"},
      {"fp8_scales", "fp8: tile (1x128 activations and gradients, 128x128 weight blocks) or tensor (one scale each)"},
      {"fp8_pow2_scales", "fp8: true rounds every scale up to a power of two (UE8M0, as DeepSeek-V3.1)"},
      {"loss_scale", "fp16: initial dynamic loss scale (0: no loss scaling)"},
      {"loss_scale_window", "fp16: clean steps after which the loss scale doubles"},
      {"moments", "AdamW moments stored as f32 or bf16"}};
  return flags;
}

// ---------------------------------------------------------------------------------------------------------

MixedPrecision::MixedPrecision(const PrecisionSettings& s, const ModelConfig& c, ModelWeights& master)
    : s_(s), c_(c), master_(master), compute_(master) {
  if (s_.precision == TrainPrecision::FP8 || s_.precision == TrainPrecision::F16) {
    recipe_ = std::make_unique<LowPrecisionRecipe>();
    recipe_->format = s_.precision == TrainPrecision::FP8 ? LowpFormat::FP8 : LowpFormat::F16;
    recipe_->tensor_scales = s_.fp8_tensor_scales;
    recipe_->pow2_scales = s_.fp8_pow2_scales;
  }
  if (s_.loss_scaling()) scale_ = s_.loss_scale;
  refresh();
}

void MixedPrecision::refresh() {
  if (s_.precision == TrainPrecision::F32) return;
  std::vector<ParamRef> src, dst;
  const ParamOptions po{!master_.mtp.empty()};
  for_each_param(c_, master_, [&](ParamRef& p) { if (p.role == ParamRole::Matrix) src.push_back(p); }, po);
  for_each_param(c_, compute_, [&](ParamRef& p) { if (p.role == ParamRole::Matrix) dst.push_back(p); }, po);
  DSEEK_CHECK(src.size() == dst.size(), "compute copy: parameter lists differ");
  for (size_t i = 0; i < src.size(); i++) {
    const Tensor& w = *src[i].tensor;
    Linear& l = *dst[i].linear;
    const int64_t R = w.dim(0), C = w.dim(1);
    // the output head (and the MTP blocks' shared head) stays out of the recipe: BF16 products
    const bool head = src[i].name.find("head") != std::string::npos;
    auto fresh = [&](DType t) {
      if (l.weight.dtype != t || l.weight.data == w.data) l.weight = Tensor::empty(t, w.shape);
    };
    if (s_.precision == TrainPrecision::BF16 || head) {
      fresh(DType::BF16);
      convert_from_f32(w.f32(), DType::BF16, l.weight.data, size_t(w.numel()));
      continue;
    }
    l.recipe = recipe_.get();
    if (s_.precision == TrainPrecision::F16) {
      fresh(DType::F16);
      convert_from_f32(w.f32(), DType::F16, l.weight.data, size_t(w.numel()));
      continue;
    }
    const int64_t br = s_.fp8_tensor_scales ? R : recipe_->tile, bc = s_.fp8_tensor_scales ? C : recipe_->tile;
    if (s_.fp8_pow2_scales) {
      // q 2^k is exact in BF16: keep the dequantised weight as BF16 so the products run as BF16 GEMMs
      std::vector<float> dq(static_cast<size_t>(w.numel()));
      fp8_round_blocks(w.f32(), R, C, C, dq.data(), C, br, bc, true);
      fresh(DType::BF16);
      convert_from_f32(dq.data(), DType::BF16, l.weight.data, dq.size());
      l.scale_inv = Tensor{};
      continue;
    }
    fresh(DType::F8_E4M3);
    const Shape sshape{(R + br - 1) / br, (C + bc - 1) / bc};
    if (!l.scale_inv.data || l.scale_inv.shape != sshape) l.scale_inv = Tensor::empty(DType::F32, sshape);
    l.block_rows = br;
    l.block_cols = bc;
    fp8_quantize_blocks(w.f32(), R, C, C, br, bc, false, l.weight.as<uint8_t>(), l.scale_inv.f32());
  }
  bind_shared_tensors(c_, compute_);
}

bool MixedPrecision::unscale(AdamW& opt, int64_t grad_accum) {
  const double f = 1.0 / (scale_ * double(grad_accum));
  if (f != 1.0) opt.scale_grads(float(f));
  last_skipped_ = false;
  if (!s_.loss_scaling()) return true;
  if (!std::isfinite(opt.grad_norm())) {
    scale_ *= 0.5;
    clean_steps_ = 0;
    skipped_++;
    last_skipped_ = true;
    return false;
  }
  if (++clean_steps_ >= s_.loss_scale_window) {
    scale_ *= 2.0;
    clean_steps_ = 0;
  }
  return true;
}

void MixedPrecision::add_metrics(json& rec) {
  if (s_.loss_scaling()) {
    rec["loss_scale"] = scale_;
    rec["skipped_steps"] = skipped_;
    if (last_skipped_) rec["step_skipped"] = true;
  }
  if (!recipe_) return;
  auto frac = [](const std::atomic<int64_t>& n, const std::atomic<int64_t>& of) {
    return of.load() > 0 ? double(n.load()) / double(of.load()) : 0.0;
  };
  LowpCounts& a = recipe_->activations;
  LowpCounts& g = recipe_->gradients;
  rec["act_underflow"] = frac(a.underflow, a.values);
  rec["act_saturated"] = frac(a.saturated, a.values);
  rec["grad_underflow"] = frac(g.underflow, g.values);
  rec["grad_saturated"] = frac(g.saturated, g.values);
  reset_counts();
}

void MixedPrecision::reset_counts() {
  if (!recipe_) return;
  recipe_->activations.reset();
  recipe_->gradients.reset();
}

std::vector<int64_t> overflow_injection_steps() {
  std::vector<int64_t> out;
  const char* e = std::getenv("DSEEK_TEST_OVERFLOW_STEPS");
  if (!e) return out;
  std::string s(e);
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    try {
      out.push_back(std::stoll(s.substr(pos, end - pos)));
    } catch (...) {
      fail("DSEEK_TEST_OVERFLOW_STEPS: expected comma-separated step numbers, got '{}'", s);
    }
    pos = end + 1;
  }
  return out;
}

json MixedPrecision::state() const {
  if (!s_.loss_scaling()) return json();
  return json{{"scale", scale_}, {"clean_steps", clean_steps_}, {"skipped_steps", skipped_}};
}

void MixedPrecision::restore(const json& st) {
  if (!s_.loss_scaling() || !st.contains("loss_scaler")) return;
  const json& j = st["loss_scaler"];
  read_field(j, "scale", scale_, "trainer_state.json loss_scaler");
  read_field(j, "clean_steps", clean_steps_, "trainer_state.json loss_scaler");
  read_field(j, "skipped_steps", skipped_, "trainer_state.json loss_scaler");
}

}  // namespace dseek
