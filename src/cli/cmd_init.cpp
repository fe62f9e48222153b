#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fileio.h"
#include "inference/generation_config.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace dseek::cli {

void add_init(CLI::App& app) {
  struct Opts {
    std::string config, out, dtype = "f32", tokenizer;
    uint64_t seed = 0;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand("init", "Write a randomly initialised checkpoint (config.json + model.safetensors)");
  sub->add_option("--config", o->config, "Model config.json (DeepseekV2/V3ForCausalLM)")->required();
  sub->add_option("--out", o->out, "Output folder")->required();
  sub->add_option("--seed", o->seed, "Random seed")->default_val(0);
  sub->add_option("--dtype", o->dtype, "Weight dtype: f32 or bf16")->check(CLI::IsMember({"f32", "bf16"}))->default_val("f32");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.json (or its folder) to copy into the model folder");
  add_threads_flag(*sub, o->threads);
  sub->callback([o] {
    apply_threads(o->threads);
    ModelConfig c = ModelConfig::load(o->config);
    if (c.quantization.fp8) fail("{}: init does not write FP8 checkpoints; remove quantization_config", o->config);
    Model m = Model::random(c, o->seed, o->dtype == "bf16" ? DType::BF16 : DType::F32);
    if (!o->tokenizer.empty()) {  // a model folder that can chat: the tokenizer must fit the embedding
      const Tokenizer tok = Tokenizer::load(o->tokenizer);
      if (int64_t(tok.vocab_size()) > c.vocab_size)
        fail("--tokenizer: {} ids, more than vocab_size {} of {}", tok.vocab_size(), c.vocab_size, o->config);
    }
    m.save(o->out, o->dtype == "bf16" ? DType::BF16 : DType::F32);
    write_generation_config(o->out, c.bos_token_id, c.eos_token_ids, std::nullopt);  // as save_pretrained writes it
    if (!o->tokenizer.empty()) Tokenizer::copy_files(o->tokenizer, o->out);
    std::printf("wrote %s: %.1fM parameters (%.1fM active per token), %s\n", o->out.c_str(),
                double(m.parameter_count(false)) / 1e6, double(m.parameter_count(true)) / 1e6, o->dtype.c_str());
  });
}

}  // namespace dseek::cli
