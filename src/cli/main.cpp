// dseek: DeepSeek-architecture language models in C++. One binary, one subcommand per job.
#include <cstdio>

#include "cli/commands.h"
#include "cli/parse_errors.h"
#include "core/error.h"
#include "train/run_loop.h"

int main(int argc, char** argv) {
  CLI::App app{"dseek: train, fine-tune and run DeepSeek-V2/V3-style models (MLA + DeepSeekMoE) and the dense\n"
               "Qwen2 / Llama models of DeepSeek-R1-Distill on CPU.\n"
               "Run 'dseek <command> --help' for the flags of a command.", "dseek"};
  app.set_version_flag("--version", "dseek 0.1.0");
  app.require_subcommand(1);
  app.fallthrough(false);
  dseek::cli::add_init(app);
  dseek::cli::add_logits(app);
  dseek::cli::add_generate(app);
  dseek::cli::add_serve(app);
  dseek::cli::add_tokenize(app);
  dseek::cli::add_chat_template(app);
  dseek::cli::add_tokenizer(app);
  dseek::cli::add_prepare(app);
  dseek::cli::add_train(app);
  dseek::cli::add_sft(app);
  dseek::cli::add_grpo(app);
  dseek::cli::add_plot(app);
  dseek::cli::add_task(app);
  dseek::cli::add_distill(app);
  dseek::cli::add_eval(app);
  dseek::cli::add_quantize(app);
  if (argc < 2) {  // no command: the command list, as --help prints it
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return dseek::cli::report_parse_error(app, e);
  } catch (const dseek::Interrupted& e) {
    return 128 + e.signal;
  } catch (const dseek::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "dseek: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "dseek: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dseek: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
