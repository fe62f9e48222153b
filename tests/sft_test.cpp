// SFT data: only assistant tokens are targets; packed conversations neither attend to nor predict each other.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/fileio.h"
#include "model/model.h"
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

TEST_F(SftFixture, PackedConversationsDoNotSeeEachOther) {
  Conversation a = conv(json::array({{{"role", "user"}, {"content", "To be, or not to be?"}},
                                     {{"role", "assistant"}, {"content", "That is the question."}}}));
  Conversation b = conv(json::array({{{"role", "user"}, {"content", "Whither wilt thou lead me?"}},
                                     {{"role", "assistant"}, {"content", "Speak, I'll go no further."}}}));
  ModelConfig c = ModelConfig::load(test::source_dir() + "/configs/tiny.json");
  Model m = Model::random(c, 9);
  auto batch = [&](std::vector<const Conversation*> row, int64_t T) {
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
  };
  const int64_t La = int64_t(a.ids.size()), Lb = int64_t(b.ids.size());
  MicroBatch packed = batch({&a, &b}, La + Lb + 3), alone = batch({&b}, Lb + 2);
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

}  // namespace
}  // namespace dseek
