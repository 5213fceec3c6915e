// TorchScriptModel on modules written by tests/fixtures/make_torchscript_reference.py
// (the tiny BERT of tests/fixtures/heads, exported with
// nodes/infer/export_torchscript.py).
#include "nodes/infer/torchscript_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace nlpflow {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kDir = std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/torchscript";

struct Reference {
  TokenBatch batch;
  std::vector<std::vector<float>> output;
};

Reference LoadReference() {
  std::ifstream in(kDir + "/reference.json");
  const nlohmann::json doc = nlohmann::json::parse(in);
  Reference ref;
  const auto ids = doc.at("input_ids").get<std::vector<std::vector<int64_t>>>();
  const auto mask = doc.at("attention_mask").get<std::vector<std::vector<int64_t>>>();
  ref.batch.batch = static_cast<int64_t>(ids.size());
  ref.batch.seq_len = static_cast<int64_t>(ids[0].size());
  for (size_t r = 0; r < ids.size(); ++r) {
    ref.batch.input_ids.insert(ref.batch.input_ids.end(), ids[r].begin(), ids[r].end());
    ref.batch.attention_mask.insert(ref.batch.attention_mask.end(), mask[r].begin(),
                                    mask[r].end());
  }
  ref.output = doc.at("output").get<std::vector<std::vector<float>>>();
  return ref;
}

void ExpectMatches(const TorchScriptModel& model) {
  const Reference ref = LoadReference();
  auto out = model.Run(ref.batch);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), ref.output.size());
  for (size_t r = 0; r < ref.output.size(); ++r) {
    const auto* e = std::get_if<EmbeddingOutput>(&(*out)[r]);
    ASSERT_NE(e, nullptr) << "row " << r << " is not an embedding";
    ASSERT_EQ(e->values.size(), 32u);
    for (size_t k = 0; k < 32; ++k) {
      EXPECT_NEAR(e->values[k], ref.output[r][k], 1e-6) << "row " << r << " dim " << k;
    }
  }
}

TEST(TorchScriptModelTest, TracedThreeInputModuleMatchesPython) {
  auto model = TorchScriptModel::Load({.path = kDir + "/embed.pt"});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->inputs(), 3);
  EXPECT_EQ((*model)->task(), ModelTask::kEmbedding);
  ExpectMatches(**model);
}

TEST(TorchScriptModelTest, ScriptedTwoInputModuleMatchesPython) {
  auto model = TorchScriptModel::Load({.path = kDir + "/embed_two_inputs.pt"});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->inputs(), 2);
  ExpectMatches(**model);
}

TEST(TorchScriptModelTest, WrongSignatureNamesTheFile) {
  const std::string path = kDir + "/wrong_signature.pt";
  EXPECT_EQ(TorchScriptModel::Load({.path = path}).status().message(),
            path + ": forward(x: Tensor) does not match (input_ids: Tensor, attention_mask: "
                   "Tensor[, token_type_ids: Tensor])");
}

TEST(TorchScriptModelTest, MissingAndCorruptFilesNameTheFile) {
  EXPECT_EQ(TorchScriptModel::Load({.path = kDir + "/absent.pt"}).status().message(),
            "TorchScript file '" + kDir + "/absent.pt' does not exist");
  const std::string corrupt =
      std::filesystem::temp_directory_path() / "nlpflow_torchscript_corrupt.pt";
  {
    std::ifstream in(kDir + "/embed.pt", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(corrupt, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  const Status s = TorchScriptModel::Load({.path = corrupt}).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith(corrupt + ": not a loadable TorchScript module: "));
  std::filesystem::remove(corrupt);
}

TEST(TorchScriptModelTest, OutOfVocabularyIdsAreRejectedWhenTheVocabularyIsKnown) {
  auto model = TorchScriptModel::Load({.path = kDir + "/embed.pt", .vocab_size = 137});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  TokenBatch b;
  b.batch = 1;
  b.seq_len = 2;
  b.input_ids = {2, 137};
  b.attention_mask = {1, 1};
  EXPECT_THAT((*model)->Run(b).status().message(),
              HasSubstr("input id 137 at position 1 is outside the vocabulary [0, 137)"));
}

}  // namespace
}  // namespace nlpflow
