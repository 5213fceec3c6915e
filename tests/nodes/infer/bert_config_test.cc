#include "nodes/infer/bert_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace nlpflow {
namespace {

using ::testing::HasSubstr;

constexpr char kMiniLm[] = R"({
  "architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": 384,
  "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
  "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 6,
  "position_embedding_type": "absolute", "type_vocab_size": 2, "vocab_size": 30522})";

TEST(BertConfigTest, ParsesMiniLm) {
  auto c = ParseBertConfig(kMiniLm, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->vocab_size, 30522);
  EXPECT_EQ(c->hidden_size, 384);
  EXPECT_EQ(c->num_hidden_layers, 6);
  EXPECT_EQ(c->num_attention_heads, 12);
  EXPECT_EQ(c->head_dim(), 32);
  EXPECT_EQ(c->intermediate_size, 1536);
  EXPECT_EQ(c->max_position_embeddings, 512);
  EXPECT_EQ(c->type_vocab_size, 2);
  EXPECT_EQ(c->layer_norm_eps, 1e-12);
  EXPECT_EQ(c->hidden_act, "gelu");
}

TEST(BertConfigTest, OptionalKeysTakeHuggingFaceDefaults) {
  auto c = ParseBertConfig(R"({"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
                               "num_attention_heads": 2, "intermediate_size": 16})",
                           "c.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_position_embeddings, 512);
  EXPECT_EQ(c->type_vocab_size, 2);
  EXPECT_EQ(c->layer_norm_eps, 1e-12);
  EXPECT_EQ(c->hidden_act, "gelu");
}

TEST(BertConfigTest, RejectsWhatTheEncoderCannotRun) {
  auto missing = ParseBertConfig(R"({"vocab_size": 10})", "m/config.json");
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(), "m/config.json: missing 'hidden_size'");

  std::string j = kMiniLm;
  auto heads = ParseBertConfig(j.replace(j.find("\"num_attention_heads\": 12"), 25,
                                         "\"num_attention_heads\": 5"),
                               "c.json");
  EXPECT_EQ(heads.status().message(),
            "c.json: hidden_size 384 is not a multiple of num_attention_heads 5");

  j = kMiniLm;
  auto roberta =
      ParseBertConfig(j.replace(j.find("\"bert\""), 6, "\"roberta\""), "c.json");
  EXPECT_EQ(roberta.status().message(),
            "c.json: model_type 'roberta' is not supported; supported: bert");

  j = kMiniLm;
  auto act = ParseBertConfig(j.replace(j.find("\"gelu\""), 6, "\"swish\""), "c.json");
  EXPECT_THAT(act.status().message(), HasSubstr("hidden_act 'swish' is not supported"));

  j = kMiniLm;
  auto relative = ParseBertConfig(
      j.replace(j.find("\"absolute\""), 10, "\"relative_key\""), "c.json");
  EXPECT_THAT(relative.status().message(),
              HasSubstr("position_embedding_type 'relative_key' is not supported"));

  auto negative = ParseBertConfig(R"({"vocab_size": -3})", "c.json");
  EXPECT_EQ(negative.status().message(),
            "c.json: 'vocab_size' must be a positive integer, got -3");

  auto not_json = ParseBertConfig("{", "c.json");
  EXPECT_THAT(not_json.status().message(), HasSubstr("c.json: not valid JSON"));

  auto no_file = LoadBertConfig("/nonexistent/config.json");
  EXPECT_EQ(no_file.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(no_file.status().message(), "/nonexistent/config.json: cannot open");
}

}  // namespace
}  // namespace nlpflow
