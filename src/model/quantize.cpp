#include "model/quantize.h"

#include <algorithm>
#include <cmath>

#include "kernels/lowp.h"
#include "kernels/matmul.h"

namespace dseek {

Linear quantize_fp8(const Tensor& weight, int64_t br, int64_t bc) {
  const Tensor w = weight.dtype == DType::F32 ? weight : weight.to(DType::F32);
  const int64_t rows = w.dim(0), cols = w.dim(1);
  const int64_t nbr = (rows + br - 1) / br, nbc = (cols + bc - 1) / bc;
  Linear l;
  l.weight = Tensor::empty(DType::F8_E4M3, {rows, cols});
  l.scale_inv = Tensor::empty(DType::F32, {nbr, nbc});
  l.block_rows = br;
  l.block_cols = bc;
  // scale_inv = amax / 448 per block, q = e4m3(w / scale_inv): the same quantiser as FP8 training
  fp8_quantize_blocks(w.f32(), rows, cols, cols, br, bc, false, l.weight.as<uint8_t>(), l.scale_inv.f32());
  return l;
}

namespace {
// Every projection of the decoder layers and MTP modules (not the embedding, the lm_head or the router).
template <class F>
void for_each_projection(Model& m, F&& f) {
  for_each_param(m.config, m.w, [&](ParamRef& p) {
    if (p.linear && p.name != "lm_head.weight") f(*p.linear);
  }, ParamOptions{!m.w.mtp.empty()});
}
}  // namespace

void quantize_model_fp8(Model& m, int64_t br, int64_t bc) {
  for_each_projection(m, [&](Linear& l) {
    Tensor bias = l.bias;
    l = quantize_fp8(l.weight, br, bc);
    l.bias = bias;
  });
  m.config.quantization.fp8 = true;
  m.config.quantization.block_rows = br;
  m.config.quantization.block_cols = bc;
}

void dequantize_model(Model& m) {
  for_each_projection(m, [&](Linear& l) {
    if (l.weight.dtype != DType::F8_E4M3) return;
    Tensor f = Tensor::empty(DType::F32, l.weight.shape);
    MatRef::of(l).rows_to_f32(0, l.out(), f.f32());
    l.weight = f;
    l.scale_inv = Tensor{};
  });
  m.config.quantization.fp8 = false;
}

void widen_model_f32(Model& m) {
  for_each_param(m.config, m.w, [&](ParamRef& p) {
    if (p.tensor && p.tensor->data && (p.tensor->dtype == DType::BF16 || p.tensor->dtype == DType::F16))
    {
      *p.tensor = p.tensor->to(DType::F32);
      if (p.linear) p.linear->weight = *p.tensor;
    }
  }, ParamOptions{!m.w.mtp.empty()});
  bind_shared_tensors(m.config, m.w);
}

}  // namespace dseek
