// Run folders under kills and signals: SIGKILL at random moments (inside saves and pruning too) followed by
// resumption reproduces the uninterrupted run bit for bit; SIGINT/SIGTERM checkpoint and exit with 128 + signal;
// a run without a complete checkpoint starts over; stale temporaries are deleted.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include "core/fileio.h"
#include "test_util.h"
#include "train_util.h"

namespace dseek {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

const char* kFlags = " --batch-size 4 --seq-len 16 --lr 3e-3 --seed 3 --threads 2";

std::string new_run_args(const std::string& data, const std::string& run, int steps, const std::string& extra) {
  return "train --config " + test::source_dir() + "/configs/tiny.json --data " + data + " --out " + run +
         " --steps " + std::to_string(steps) + extra + kFlags;
}

// Resumes when the run has a checkpoint, else starts it (over).
std::string continue_args(const std::string& data, const std::string& run, int steps, const std::string& extra) {
  return file_exists(run + "/latest") ? "train --resume " + run + " --steps " + std::to_string(steps)
                                      : new_run_args(data, run, steps, extra);
}

// Names a killed process may leave: NAME.tmp.PID files, step-N.tmp and .trash-step-N folders.
std::vector<std::string> temporaries(const std::string& run) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(run)) {
    const std::string n = e.path().filename().string();
    if (n.find(".tmp") != std::string::npos || n.rfind(".trash-", 0) == 0) out.push_back(e.path().string());
  }
  return out;
}

// Every checkpoint folder (step-N) is complete.
void expect_complete_checkpoints(const std::string& run, const std::string& when) {
  if (!is_directory(run + "/checkpoints")) return;
  for (const auto& e : fs::directory_iterator(run + "/checkpoints")) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) != 0 || n.find(".tmp") != std::string::npos) continue;
    for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer_state.json", "config.json"})
      EXPECT_TRUE(file_exists(e.path() / f)) << when << ": " << n << " has no " << f;
  }
}

std::string latest_file(const std::string& run, const std::string& file) { return read_file(run + "/latest/" + file); }

// Same losses at every step and the same final weights and optimizer state, byte for byte.
void expect_same_run(const std::string& a, const std::string& b, size_t steps) {
  auto ma = test::run_metrics(a), mb = test::run_metrics(b);
  ASSERT_EQ(ma.size(), steps);
  ASSERT_EQ(mb.size(), steps);
  for (size_t i = 0; i < steps; i++) {
    EXPECT_EQ(mb[i]["step"], ma[i]["step"]);
    EXPECT_EQ(mb[i]["loss"].get<double>(), ma[i]["loss"].get<double>()) << "step " << i + 1;
    EXPECT_EQ(mb[i]["mtp_loss"].get<double>(), ma[i]["mtp_loss"].get<double>()) << "step " << i + 1;
  }
  EXPECT_TRUE(latest_file(a, "model.safetensors") == latest_file(b, "model.safetensors")) << "final weights differ";
  EXPECT_TRUE(latest_file(a, "optimizer.safetensors") == latest_file(b, "optimizer.safetensors"))
      << "final optimizer state differs";
}

size_t metric_lines(const std::string& run) {
  std::ifstream f(run + "/metrics.jsonl");
  size_t n = 0;
  for (std::string line; std::getline(f, line);) n += line.ends_with("}");
  return n;
}

// Polls until the run logged more than `lines` steps or the child ended; false if it ended.
bool wait_for_progress(pid_t pid, const std::string& run, size_t lines, int& status) {
  const auto deadline = clock_type::now() + std::chrono::seconds(60);
  while (clock_type::now() < deadline) {
    if (test::child_ended(pid, status)) return false;
    if (metric_lines(run) > lines) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

constexpr int kSteps = 40, kKills = 12, kKeep = 2;  // enough steps that 12 kills land before the end, also when steps run fast
const std::string kSaveFlags = " --save-every 1 --keep-checkpoints " + std::to_string(kKeep);

TEST(Checkpoint, SurvivesRandomKillsBitIdentically) {
  test::TempDir d;
  const std::string data = test::make_token_data(d), ref = d / "ref", run = d / "run", log = d / "log.txt";
  const auto t0 = clock_type::now();
  ASSERT_EQ(test::wait_child(test::spawn_dseek(new_run_args(data, ref, kSteps, kSaveFlags), log)), 0) << read_file(log);
  const double step_s = std::chrono::duration<double>(clock_type::now() - t0).count() / kSteps;  // incl. start-up
  std::mt19937 rng(12345);
  int kills = 0, in_save = 0, at_start = 0, finished_early = 0;
  for (int attempt = 0; kills < kKills; attempt++) {
    const size_t logged = metric_lines(run);
    const pid_t pid = test::spawn_dseek(continue_args(data, run, kSteps, kSaveFlags), log);
    int status = 0;
    if (attempt % 5 == 4) {
      // during start-up: loading, restoring, cleaning up
      std::this_thread::sleep_for(std::chrono::duration<double>(std::uniform_real_distribution<>(0, 0.4)(rng)));
      at_start++;
    } else if (!wait_for_progress(pid, run, logged, status)) {
      ASSERT_EQ(status, 0) << read_file(log);
      finished_early++;
      break;
    } else {
      // anywhere in the next steps: forward, backward, save, prune
      std::this_thread::sleep_for(std::chrono::duration<double>(std::uniform_real_distribution<>(0, step_s)(rng)));
    }
    if (test::child_ended(pid, status)) {
      ASSERT_EQ(status, 0) << read_file(log);
      finished_early++;
      break;
    }
    ::kill(pid, SIGKILL);
    ASSERT_EQ(test::wait_child(pid), 128 + SIGKILL);
    kills++;
    if (is_directory(run) && !temporaries(run).empty()) in_save++;
    expect_complete_checkpoints(run, "after kill " + std::to_string(kills));
  }
  ASSERT_EQ(test::wait_child(test::spawn_dseek(continue_args(data, run, kSteps, kSaveFlags), log)), 0) << read_file(log);
  std::printf("survived %d SIGKILLs (%d left a partial save, prune or temporary file, %d during start-up); "
              "finished early: %d\n", kills, in_save, at_start, finished_early);
  EXPECT_EQ(kills, kKills);
  expect_same_run(ref, run, kSteps);
  EXPECT_EQ(temporaries(run), std::vector<std::string>{});
  const auto entries = fs::directory_iterator(run + "/checkpoints");
  EXPECT_EQ(std::distance(fs::begin(entries), fs::end(entries)), kKeep);
}

TEST(Checkpoint, SigintAndSigtermWriteACheckpointAndResumeBitIdentically) {
  test::TempDir d;
  const int steps = 16;
  const std::string data = test::make_token_data(d), ref = d / "ref", run = d / "run", log = d / "log.txt";
  // no periodic checkpoints: only the signal writes one
  const std::string no_saves = " --save-every 0 --save-minutes 0";
  ASSERT_EQ(test::wait_child(test::spawn_dseek(new_run_args(data, ref, steps, no_saves), log)), 0) << read_file(log);
  int status = 0;
  for (int sig : {SIGINT, SIGTERM}) {
    const size_t before = metric_lines(run);
    const pid_t pid = test::spawn_dseek(continue_args(data, run, steps, no_saves), log);
    ASSERT_TRUE(wait_for_progress(pid, run, before + 1, status)) << read_file(log);
    ::kill(pid, sig);
    ASSERT_EQ(test::wait_child(pid), 128 + sig) << read_file(log);
    const size_t logged = metric_lines(run);
    ASSERT_LT(logged, size_t(steps)) << "the run finished before the signal";
    const json state = json::parse(latest_file(run, "trainer_state.json"));
    EXPECT_EQ(state["step"].get<size_t>(), logged) << "the checkpoint holds the last logged step";
  }
  ASSERT_EQ(test::wait_child(test::spawn_dseek(continue_args(data, run, steps, no_saves), log)), 0) << read_file(log);
  expect_same_run(ref, run, steps);
  const std::string out = read_file(log);
  EXPECT_NE(out.find("interrupted (SIGINT) at step"), std::string::npos) << out;
  EXPECT_NE(out.find("terminated (SIGTERM) at step"), std::string::npos) << out;
}

TEST(Checkpoint, RunWithoutACompleteCheckpointStartsOver) {
  test::TempDir d;
  const std::string data = test::make_token_data(d), ref = d / "ref", run = d / "run";
  ASSERT_EQ(test::run_dseek(new_run_args(data, ref, 2, "")).status, 0);
  // what a kill during the first save leaves: run.json, metrics, a partial checkpoint, a temporary `latest`
  ASSERT_EQ(test::run_dseek(new_run_args(data, run, 2, "")).status, 0);
  fs::remove(run + "/latest");
  fs::rename(run + "/checkpoints/step-00000002", run + "/checkpoints/step-00000002.tmp");
  fs::remove(run + "/checkpoints/step-00000002.tmp/model.safetensors");
  write_file_atomic(run + "/latest.tmp.4242", "checkpoints/step-00000002\n");
  auto resume = test::run_dseek("train --resume " + run + " --steps 2");
  EXPECT_EQ(resume.status, 1);
  EXPECT_NE(resume.out.find("no complete checkpoint"), std::string::npos) << resume.out;
  EXPECT_NE(resume.out.find("--out " + run), std::string::npos) << resume.out;
  auto again = test::run_dseek(new_run_args(data, run, 2, ""));
  ASSERT_EQ(again.status, 0) << again.out;
  EXPECT_NE(again.out.find("starting it over"), std::string::npos) << again.out;
  expect_same_run(ref, run, 2);
  EXPECT_EQ(temporaries(run), std::vector<std::string>{});
}

TEST(Checkpoint, ResumeDeletesStaleTemporariesAndHalfDeletedCheckpoints) {
  test::TempDir d;
  const std::string data = test::make_token_data(d), run = d / "run";
  ASSERT_EQ(test::run_dseek(new_run_args(data, run, 4, " --save-every 2 --keep-checkpoints 2")).status, 0);
  for (const char* f : {"latest.tmp.999", "expert_load_last.svg.tmp.999", "metrics.jsonl.tmp.12"})
    write_file_atomic(run + "/" + f, "stale");
  make_dirs(run + "/checkpoints/step-00000006.tmp");
  make_dirs(run + "/checkpoints/.trash-step-00000001");  // a prune that was killed midway
  write_file_atomic(run + "/checkpoints/.trash-step-00000001/config.json", "{}");
  auto r = test::run_dseek("train --resume " + run + " --steps 6");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(temporaries(run), std::vector<std::string>{});
  EXPECT_FALSE(file_exists(run + "/checkpoints/step-00000002"));  // pruned: keep 2 (4 and 6)
  EXPECT_TRUE(file_exists(run + "/checkpoints/step-00000004/model.safetensors"));
  EXPECT_TRUE(file_exists(run + "/checkpoints/step-00000006/model.safetensors"));
}

}  // namespace
}  // namespace dseek

namespace dseek {
namespace {

// Two processes training into one folder would interleave metrics.jsonl and delete each other's files (the
// second took a folder without a checkpoint for a stopped run and started it over): the folder is locked.
TEST(Checkpoint, ASecondProcessCannotTrainIntoAFolderInUse) {
  test::TempDir d;
  const std::string data = test::make_token_data(d), run = d / "run", log = d / "log.txt";
  const pid_t pid = test::spawn_dseek(new_run_args(data, run, 100000, " --save-minutes 0"), log);
  int status = 0;
  ASSERT_TRUE(wait_for_progress(pid, run, 1, status)) << read_file(log);
  const size_t before = metric_lines(run);
  auto second = test::run_dseek(new_run_args(data, run, 5, ""));
  EXPECT_EQ(second.status, 1);
  EXPECT_NE(second.out.find(run + ": in use by another dseek process (pid " + std::to_string(pid) + ")"), std::string::npos)
      << second.out;
  auto resume = test::run_dseek("train --resume " + run + " --steps 5");
  EXPECT_EQ(resume.status, 1);
  EXPECT_GE(metric_lines(run), before);  // nothing was deleted
  kill(pid, SIGKILL);
  test::wait_child(pid);
  // the kernel released the lock with the process: the folder (no checkpoint yet) starts over
  auto again = test::run_dseek(new_run_args(data, run, 2, ""));
  EXPECT_EQ(again.status, 0) << again.out;
  EXPECT_EQ(metric_lines(run), 2u);
}

}  // namespace
}  // namespace dseek
