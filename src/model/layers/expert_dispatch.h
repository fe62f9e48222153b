// DeepSeekMoE's token movement: dispatch groups the routed (row, slot) pairs by expert and gathers their inputs;
// combine adds each expert output back to its row, weighted by the routing weight. This is the seam where
// expert parallelism plugs in: an all-to-all implementation sends rows to the ranks that own their experts and
// brings the outputs back, with the same interface. LocalDispatch keeps every expert in this process.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/lowp.h"

#include "model/router.h"

namespace dseek {

// The rows one expert computes (inputs padded with zero rows to `nb`, a bounded set of GEMM shapes).
struct ExpertBatch {
  int64_t expert = 0, n = 0, nb = 0;
  std::vector<int32_t> rows, slots;    // source row and routing slot of each of the n rows
  std::vector<float> x, g, u, h, y;    // [nb, D] inputs, [nb, I] gate/up/product, [nb, D] outputs
  Fp8Matrix xq, gq, uq;                // FP8 activation cache: x, g, u in FP8 instead (then x, g, u, h empty)
};

class ExpertDispatch {
 public:
  virtual ~ExpertDispatch() = default;
  // x [R, D] -> one batch per expert that received rows, in expert order.
  virtual void dispatch(const Routing& rt, const float* x, int64_t D, std::vector<ExpertBatch>& out) = 0;
  // y[r] += sum over r's slots of weight[r, k] * output (experts in index order: deterministic).
  virtual void combine(const Routing& rt, const std::vector<ExpertBatch>& batches, int64_t D, float* y) = 0;
  // Backward of combine: dye per batch [nb, D] = weight * dy[row]; dweight[r, k] = dy[r] . output.
  virtual void combine_backward(const Routing& rt, const std::vector<ExpertBatch>& batches, const float* dy, int64_t D,
                                std::vector<std::vector<float>>& dye, float* dweight) = 0;
  // Backward of dispatch: dx[row] += dxe rows of each batch.
  virtual void dispatch_backward(const std::vector<ExpertBatch>& batches, const std::vector<std::vector<float>>& dxe,
                                 int64_t D, float* dx) = 0;
};

class LocalDispatch : public ExpertDispatch {
 public:
  void dispatch(const Routing& rt, const float* x, int64_t D, std::vector<ExpertBatch>& out) override;
  void combine(const Routing& rt, const std::vector<ExpertBatch>& batches, int64_t D, float* y) override;
  void combine_backward(const Routing& rt, const std::vector<ExpertBatch>& batches, const float* dy, int64_t D,
                        std::vector<std::vector<float>>& dye, float* dweight) override;
  void dispatch_backward(const std::vector<ExpertBatch>& batches, const std::vector<std::vector<float>>& dxe, int64_t D,
                         float* dx) override;
};

// The process-wide local dispatcher (stateless).
ExpertDispatch& local_dispatch();

}  // namespace dseek
