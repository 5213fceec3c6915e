// all-mpnet-base-v2 (MPNet, 12 layers, hidden 768; models/all-mpnet-base-v2,
// which scripts/setup fetches) against sentence-transformers on the 1,200
// parity texts (tests/fixtures/mpnet_reference.json, written by
// tests/fixtures/make_mpnet_reference.py): nlpflow's WordPiece tokenizer gives
// sentence-transformers' ids on every text, and every embedding, in batches of
// 32 texts of similar length, has cosine >= 0.99999. Skipped when the model is
// absent. Label `parity`: about 3 CPU-minutes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "nodes/infer/embedding_model.h"
#include "nodes/tokenize/wordpiece_tokenizer.h"
#include "tests/testing/reference_floats.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;

const std::string kModelDir = std::string(NLPFLOW_SOURCE_DIR) + "/models/all-mpnet-base-v2";
const std::string kFixture =
    std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/mpnet_reference.json";
constexpr int64_t kDim = 768;
constexpr double kMinCosine = 0.99999;

struct Item {
  std::string text;
  std::vector<int64_t> ids;
  std::vector<float> embedding;
};

std::vector<Item> LoadFixture() {
  std::ifstream in(kFixture);
  const nlohmann::json doc = nlohmann::json::parse(in);
  std::vector<Item> items;
  for (const auto& j : doc.at("items")) {
    items.push_back({j.at("text").get<std::string>(), j.at("input_ids").get<std::vector<int64_t>>(),
                     Base64Floats(j.at("embedding_f32").get<std::string>())});
  }
  return items;
}

class MpnetParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kModelDir + "/model.safetensors")) {
      GTEST_SKIP() << kModelDir << " is absent (scripts/setup fetches it)";
    }
  }
};

TEST_F(MpnetParityTest, TokenizerGivesSentenceTransformersIds) {
  const std::vector<Item> items = LoadFixture();
  ASSERT_EQ(items.size(), 1200u);
  auto tokenizer = WordPieceTokenizer::FromTokenizerJson(kModelDir + "/tokenizer.json");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  auto model = EmbeddingModel::Load({.path = kModelDir});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ASSERT_EQ((*model)->max_seq_length(), 384);  // sentence_bert_config.json
  (*tokenizer)->set_max_length(static_cast<int>((*model)->max_seq_length()));
  int truncated = 0;
  for (const Item& item : items) {
    const Encoding e = (*tokenizer)->Encode(item.text);
    ASSERT_EQ(std::vector<int64_t>(e.ids.begin(), e.ids.end()), item.ids) << item.text;
    truncated += item.ids.size() == 384;
  }
  std::printf("[ ids      ] 1200 texts equal, %d truncated at 384\n", truncated);
}

TEST_F(MpnetParityTest, EveryTextMatchesSentenceTransformers) {
  const std::vector<Item> items = LoadFixture();
  auto model = EmbeddingModel::Load({.path = kModelDir});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ASSERT_EQ((*model)->dim(), kDim);
  ASSERT_EQ((*model)->pooling(), "mean");
  std::vector<size_t> order(items.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return items[a].ids.size() < items[b].ids.size();
  });
  std::vector<double> cosines(items.size(), 2.0);
  for (size_t start = 0; start < order.size(); start += 32) {
    const size_t end = std::min(order.size(), start + 32);
    TokenBatch b;
    b.batch = static_cast<int64_t>(end - start);
    for (size_t k = start; k < end; ++k) {
      b.seq_len = std::max<int64_t>(b.seq_len, static_cast<int64_t>(items[order[k]].ids.size()));
    }
    for (size_t k = start; k < end; ++k) {
      const std::vector<int64_t>& ids = items[order[k]].ids;
      for (int64_t t = 0; t < b.seq_len; ++t) {
        const bool real = t < static_cast<int64_t>(ids.size());
        b.input_ids.push_back(real ? ids[t] : 1);  // <pad>
        b.attention_mask.push_back(real ? 1 : 0);
      }
    }
    auto out = (*model)->Embed(b);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    for (size_t k = start; k < end; ++k) {
      cosines[order[k]] =
          Cosine(out->data() + (k - start) * kDim, items[order[k]].embedding.data(), kDim);
    }
  }
  size_t worst = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_GE(cosines[i], kMinCosine) << "text #" << i << ": " << items[i].text;
    if (cosines[i] < cosines[worst]) worst = i;
  }
  std::printf("[ worst    ] all-mpnet-base-v2, %zu texts: cosine 1 - %.3g (text #%zu, %zu tokens)\n",
              items.size(), 1 - cosines[worst], worst, items[worst].ids.size());
}

}  // namespace
}  // namespace nlpflow
