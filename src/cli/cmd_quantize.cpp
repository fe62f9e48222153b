// dseek quantize: a checkpoint converted between DeepSeek-V3's FP8 format (E4M3 projections with 128 x 128 block
// scales, weight_scale_inv, quantization_config) and BF16.
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fileio.h"
#include "model/model.h"
#include "model/quantize.h"
#include "tokenizer/tokenizer.h"

namespace dseek::cli {

namespace {
int64_t folder_bytes(const std::string& dir) {
  int64_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") n += int64_t(e.file_size());
  return n;
}
}  // namespace

void add_quantize(CLI::App& app) {
  struct Opts {
    std::string model, to, out;
    int64_t block = 128;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* sub = app.add_subcommand(
      "quantize", "Convert a checkpoint to DeepSeek-V3's FP8 format (E4M3 + 128x128 block scales) or back to BF16");
  sub->add_option("--model", o->model, "Model folder or training run")->required();
  sub->add_option("--to", o->to, "fp8: projections in E4M3 with weight_scale_inv blocks, the rest BF16 (as DeepSeek-V3 "
                                 "ships); bf16: every weight in BF16")
      ->check(CLI::IsMember({"fp8", "bf16"}))
      ->required();
  sub->add_option("--out", o->out, "Folder to write (a new folder)")->required();
  sub->add_option("--block", o->block, "fp8: rows and columns of a scale block")->default_val(128)->check(CLI::Range(int64_t(1), int64_t(65536)));
  add_threads_flag(*sub, o->threads);
  sub->footer(
      "The embedding, output head, MoE router and norms are never quantised. FP8 weights: q = round(w / s) in E4M3\n"
      "with s = amax / 448 per block, so w ~= q * s. A BF16 copy of an FP8 checkpoint holds q * s rounded to BF16.");
  sub->callback([o] {
    apply_threads(o->threads);
    const std::string src = resolve_model_dir(o->model);
    if (file_exists(o->out) && !std::filesystem::is_empty(o->out))
      fail("--out {}: exists and is not empty; give a new folder", o->out);
    Model m = Model::load(src, LoadOptions{.mtp = true});
    if (o->to == "fp8") {
      if (m.config.quantization.fp8) dequantize_model(m);  // re-blocked from the values it holds
      quantize_model_fp8(m, o->block, o->block);
    } else {
      dequantize_model(m);
    }
    m.save(o->out, DType::BF16);
    // the folder stays complete: tokenizer and sampling defaults come along
    if (Tokenizer::find_file(src)) Tokenizer::copy_files(src, o->out);
    if (file_exists(path_join(src, "generation_config.json")))
      write_file_atomic(path_join(o->out, "generation_config.json"), read_file(path_join(src, "generation_config.json")));
    std::printf("wrote %s: %s, %.1f MB of weights (from %.1f MB)\n", o->out.c_str(), o->to.c_str(),
                double(folder_bytes(o->out)) / 1e6, double(folder_bytes(src)) / 1e6);
  });
}

}  // namespace dseek::cli
