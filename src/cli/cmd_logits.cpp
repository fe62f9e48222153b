// dseek logits: the conformance interface. Reads I32 `tokens` [B, T], writes F32 `logits` [B, T, V].
#include "cli/commands.h"
#include "core/error.h"
#include "formats/safetensors.h"
#include "inference/forward.h"

namespace dseek::cli {

void add_logits(CLI::App& app) {
  struct Opts {
    std::string model, input, output, attn = "auto";
    bool decode = false;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("logits", "Compute logits for every position of token sequences (safetensors in/out)");
  sub->add_option("--model", o->model, "Model folder or training run")->required();
  sub->add_option("--input", o->input, "safetensors file with I32 tensor 'tokens' [B, T]")->required();
  sub->add_option("--output", o->output, "safetensors file to write with F32 'logits' [B, T, V]")->required();
  sub->add_flag("--decode", o->decode, "Feed each sequence one token per step through the KV cache");
  sub->add_option("--attn", o->attn, "Attention formulation: auto, expanded, absorbed")
      ->check(CLI::IsMember({"auto", "expanded", "absorbed"}))->default_val("auto");
  add_threads_flag(*sub, o->threads);
  sub->callback([o] {
    apply_threads(o->threads);
    SafetensorsFile in = SafetensorsFile::open(o->input);
    if (!in.contains("tokens")) fail("{}: no tensor named 'tokens'", o->input);
    Tensor tokens = in.get("tokens");
    if (tokens.dtype != DType::I32 || tokens.ndim() != 2)
      fail("{}: 'tokens' must be I32 [B, T], got {}", o->input, tokens.desc());
    Model m = Model::load(o->model);
    ForwardOptions fo;
    fo.attn = o->attn == "expanded" ? AttnImpl::Expanded : o->attn == "absorbed" ? AttnImpl::Absorbed : AttnImpl::Auto;
    Forward fwd(m, fo);
    const int64_t B = tokens.dim(0), T = tokens.dim(1), V = m.config.vocab_size;
    Tensor logits = Tensor::empty(DType::F32, {B, T, V});
    std::vector<KVCache> caches;
    for (int64_t b = 0; b < B; b++) caches.push_back(fwd.new_cache(T));
    const int32_t* tk = tokens.as<int32_t>();
    if (!o->decode) {
      std::vector<SeqChunk> chunks;
      for (int64_t b = 0; b < B; b++) chunks.push_back({&caches[size_t(b)], tk + b * T, T});
      fwd.run(chunks, true, logits.f32());
    } else {
      std::vector<float> step(size_t(B * V));
      for (int64_t t = 0; t < T; t++) {
        std::vector<SeqChunk> chunks;
        for (int64_t b = 0; b < B; b++) chunks.push_back({&caches[size_t(b)], tk + b * T + t, 1});
        fwd.run(chunks, false, step.data());
        for (int64_t b = 0; b < B; b++)
          std::copy(step.begin() + b * V, step.begin() + (b + 1) * V, logits.f32() + (b * T + t) * V);
      }
    }
    save_safetensors(o->output, {{"logits", logits}});
  });
}

}  // namespace dseek::cli
