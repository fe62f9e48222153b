#include "posttrain/distill.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fileio.h"
#include "inference/batch_generator.h"
#include "posttrain/eval.h"
#include "posttrain/grpo.h"
#include "tokenizer/tokenizer.h"

namespace dseek {

using json = nlohmann::json;

DistillSource::DistillSource(std::unique_ptr<BatchSource> inner, const std::string& teacher_dir, int64_t top_k)
    : inner_(std::move(inner)), teacher_(Model::load(teacher_dir)), top_k_(top_k) {
  if (top_k_ <= 0) fail("distillation top-k must be positive, got {}", top_k_);
}

const DistillSource::Entry& DistillSource::teacher_targets(const int32_t* inputs, const int32_t* targets, int64_t L) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a over (input, target) pairs
  for (int64_t i = 0; i < L; i++)
    for (uint32_t v : {uint32_t(inputs[i]), uint32_t(targets[i])}) h = (h ^ v) * 0x100000001b3ull;
  auto [lo, hi] = cache_.equal_range(h);
  for (auto it = lo; it != hi; ++it)
    if (std::equal(inputs, inputs + L, it->second.inputs.begin(), it->second.inputs.end()) &&
        std::equal(targets, targets + L, it->second.targets.begin(), it->second.targets.end()))
      return it->second;
  Entry e{std::vector<int32_t>(inputs, inputs + L), std::vector<int32_t>(targets, targets + L), {}};
  MicroBatch one;
  one.B = 1;
  one.T = L;
  one.inputs = e.inputs;
  one.targets = e.targets;
  one.shape = TrainShape::dense(1, L);
  GraphOptions o;
  o.use_mtp = false;
  o.topk = int(top_k_);
  o.topk_out = &e.soft;
  e.soft.assign(size_t(L), {});
  TrainGraph(teacher_.config).run(teacher_.w, nullptr, teacher_.rope, one, o);
  return cache_.emplace(h, std::move(e))->second;
}

MicroBatch DistillSource::next(int64_t B, int64_t T) {
  MicroBatch mb = inner_->next(B, T);
  const int64_t R = mb.B * mb.T;
  mb.soft_targets.assign(size_t(R), {});
  auto key_begin = [&](int64_t r) { return mb.shape.key_begin.empty() ? 0 : mb.shape.key_begin[size_t(r)]; };
  for (int64_t b = 0; b < mb.B; b++) {
    const int64_t row0 = b * mb.T;
    for (int64_t s = 0; s < mb.T;) {  // a segment: rows attending from the same first key
      int64_t e = s + 1;
      while (e < mb.T && key_begin(row0 + e) == key_begin(row0 + s)) e++;
      const int32_t* tg = mb.targets.data() + row0 + s;
      if (std::any_of(tg, tg + (e - s), [](int32_t t) { return t >= 0; })) {
        const Entry& hit = teacher_targets(mb.inputs.data() + row0 + s, tg, e - s);
        for (int64_t i = s; i < e; i++) mb.soft_targets[size_t(row0 + i)] = hit.soft[size_t(i - s)];
      }
      s = e;
    }
  }
  return mb;
}

DistillStats distill(const DistillConfig& c) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  if (c.task.empty() == c.prompts_file.empty()) fail("give exactly one of --task or --prompts");
  const std::string run = path_join(c.out, "student");
  if (RunDir(run).has_checkpoint())
    fail("--out {}: already holds a distillation (its student has a checkpoint in {}); --resume {} continues it, or "
         "give another --out",
         c.out, run, c.out);
  const std::string teacher_dir = resolve_model_dir(c.teacher);
  Tokenizer tok = Tokenizer::load(teacher_dir);
  // the student learns the teacher's token ids and its folder gets the teacher's tokenizer: they must be the same
  const uint64_t teacher_tokenizer = Tokenizer::content_fingerprint(teacher_dir);
  if (is_directory(c.student) && Tokenizer::find_file(c.student) &&
      Tokenizer::content_fingerprint(c.student) != teacher_tokenizer)
    fail("--student {}: its tokenizer differs from the teacher's ({}) in vocabulary, merges or added tokens; the "
         "student would learn the teacher's token ids, so distil into a student with the teacher's tokenizer (or "
         "a config.json, initialised randomly)",
         c.student, teacher_dir);
  std::unique_ptr<Task> task = c.task.empty() ? load_prompts_task(c.prompts_file) : make_task(c.task, c.task_options);
  make_dirs(c.out);
  DistillStats st;

  // 1. teacher samples, kept if the verifier accepts them; data of an earlier start is reused only if sampled alike
  const std::string data_path = path_join(c.out, "distill_data.jsonl"), settings_path = path_join(c.out, "distill.json");
  const json sampling{{"teacher", std::filesystem::absolute(teacher_dir).string()},
                      {"teacher_tokenizer", teacher_tokenizer},
                      {"task", c.task},
                      {"prompts_file", c.prompts_file.empty() ? "" : std::filesystem::absolute(c.prompts_file).string()},
                      {"task_seed", c.task_options.seed},
                      {"task_options", json{{"min_digits", c.task_options.min_digits}, {"max_digits", c.task_options.max_digits},
                                            {"ops", c.task_options.ops}, {"numbers", c.task_options.numbers},
                                            {"max_number", c.task_options.max_number}, {"max_target", c.task_options.max_target}}},
                      {"n_prompts", c.prompts},
                      {"samples_per_prompt", c.samples_per_prompt},
                      {"temperature", c.temperature},
                      {"max_new_tokens", c.max_new_tokens},
                      {"rejection", c.rejection},
                      {"seed", c.train.seed}};
  const bool reuse = file_exists(data_path) && file_exists(settings_path) &&
                     json::parse(read_file(settings_path), nullptr, false) == sampling;
  if (reuse) std::fprintf(stderr, "%s: reusing the teacher samples of an earlier start (same settings)\n", data_path.c_str());
  if (!reuse) {
    Model teacher = Model::load(teacher_dir);
    Forward fwd(teacher);
    BatchGenerator gen(fwd);
    const std::vector<int32_t> stop = completion_stop_ids(teacher.config, tok);
    std::string out;
    double correct = 0;
    for (int64_t p0 = 0; p0 < c.prompts; p0 += c.batch) {
      std::vector<TaskExample> ex;
      std::vector<GenerationRequest> reqs;
      for (int64_t p = p0; p < std::min(c.prompts, p0 + c.batch); p++) {
        ex.push_back(task->example("train", uint64_t(p)));
        const auto ids = task_prompt_ids(tok, ex.back(), teacher.config);
        for (int64_t k = 0; k < c.samples_per_prompt; k++) {
          GenerationRequest r;
          r.prompt = ids;
          r.sampling.temperature = c.temperature;
          r.sampling.seed = hash_index(c.train.seed, uint64_t(p), uint64_t(k));
          r.stop.max_tokens = c.max_new_tokens;
          r.stop.stop_ids = stop;
          reqs.push_back(std::move(r));
        }
      }
      auto res = gen.generate(reqs);
      for (size_t i = 0; i < res.size(); i++) {
        const TaskExample& e = ex[i / size_t(c.samples_per_prompt)];
        const std::string text = completion_text(tok, res[i].tokens);
        const Reward rw = task->score(e, text);
        st.generated++;
        correct += rw.accuracy;
        if (c.rejection && (rw.accuracy < 1 || rw.format < 1)) continue;
        json conv{{"messages", json::array({{{"role", "user"}, {"content", e.prompt}},
                                            {{"role", "assistant"}, {"content", text}}})}};
        out += conv.dump() + "\n";
        st.kept++;
      }
      std::fprintf(stderr, "\rteacher sampling: %lld/%lld prompts, %lld kept", (long long)std::min(c.prompts, p0 + c.batch),
                   (long long)c.prompts, (long long)st.kept);
    }
    std::fprintf(stderr, "\n");
    st.teacher_accuracy = st.generated ? correct / double(st.generated) : 0.0;
    if (st.kept == 0) fail("the teacher produced no accepted completions ({} sampled); nothing to distil", st.generated);
    write_file_atomic(data_path, out);
    write_file_atomic(settings_path, sampling.dump(2) + "\n");
    write_file_atomic(path_join(c.out, "distill_stats.json"),
                      json{{"generated", st.generated}, {"kept", st.kept}, {"teacher_sample_accuracy", st.teacher_accuracy}}.dump(2) + "\n");
  }

  // 2. the student learns the accepted completions (and the teacher's distributions, if asked)
  Model student;
  if (is_directory(c.student)) {
    student = Model::load(c.student, LoadOptions{.mtp = true});
  } else {
    student = Model::random(ModelConfig::load(c.student), c.train.seed);
  }
  if (int64_t(tok.vocab_size()) > student.config.vocab_size)
    fail("student vocab_size {} is smaller than the teacher's tokenizer ({})", student.config.vocab_size, tok.vocab_size());
  DataSpec data;
  data.kind = "chat";
  data.path = data_path;
  data.tokenizer = teacher_dir;
  data.val_fraction = 0.02;
  if (c.top_k > 0) {
    const ModelConfig tc = ModelConfig::load(teacher_dir);
    if (tc.vocab_size != student.config.vocab_size)
      fail("logit distillation needs the same vocabulary: teacher {} vs student {}", tc.vocab_size, student.config.vocab_size);
    data.teacher = teacher_dir;
    data.teacher_top_k = c.top_k;
  }
  Trainer::create(run, std::move(student), data, c.train)->train();
  st.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return st;
}

void distill_resume(const std::string& out, const json& overrides) {
  const std::string run = path_join(out, "student");
  if (!file_exists(path_join(run, "run.json")))
    fail("--resume {}: not a distillation folder (no student run in {})", out, run);
  Trainer::resume(run, overrides)->train();
}

}  // namespace dseek
