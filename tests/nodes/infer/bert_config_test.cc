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

// all-mpnet-base-v2's config.json.
TEST(BertConfigTest, ReadsMpnetPositionsAndBuckets) {
  auto c = ParseBertConfig(R"({"hidden_act": "gelu", "hidden_size": 768,
      "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 514,
      "model_type": "mpnet", "num_attention_heads": 12, "num_hidden_layers": 12,
      "pad_token_id": 1, "relative_attention_num_buckets": 32, "vocab_size": 30527})",
                           "c.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->model_type, "mpnet");
  EXPECT_EQ(c->position_offset, 2);
  EXPECT_EQ(c->max_positions(), 512);
  EXPECT_FALSE(c->token_types);
  EXPECT_EQ(c->accepted_type_ids(), INT64_MAX);
  EXPECT_EQ(c->relative_attention_num_buckets, 32);
  EXPECT_EQ(c->layer_norm_eps, 1e-5);
}

TEST(BertConfigTest, ReadsDistilBertKeysAndRobertaOffsets) {
  auto d = ParseBertConfig(R"({"model_type": "distilbert", "vocab_size": 100, "dim": 42,
      "n_layers": 3, "n_heads": 3, "hidden_dim": 74, "activation": "relu",
      "sinusoidal_pos_embds": false})",
                           "c.json");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->hidden_size, 42);
  EXPECT_EQ(d->num_hidden_layers, 3);
  EXPECT_EQ(d->num_attention_heads, 3);
  EXPECT_EQ(d->intermediate_size, 74);
  EXPECT_EQ(d->hidden_act, "relu");
  EXPECT_FALSE(d->token_types);
  EXPECT_EQ(d->position_offset, 0);

  auto r = ParseBertConfig(R"({"model_type": "xlm-roberta", "vocab_size": 100,
      "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
      "intermediate_size": 16, "max_position_embeddings": 514, "type_vocab_size": 1})",
                           "c.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->pad_token_id, 1);  // transformers' default
  EXPECT_EQ(r->max_positions(), 512);
  EXPECT_TRUE(r->token_types);
  EXPECT_EQ(r->accepted_type_ids(), 1);

  auto e = ParseBertConfig(R"({"model_type": "electra", "vocab_size": 100, "hidden_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16})",
                           "c.json");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->embedding_size, 128);  // ElectraConfig's default

  EXPECT_EQ(ParseBertConfig(R"({"model_type": "roberta", "pad_token_id": 1,
      "max_position_embeddings": 2, "vocab_size": 100, "hidden_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16})",
                            "c.json")
                .status()
                .message(),
            "c.json: max_position_embeddings 2 leaves no position after pad_token_id 1");
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
  auto t5 = ParseBertConfig(j.replace(j.find("\"bert\""), 6, "\"t5\""), "c.json");
  EXPECT_EQ(t5.status().message(),
            "c.json: model_type 't5' is not supported; supported: bert, distilbert, electra, "
            "mpnet, roberta, xlm-roberta");

  j = kMiniLm;
  auto act = ParseBertConfig(j.replace(j.find("\"gelu\""), 6, "\"quick_gelu\""), "c.json");
  EXPECT_EQ(act.status().message(),
            "c.json: hidden_act 'quick_gelu' is not supported; supported: gelu, gelu_new, "
            "gelu_pytorch_tanh, relu, silu");

  j = kMiniLm;
  auto swish = ParseBertConfig(j.replace(j.find("\"gelu\""), 6, "\"swish\""), "c.json");
  ASSERT_TRUE(swish.ok()) << swish.status().ToString();
  EXPECT_EQ(swish->hidden_act, "silu");

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
