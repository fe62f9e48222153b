// A training run folder: RUN/metrics.jsonl (one JSON object per step), RUN/loss.svg and RUN/expert_load.svg,
// RUN/checkpoints/step-NNNNNNNN/ (a complete Hugging Face model folder plus optimizer and trainer state),
// RUN/latest a symbolic link to the newest complete checkpoint and RUN/final/ the model a run ended with (both
// Hugging Face model folders). Checkpoints are written into a temporary folder that is
// renamed into place, and `latest` is replaced atomically, so an interrupted save never hides the previous one.
// Old checkpoints are renamed to a trash name before they are deleted, so a half-deleted folder is never taken
// for a checkpoint. Temporaries a killed process left (`*.tmp.PID` files, `step-N.tmp` and trash folders) are
// deleted when a run starts or resumes. A folder without `latest` (stopped before its first checkpoint was
// complete) holds nothing to resume: starting it again with --out starts the run over.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dseek {

class RunDir {
 public:
  explicit RunDir(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  std::string metrics_path() const;
  std::string latest_checkpoint() const;  // folder RUN/latest points to; error if none
  bool has_checkpoint() const;

  // Locks the folder for this process (RUN/.lock, an flock held until the process exits): a second dseek
  // process training into the same folder is an error naming it and the holder's pid. start_new and
  // resume_point lock.
  void lock() const;
  // Prepares the folder for a new run: an error if it holds a checkpoint; the files of a run that stopped before
  // its first checkpoint (metrics, charts, run.json, partial checkpoints) are deleted.
  void start_new() const;
  // Deletes the temporaries a killed process left behind (run folder, checkpoints/, reference/).
  void remove_stale_temporaries() const;

  // Appends one record and flushes.
  void log(const nlohmann::json& record);
  // Keeps only records with step <= `step` (used when resuming from an earlier checkpoint).
  void truncate_metrics_after(int64_t step);
  std::vector<nlohmann::json> read_metrics() const;

  // Writes a checkpoint for `step` via `fill(dir)` into a temporary folder, renames it into place, points
  // `latest` at it and deletes all but the newest `keep` checkpoints (keep <= 0: all).
  std::string save_checkpoint(int64_t step, const std::function<void(const std::string& dir)>& fill, int keep);

  // Publishes the latest checkpoint as RUN/final: a complete Hugging Face model folder (config.json, weights,
  // tokenizer and generation_config.json; no optimizer or trainer state) whose files are hard links to the
  // checkpoint's. Replaces an earlier final/ atomically.
  void publish_final() const;

  // Redraws loss.svg and expert_load.svg (or reward.svg and kl.svg) from metrics.jsonl.
  void render_charts() const;

  // Where a resumed run continues: RUN/run.json (its settings under `settings_key`, with `overrides` applied;
  // only keys in `allowed` may change) and the latest checkpoint's trainer_state.json (which must hold
  // `state_keys`). Corrupted or incomplete files are errors naming them.
  struct ResumePoint {
    nlohmann::json run, settings, state;
    std::string run_json, checkpoint;
  };
  ResumePoint resume_point(const std::string& settings_key, const nlohmann::json& overrides,
                           const std::vector<std::string>& allowed, const std::vector<std::string>& state_keys) const;

 private:
  // Deletes all but the newest `keep` checkpoints up to `newest`, and any past it.
  static void prune_checkpoints(const std::string& ckdir, int64_t newest, int keep);
  std::string path_;
};

}  // namespace dseek
