// The "chat" data kind of training runs (sft, distill): conversations rendered with the run's tokenizer, loss on
// assistant tokens only, packed; with a teacher, its top-k next-token distributions as soft targets.
#include "core/error.h"
#include "posttrain/distill.h"
#include "posttrain/sft_data.h"
#include "tokenizer/tokenizer.h"
#include "train/data_source.h"

namespace dseek {
namespace {

RunData open_chat(const DataSpec& spec, const ModelConfig& c, const DataRequest& req) {
  Tokenizer tok = Tokenizer::load(spec.tokenizer);
  std::vector<Conversation> train, val;
  load_conversations(spec.path, tok, spec.val_fraction, train, val);
  for (const auto& conv : train)
    for (int32_t id : conv.ids)
      if (id >= c.vocab_size) fail("{}: token id {} exceeds the model's vocab_size {}", spec.path, id, c.vocab_size);
  const int32_t pad = tok.eos_id() >= 0 ? tok.eos_id() : 0;
  RunData d;
  d.train = std::make_unique<ChatSource>(std::move(train), req.seed, pad);
  if (!spec.teacher.empty()) d.train = std::make_unique<DistillSource>(std::move(d.train), spec.teacher, spec.teacher_top_k);
  if (!val.empty() && req.eval_batches > 0) {
    d.val = pack_conversations(val, req.batch_size, req.seq_len, pad);
    if (int64_t(d.val.size()) > req.eval_batches) d.val.resize(size_t(req.eval_batches));
  }
  return d;
}

const bool kChatRegistered = register_data_kind("chat", open_chat);

}  // namespace
}  // namespace dseek
