// Every encoder family against transformers, on random-weight checkpoints that
// tests/fixtures/make_family_reference.py builds at test time (ctest fixture
// encoder_families, into build/encoder_families): mean-pooled embeddings of
// the 1,200 parity texts at cosine >= 0.99999, classification logits within
// 1e-4 of the largest |logit| of their row; the RoBERTa base model saved as
// pytorch_model.bin, sharded safetensors, sharded pytorch_model.bin, fp16 and
// bf16 loads to the same outputs; the errors a bad folder gets; and XLM-R
// end to end from text (a sentencepiece Unigram tokenizer.json, tokenized by
// nlpflow).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <variant>
#include <vector>

#include "common/model_output.h"
#include "nodes/infer/bert_classifier.h"
#include "nodes/infer/embedding_model.h"
#include "nodes/tokenize/tokenizer.h"
#include "tests/testing/reference_floats.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kRoot = std::string(NLPFLOW_BINARY_DIR) + "/encoder_families";
constexpr double kMinCosine = 0.99999;
constexpr double kLogitTolerance = 1e-4;  // relative to the row's largest |logit|

struct Reference {
  int64_t hidden = 0;
  std::vector<std::vector<int64_t>> ids;
  std::vector<float> embeddings, sequence_logits, token_logits;
};

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// Skips the test when the fixture was not built (run through ctest).
#define REQUIRE_FIXTURE(dir)                                                              \
  if (!fs::exists(std::string(dir) + "/reference.json")) {                                \
    GTEST_SKIP() << dir << "/reference.json is absent: ctest builds it "                  \
                 << "(tests/fixtures/make_family_reference.py " << kRoot << ")";          \
  }

Reference LoadReference(const std::string& family) {
  const nlohmann::json j = ReadJson(kRoot + "/" + family + "/reference.json");
  Reference r;
  r.hidden = j.at("hidden").get<int64_t>();
  r.ids = j.at("ids").get<std::vector<std::vector<int64_t>>>();
  r.embeddings = Base64Floats(j.at("embeddings").get<std::string>());
  r.sequence_logits = Base64Floats(j.at("sequence_logits").get<std::string>());
  r.token_logits = Base64Floats(j.at("token_logits").get<std::string>());
  return r;
}

// Calls `run` on batches of up to 32 texts of similar length (sorted by
// length, padded to the longest of each batch, pad id 0), with the indices of
// the texts in each batch.
void ForEachBatch(const std::vector<std::vector<int64_t>>& ids,
                  const std::function<void(const TokenBatch&, const std::vector<size_t>&)>& run) {
  std::vector<size_t> order(ids.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ids[a].size() < ids[b].size(); });
  for (size_t start = 0; start < order.size(); start += 32) {
    const std::vector<size_t> rows(order.begin() + start,
                                   order.begin() + std::min(order.size(), start + 32));
    TokenBatch b;
    b.batch = static_cast<int64_t>(rows.size());
    for (size_t r : rows) b.seq_len = std::max<int64_t>(b.seq_len, ids[r].size());
    for (size_t r : rows) {
      for (int64_t t = 0; t < b.seq_len; ++t) {
        const bool real = t < static_cast<int64_t>(ids[r].size());
        b.input_ids.push_back(real ? ids[r][t] : 0);
        b.attention_mask.push_back(real ? 1 : 0);
      }
    }
    run(b, rows);
  }
}

// Mean-pooled, unnormalized embeddings of every text, in text order.
std::vector<float> Embeddings(const std::string& dir, const std::vector<std::vector<int64_t>>& ids,
                              int64_t hidden) {
  auto model = EmbeddingModel::Load({.path = dir, .pooling = "mean", .normalize = false});
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return {};
  EXPECT_EQ((*model)->dim(), hidden);
  std::vector<float> out(ids.size() * hidden);
  ForEachBatch(ids, [&](const TokenBatch& b, const std::vector<size_t>& rows) {
    auto e = (*model)->Embed(b);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    for (size_t k = 0; k < rows.size(); ++k) {
      std::copy_n(e->data() + k * hidden, hidden, out.data() + rows[k] * hidden);
    }
  });
  return out;
}

// Every text's cosine >= kMinCosine; prints the worst.
void ExpectCosines(const std::vector<float>& got, const std::vector<float>& want, int64_t hidden,
                   const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const size_t n = got.size() / hidden;
  double worst = 2;
  size_t worst_i = 0;
  for (size_t i = 0; i < n; ++i) {
    const double c = Cosine(got.data() + i * hidden, want.data() + i * hidden, hidden);
    EXPECT_GE(c, kMinCosine) << what << ", text #" << i;
    if (c < worst) worst = c, worst_i = i;
  }
  std::printf("[ worst    ] %s: %zu texts, cosine 1 - %.3g (text #%zu)\n", what.c_str(), n,
              1 - worst, worst_i);
}

// |got - want| <= kLogitTolerance * max |want| of its row of `width`.
void ExpectLogits(const std::vector<float>& got, const std::vector<float>& want, int64_t width,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  for (size_t row = 0; row < got.size() / width; ++row) {
    double scale = 0;
    for (int64_t j = 0; j < width; ++j) scale = std::max<double>(scale, std::abs(want[row * width + j]));
    for (int64_t j = 0; j < width; ++j) {
      const double rel = std::abs(got[row * width + j] - want[row * width + j]) / scale;
      worst = std::max(worst, rel);
      ASSERT_LE(rel, kLogitTolerance) << what << ", row " << row << ", logit " << j << ": "
                                      << got[row * width + j] << " vs " << want[row * width + j];
    }
  }
  std::printf("[ worst    ] %s: %zu rows, largest difference %.3g of the row's largest logit\n",
              what.c_str(), got.size() / width, worst);
}

class FamilyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyTest, EmbeddingsMatchTransformersOnEveryText) {
  const std::string dir = kRoot + "/" + GetParam();
  REQUIRE_FIXTURE(dir);
  const Reference ref = LoadReference(GetParam());
  ASSERT_EQ(ref.ids.size(), 1200u);
  ExpectCosines(Embeddings(dir + "/base", ref.ids, ref.hidden), ref.embeddings, ref.hidden,
                GetParam());
}

TEST_P(FamilyTest, SequenceClassificationLogitsMatchTransformers) {
  const std::string dir = kRoot + "/" + GetParam();
  REQUIRE_FIXTURE(dir);
  const Reference ref = LoadReference(GetParam());
  auto model = BertClassifier::Load({.path = dir + "/sequence"});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ASSERT_EQ((*model)->task(), ModelTask::kSequenceClassification);
  ASSERT_EQ((*model)->labels(), (std::vector<std::string>{"negative", "neutral", "positive"}));
  std::vector<float> logits(ref.ids.size() * 3);
  ForEachBatch(ref.ids, [&](const TokenBatch& b, const std::vector<size_t>& rows) {
    auto out = (*model)->Run(b);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    for (size_t k = 0; k < rows.size(); ++k) {
      const auto& row = std::get<ClassificationOutput>((*out)[k]);
      ASSERT_EQ(row.logits.size(), 3u);
      std::copy_n(row.logits.data(), 3, logits.data() + rows[k] * 3);
    }
  });
  ExpectLogits(logits, ref.sequence_logits, 3, GetParam() + " sequence");
}

TEST_P(FamilyTest, TokenClassificationLogitsMatchTransformers) {
  const std::string dir = kRoot + "/" + GetParam();
  REQUIRE_FIXTURE(dir);
  const Reference ref = LoadReference(GetParam());
  auto model = BertClassifier::Load({.path = dir + "/token"});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ASSERT_EQ((*model)->task(), ModelTask::kTokenClassification);
  std::vector<size_t> first(ref.ids.size() + 1, 0);  // each text's first token row
  for (size_t i = 0; i < ref.ids.size(); ++i) first[i + 1] = first[i] + ref.ids[i].size();
  std::vector<float> logits(first.back() * 5);
  ForEachBatch(ref.ids, [&](const TokenBatch& b, const std::vector<size_t>& rows) {
    auto out = (*model)->Run(b);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    for (size_t k = 0; k < rows.size(); ++k) {
      const auto& row = std::get<TokenClassificationOutput>((*out)[k]);
      ASSERT_EQ(row.num_labels, 5);
      ASSERT_EQ(row.logits.size(), 5 * ref.ids[rows[k]].size());
      std::copy(row.logits.begin(), row.logits.end(), logits.data() + first[rows[k]] * 5);
    }
  });
  ExpectLogits(logits, ref.token_logits, 5, GetParam() + " token");
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyTest,
                         ::testing::Values("bert", "distilbert", "electra", "roberta",
                                           "xlm-roberta", "mpnet"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// XLM-R from text: nlpflow's Unigram tokenizer on the folder's
// tokenizer.json (sentencepiece, converted by XLMRobertaTokenizerFast) gives
// transformers' ids, and the model on them transformers' mean-pooled
// embeddings and sequence logits (xlm-roberta-text in the fixture).
class XlmRobertaFromText : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = kRoot + "/xlm-roberta-text";
    if (!fs::exists(dir_ + "/reference.json")) {
      GTEST_SKIP() << dir_ << "/reference.json is absent (sentencepiece missing, or run via ctest)";
    }
    j_ = ReadJson(dir_ + "/reference.json");
    auto loaded = LoadTokenizer(dir_ + "/base/tokenizer.json");
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    ASSERT_EQ(loaded->model_type, "Unigram");
    const auto texts = j_.at("texts").get<std::vector<std::string>>();
    for (const std::string& text : texts) {
      const Encoding e = loaded->tokenizer->Encode(text);
      ids_.emplace_back(e.ids.begin(), e.ids.end());
    }
    hidden_ = j_.at("hidden").get<int64_t>();
  }
  std::string dir_;
  nlohmann::json j_;
  std::vector<std::vector<int64_t>> ids_;
  int64_t hidden_ = 0;
};

TEST_F(XlmRobertaFromText, TokenIdsMatchTransformers) {
  const auto want = j_.at("ids").get<std::vector<std::vector<int64_t>>>();
  ASSERT_EQ(want.size(), 300u);
  ASSERT_EQ(ids_.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(ids_[i], want[i]) << "text #" << i;
}

TEST_F(XlmRobertaFromText, EmbeddingsMatchTransformers) {
  ExpectCosines(Embeddings(dir_ + "/base", ids_, hidden_),
                Base64Floats(j_.at("embeddings").get<std::string>()), hidden_,
                "xlm-roberta from text");
}

TEST_F(XlmRobertaFromText, SequenceClassificationLogitsMatchTransformers) {
  auto model = BertClassifier::Load({.path = dir_ + "/sequence"});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::vector<float> logits(ids_.size() * 3);
  ForEachBatch(ids_, [&](const TokenBatch& b, const std::vector<size_t>& rows) {
    auto out = (*model)->Run(b);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    for (size_t k = 0; k < rows.size(); ++k) {
      const auto& row = std::get<ClassificationOutput>((*out)[k]);
      ASSERT_EQ(row.logits.size(), 3u);
      std::copy_n(row.logits.data(), 3, logits.data() + rows[k] * 3);
    }
  });
  ExpectLogits(logits, Base64Floats(j_.at("sequence_logits").get<std::string>()), 3,
               "xlm-roberta from text, sequence");
}

// The RoBERTa base model in other formats: the float32 ones give bit-equal
// outputs to model.safetensors; fp16 and bf16 match transformers running the
// same rounded weights.
TEST(WeightFormats, LoadToTheSameOutputs) {
  const std::string dir = kRoot + "/roberta";
  REQUIRE_FIXTURE(dir);
  const Reference ref = LoadReference("roberta");
  const std::vector<float> base = Embeddings(dir + "/base", ref.ids, ref.hidden);
  ASSERT_FALSE(base.empty());
  for (const char* variant : {"bin", "sharded", "sharded_bin"}) {
    const std::string v = dir + "/variants/" + variant;
    ASSERT_FALSE(fs::exists(v + "/model.safetensors")) << v;
    const std::vector<float> got = Embeddings(v, ref.ids, ref.hidden);
    EXPECT_TRUE(got == base) << variant << " differs from model.safetensors";
  }
  const nlohmann::json rounded = ReadJson(dir + "/variants/reference.json");
  for (const char* variant : {"fp16", "bf16"}) {
    const std::vector<float> got = Embeddings(dir + "/variants/" + variant, ref.ids, ref.hidden);
    ExpectCosines(got, Base64Floats(rounded.at(variant).get<std::string>()), ref.hidden,
                  std::string("roberta ") + variant);
    EXPECT_FALSE(got == base) << variant << ": the weights were not rounded";
  }
}

// A copy of `from` (config.json and weights) into a fresh folder with
// `edit` applied to config.json.
std::string EditedCopy(const std::string& from, const std::string& name,
                       const std::function<void(nlohmann::json&)>& edit) {
  const std::string to = ::testing::TempDir() + "/encoder_family_" + name;
  fs::remove_all(to);
  fs::create_directories(to);
  for (const auto& entry : fs::directory_iterator(from)) {
    fs::copy(entry.path(), to + "/" + entry.path().filename().string());
  }
  nlohmann::json config = ReadJson(to + "/config.json");
  edit(config);
  std::ofstream(to + "/config.json") << config.dump();
  return to;
}

TEST(FamilyErrors, UnsupportedModelTypeNamesItAndTheSupportedOnes) {
  const std::string dir = kRoot + "/roberta";
  REQUIRE_FIXTURE(dir);
  const std::string t5 =
      EditedCopy(dir + "/base", "t5", [](nlohmann::json& c) { c["model_type"] = "t5"; });
  auto model = EmbeddingModel::Load({.path = t5});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().message(),
            t5 + "/config.json: model_type 't5' is not supported; supported: bert, distilbert, "
                 "electra, mpnet, roberta, xlm-roberta");
  auto classifier = BertClassifier::Load({.path = t5});
  EXPECT_EQ(classifier.status().message(), model.status().message());
}

TEST(FamilyErrors, ConfigWeightsMismatchNamesTheTensor) {
  const std::string dir = kRoot + "/mpnet";
  REQUIRE_FIXTURE(dir);
  const std::string wide = EditedCopy(dir + "/base", "ffn",
                                      [](nlohmann::json& c) { c["intermediate_size"] = 80; });
  auto model = EmbeddingModel::Load({.path = wide});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().message(),
            wide + "/model.safetensors: tensor 'encoder.layer.0.intermediate.dense.weight' has "
                   "shape [74, 42] but config.json implies [80, 42]");

  const std::string bin_dir = kRoot + "/roberta/variants/bin";
  const std::string bin = EditedCopy(bin_dir, "bin_heads",
                                     [](nlohmann::json& c) { c["hidden_size"] = 45; });
  auto from_bin = EmbeddingModel::Load({.path = bin});
  ASSERT_FALSE(from_bin.ok());
  EXPECT_EQ(from_bin.status().message(),
            bin + "/pytorch_model.bin: tensor 'embeddings.word_embeddings.weight' has shape "
                  "[6000, 42] but config.json implies [6000, 45]");

  // A sequence model's folder with a config that says token classification
  // of another family.
  const std::string wrong = EditedCopy(kRoot + "/distilbert/sequence", "arch", [](nlohmann::json& c) {
    c["architectures"] = {"BertForTokenClassification"};
  });
  auto arch = BertClassifier::Load({.path = wrong});
  EXPECT_EQ(arch.status().message(),
            wrong + "/config.json: architectures[0] is 'BertForTokenClassification'; supported "
                    "for model_type distilbert: DistilBertForSequenceClassification, "
                    "DistilBertForTokenClassification");

  const std::string sinusoidal = EditedCopy(
      kRoot + "/distilbert/base", "sinusoidal",
      [](nlohmann::json& c) { c["sinusoidal_pos_embds"] = true; });
  EXPECT_EQ(EmbeddingModel::Load({.path = sinusoidal}).status().message(),
            sinusoidal + "/config.json: DistilBERT with sinusoidal_pos_embds true is not "
                         "supported (only learned position embeddings)");
}

TEST(FamilyErrors, ShardIndexNamingAMissingShard) {
  const std::string dir = kRoot + "/roberta/variants/sharded";
  REQUIRE_FIXTURE(kRoot + "/roberta");
  const std::string copy = EditedCopy(dir, "missing_shard", [](nlohmann::json&) {});
  fs::remove(copy + "/model-00002-of-00004.safetensors");
  auto model = EmbeddingModel::Load({.path = copy});
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(model.status().message(),
              HasSubstr(copy + "/model-00002-of-00004.safetensors"));
  EXPECT_THAT(model.status().message(), HasSubstr(copy + "/model.safetensors.index.json"));
}

// RoBERTa's positions start after pad_token_id: 128 tokens fill its
// 130-entry table, 129 are refused by name.
TEST(FamilyErrors, RobertaMaxPositionsLeavesRoomForTheOffset) {
  const std::string dir = kRoot + "/roberta";
  REQUIRE_FIXTURE(dir);
  auto model = EmbeddingModel::Load({.path = dir + "/base"});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->max_positions(), 128);
  TokenBatch b{.batch = 1, .seq_len = 129};
  b.input_ids.assign(129, 5);
  b.attention_mask.assign(129, 1);
  EXPECT_EQ((*model)->Embed(b).status().message(),
            "token batch row 0: 129 tokens exceed the model's max_positions 128");
}

}  // namespace
}  // namespace nlpflow
