// dseek logits: the conformance interface. Reads I32 `tokens` [B, T], writes F32 `logits` [B, T, V].
#include "cli/commands.h"
#include "core/error.h"
#include "formats/safetensors.h"
#include "inference/forward.h"
#include "model/quantize.h"

namespace dseek::cli {

void add_logits(CLI::App& app) {
  struct Opts {
    std::string model, input, output, attn = "auto", precision = "f32";
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
  sub->add_option("--precision", o->precision,
                  "f32: widen BF16/F16 weights so every product is float32 (as transformers computes a checkpoint "
                  "loaded in float32); weights: products in the weights' own dtype (the fast path generate uses)")
      ->check(CLI::IsMember({"f32", "weights"}))->default_val("f32");
  add_threads_flag(*sub, o->threads);
  sub->callback([o] {
    apply_threads(o->threads);
    SafetensorsFile in = SafetensorsFile::open(o->input);
    if (!in.contains("tokens")) fail("{}: no tensor named 'tokens'", o->input);
    Tensor tokens = in.get("tokens");
    if (tokens.dtype != DType::I32 || tokens.ndim() != 2)
      fail("{}: 'tokens' must be I32 [B, T], got {}", o->input, tokens.desc());
    Model m = Model::load(o->model);
    if (o->precision == "f32") widen_model_f32(m);
    ForwardOptions fo;
    fo.attn = o->attn == "expanded" ? AttnImpl::Expanded : o->attn == "absorbed" ? AttnImpl::Absorbed : AttnImpl::Auto;
    Forward fwd(m, fo);
    const int64_t B = tokens.dim(0), T = tokens.dim(1), V = m.config.vocab_size;
    std::vector<float> out = sequence_logits(fwd, tokens.as<int32_t>(), B, T, o->decode);
    Tensor logits = Tensor::empty(DType::F32, {B, T, V});
    std::copy(out.begin(), out.end(), logits.f32());
    save_safetensors(o->output, {{"logits", logits}});
  });
}

}  // namespace dseek::cli
