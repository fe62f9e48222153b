// SFT data: only assistant tokens are targets; packed conversations neither attend to nor predict each other.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/fileio.h"
#include "model/model.h"
#include "posttrain/distill.h"
#include "posttrain/sft_data.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "train/graph.h"

namespace dseek {
namespace {

using json = nlohmann::json;

struct SftFixture : ::testing::Test {
  test::TempDir d;
  Tokenizer tok = make_tokenizer();
  Tokenizer make_tokenizer() {
    auto r = test::run_dseek("tokenizer train --vocab-size 400 --input " + test::source_dir() +
                             "/data/tinyshakespeare.txt --out " + (d / "tok"));
    EXPECT_EQ(r.status, 0) << r.out;
    return Tokenizer::load(d / "tok");
  }
  Conversation conv(const json& messages) {
    ChatEncoding e = tok.encode_chat(messages, false);
    return Conversation{e.ids, e.assistant_mask};
  }
};

TEST_F(SftFixture, OnlyAssistantTokensAreTargets) {
  json msgs = json::array({{{"role", "system"}, {"content", "Be brief."}},
                           {{"role", "user"}, {"content", "What is 2 + 3?"}},
                           {{"role", "assistant"}, {"content", "Five."}},
                           {{"role", "user"}, {"content", "And 4 + 4?"}},
                           {{"role", "assistant"}, {"content", "Eight, my lord."}}});
  Conversation c = conv(msgs);
  const int64_t T = int64_t(c.ids.size()) + 4;
  std::vector<int32_t> in(T), tg(T), pos(T), kb(T);
  pack_row({&c}, T, 1, in.data(), tg.data(), pos.data(), kb.data());
  std::vector<int32_t> assistant_ids;
  for (int64_t i = 0; i < T; i++) {
    if (i + 1 < int64_t(c.ids.size())) {
      EXPECT_EQ(tg[i], c.assistant[size_t(i + 1)] ? c.ids[size_t(i + 1)] : -1) << i;
      if (tg[i] >= 0) assistant_ids.push_back(tg[i]);
    } else {
      EXPECT_EQ(tg[i], -1) << "no target past the conversation, " << i;
    }
  }
  // the targets are exactly the assistant replies and their end-of-sentence tokens
  const std::string eos = tok.id_to_token(tok.eos_id());
  EXPECT_EQ(tok.decode(assistant_ids), "Five." + eos + "Eight, my lord." + eos);
  // padding attends only to itself
  for (int64_t i = int64_t(c.ids.size()); i < T; i++) EXPECT_EQ(kb[i], i);
}

// One packed row of T tokens holding the given conversations (pad id 1).
MicroBatch packed_row(const std::vector<const Conversation*>& row, int64_t T) {
  MicroBatch mb;
  mb.B = 1;
  mb.T = T;
  mb.inputs.resize(size_t(T));
  mb.targets.resize(size_t(T));
  mb.shape.B = 1;
  mb.shape.T = T;
  mb.shape.positions.resize(size_t(T));
  mb.shape.key_begin.resize(size_t(T));
  pack_row(row, T, 1, mb.inputs.data(), mb.targets.data(), mb.shape.positions.data(), mb.shape.key_begin.data());
  return mb;
}

TEST_F(SftFixture, PackedConversationsDoNotSeeEachOther) {
  Conversation a = conv(json::array({{{"role", "user"}, {"content", "To be, or not to be?"}},
                                     {{"role", "assistant"}, {"content", "That is the question."}}}));
  Conversation b = conv(json::array({{{"role", "user"}, {"content", "Whither wilt thou lead me?"}},
                                     {{"role", "assistant"}, {"content", "Speak, I'll go no further."}}}));
  ModelConfig c = ModelConfig::load(test::source_dir() + "/configs/tiny.json");
  Model m = Model::random(c, 9);
  const int64_t La = int64_t(a.ids.size()), Lb = int64_t(b.ids.size());
  MicroBatch packed = packed_row({&a, &b}, La + Lb + 3), alone = packed_row({&b}, Lb + 2);
  EXPECT_EQ(packed.shape.key_begin[size_t(La)], La);
  EXPECT_EQ(packed.shape.positions[size_t(La)], 0);
  GraphOptions o;
  std::vector<float> lp_packed, lp_alone;
  TrainGraph g1(c), g2(c);
  o.logp_out = &lp_packed;
  g1.run(m.w, nullptr, m.rope, packed, o);
  o.logp_out = &lp_alone;
  g2.run(m.w, nullptr, m.rope, alone, o);
  int compared = 0;
  for (int64_t i = 0; i < Lb; i++) {
    if (alone.targets[size_t(i)] < 0) continue;
    EXPECT_NEAR(lp_packed[size_t(La + i)], lp_alone[size_t(i)], 1e-4f) << "token " << i << " of the second conversation";
    compared++;
  }
  EXPECT_GT(compared, 5);
}

TEST_F(SftFixture, ChatSourceIsDeterministicAndResumable) {
  std::vector<Conversation> convs;
  for (int i = 0; i < 9; i++)
    convs.push_back(conv(json::array({{{"role", "user"}, {"content", "Question " + std::to_string(i)}},
                                      {{"role", "assistant"}, {"content", std::string(size_t(i + 1), 'x')}}})));
  ChatSource s1(convs, 7, 1), s2(convs, 7, 1);
  for (int k = 0; k < 3; k++) s1.next(2, 32);
  json st = s1.state();
  s2.restore(st);
  for (int k = 0; k < 4; k++) {
    MicroBatch a = s1.next(2, 32), b = s2.next(2, 32);
    EXPECT_EQ(a.inputs, b.inputs);
    EXPECT_EQ(a.targets, b.targets);
  }
}

// The teacher's top-k targets of a packed conversation equal those of the conversation run alone, in every epoch
// (the second epoch is served from DistillSource's cache).
TEST_F(SftFixture, DistillTargetsDoNotDependOnPackingOrEpoch) {
  std::vector<Conversation> convs;
  for (int i = 0; i < 5; i++)
    convs.push_back(conv(json::array({{{"role", "user"}, {"content", "Count to " + std::to_string(i + 2)}},
                                      {{"role", "assistant"}, {"content", "One, two" + std::string(size_t(i), '!')}}})));
  const ModelConfig c = ModelConfig::load(test::source_dir() + "/configs/tiny.json");
  Model teacher = Model::random(c, 4);
  teacher.save(d / "teacher");
  const int64_t T = 64, K = 5;
  DistillSource src(std::make_unique<ChatSource>(convs, 3, 1), d / "teacher", K);
  // each conversation alone: its soft targets by position
  std::map<std::vector<int32_t>, std::vector<std::vector<std::pair<int32_t, float>>>> alone;
  for (const Conversation& cv : convs) {
    const int64_t L = int64_t(cv.ids.size());
    MicroBatch mb = packed_row({&cv}, L);
    GraphOptions o;
    o.use_mtp = false;
    o.topk = int(K);
    o.topk_out = &mb.soft_targets;
    mb.soft_targets.assign(size_t(L), {});
    TrainGraph(c).run(teacher.w, nullptr, teacher.rope, mb, o);
    alone[cv.ids] = mb.soft_targets;
  }
  int compared = 0;
  for (int step = 0; step < 6; step++) {  // 2 rows x 64 tokens hold about 5 conversations: several epochs
    MicroBatch mb = src.next(2, T);
    ASSERT_EQ(mb.soft_targets.size(), size_t(2 * T));
    for (int64_t r = 0; r < 2 * T; r++) {
      if (mb.targets[size_t(r)] < 0) {
        EXPECT_TRUE(mb.soft_targets[size_t(r)].empty()) << r;
        continue;
      }
      // the conversation starting at key_begin
      const int64_t row0 = (r / T) * T, s = row0 + mb.shape.key_begin[size_t(r)], pos = mb.shape.positions[size_t(r)];
      const Conversation* cv = nullptr;
      for (const auto& x : convs)
        if (std::equal(x.ids.begin(), x.ids.end(), mb.inputs.begin() + s, mb.inputs.begin() + std::min(row0 + T, s + int64_t(x.ids.size()))) &&
            s + int64_t(x.ids.size()) <= row0 + T)
          cv = &x;
      ASSERT_NE(cv, nullptr) << "row " << r;
      const auto& want = alone.at(cv->ids)[size_t(pos)];
      const auto& got = mb.soft_targets[size_t(r)];
      ASSERT_EQ(got.size(), size_t(K));
      for (size_t k = 0; k < want.size(); k++) {
        EXPECT_EQ(got[k].first, want[k].first) << "row " << r << " rank " << k;
        EXPECT_NEAR(got[k].second, want[k].second, 1e-5f) << "row " << r << " rank " << k;
      }
      compared++;
    }
  }
  EXPECT_GT(compared, 60);
}

}  // namespace
}  // namespace dseek
