// Where a model lives: a Hugging Face folder (config.json, safetensors, tokenizer files), or a training run whose
// RUN/latest is a symbolic link to its newest complete checkpoint folder (runs written before were a file naming it). Every command that takes a model or tokenizer
// folder resolves it here, so a run folder works wherever a model folder does.
#pragma once
#include <optional>
#include <string>

namespace dseek {

// The checkpoint folder RUN/latest points to (RUN/checkpoints/step-N), none when RUN has no `latest`; a `latest`
// that names no folder inside RUN is an error naming it.
std::optional<std::string> latest_checkpoint_of(const std::string& run);
// Whether RUN/latest exists at all (a link whose folder is gone counts: reading it then says what is wrong).
bool has_latest_checkpoint(const std::string& run);

// Folder holding the weights to use for `path`: itself when it has config.json, else the latest checkpoint of the
// training run it is; anything else is an error naming `path`.
std::string resolve_model_dir(const std::string& path);

}  // namespace dseek
