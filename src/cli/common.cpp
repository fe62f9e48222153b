#include "cli/commands.h"
#include "core/threads.h"

namespace dseek::cli {

void add_threads_flag(CLI::App& sub, int& threads) {
  sub.add_option("--threads", threads, "Worker threads (0 = all cores)")->default_val(0);
}

void apply_threads(int threads) { set_num_threads(threads); }

}  // namespace dseek::cli
