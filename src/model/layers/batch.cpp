#include "model/layers/batch.h"

namespace dseek {

TrainShape TrainShape::dense(int64_t B, int64_t T) {
  TrainShape s;
  s.B = B;
  s.T = T;
  s.positions.resize(static_cast<size_t>(B * T));
  for (int64_t r = 0; r < B * T; r++) s.positions[size_t(r)] = int32_t(r % T);
  return s;
}

RowBatch RowBatch::of(const TrainShape& s) {
  RowBatch b;
  b.rows = s.rows();
  b.positions = s.positions.data();
  b.seqs = s.B;
  b.T = s.T;
  b.key_begin = s.key_begin.empty() ? nullptr : s.key_begin.data();
  return b;
}

RowBatch RowBatch::of(const std::vector<SeqChunk>& chunks, const std::vector<int64_t>& row0, const int32_t* positions) {
  RowBatch rb;
  rb.rows = row0.back();
  rb.positions = positions;
  rb.chunks = &chunks;
  rb.row0 = &row0;
  return rb;
}

}  // namespace dseek
