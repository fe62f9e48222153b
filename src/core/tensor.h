// Tensor: a typed, shaped view of memory that it may share ownership of (heap buffer or mapped file).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace dseek {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

struct Tensor {
  DType dtype = DType::F32;
  Shape shape;
  void* data = nullptr;
  std::shared_ptr<void> owner;  // keeps `data` alive

  static Tensor empty(DType dtype, Shape shape);  // 64-byte aligned, uninitialised
  static Tensor zeros(DType dtype, Shape shape);
  // A view over memory owned by `owner` (never copied).
  static Tensor view(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner);

  bool defined() const { return data != nullptr || !shape.empty(); }
  int ndim() const { return int(shape.size()); }
  int64_t dim(int i) const { return shape[i < 0 ? shape.size() + i : i]; }
  int64_t numel() const { return shape_numel(shape); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  template <class T>
  T* as() { return static_cast<T*>(data); }
  template <class T>
  const T* as() const { return static_cast<const T*>(data); }
  float* f32() { return as<float>(); }
  const float* f32() const { return as<float>(); }

  Tensor clone() const;                 // deep copy, same dtype
  Tensor to(DType dtype) const;         // converted deep copy (float types)
  std::string desc() const;             // "BF16[128, 512]"
};

// 64-byte aligned heap buffer of `bytes` bytes.
std::shared_ptr<void> aligned_buffer(size_t bytes);

}  // namespace dseek
