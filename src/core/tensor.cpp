#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace dseek {

std::string shape_str(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::shared_ptr<void> aligned_buffer(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  if (!p) fail("out of memory allocating {} bytes", bytes);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  for (int64_t d : shape) DSEEK_CHECK(d >= 0, "negative dimension in shape {}", shape_str(shape));
  Tensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.owner = aligned_buffer(t.nbytes());
  t.data = t.owner.get();
  return t;
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  Tensor t = empty(dtype, std::move(shape));
  std::memset(t.data, 0, t.nbytes());
  return t;
}

Tensor Tensor::view(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner) {
  Tensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data = data;
  t.owner = std::move(owner);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(dtype, shape);
  if (nbytes()) std::memcpy(t.data, data, nbytes());
  return t;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype) return clone();
  Tensor t = empty(target, shape);
  if (target == DType::F32) {
    convert_to_f32(dtype, data, t.f32(), size_t(numel()));
  } else {
    DSEEK_CHECK(dtype == DType::F32, "conversion {} -> {} is not supported", dtype_name(dtype), dtype_name(target));
    convert_from_f32(f32(), target, t.data, size_t(numel()));
  }
  return t;
}

std::string Tensor::desc() const { return fmt::format("{}{}", dtype_name(dtype), shape_str(shape)); }

}  // namespace dseek
