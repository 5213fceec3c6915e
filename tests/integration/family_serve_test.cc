// Each encoder family served through a real Kafka broker: the random-weight
// base checkpoints that tests/fixtures/make_family_reference.py builds (ctest
// fixture encoder_families) and all-mpnet-base-v2, with `nlpflow run` reading
// raw texts from a topic; every result's embedding has cosine >= 0.99999 to
// transformers' / sentence-transformers' for that text (RoBERTa with the
// byte-level BPE fixture tokenizer). Not here yet: XLM-RoBERTa, whose Unigram
// tokenizer is not in nodes/tokenize yet.
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/integration/test_util.h"
#include "tests/testing/reference_floats.h"

namespace nlpflow::testing {
namespace {

namespace fs = std::filesystem;

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new KafkaEnvironment);
constexpr int kTexts = 40;

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

double Cosine(const std::vector<float>& a, const float* b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += double{a[i]} * b[i];
    na += double{a[i]} * a[i];
    nb += double{b[i]} * b[i];
  }
  return dot / std::sqrt(na * nb);
}

struct Case {
  std::string model_dir;
  std::vector<std::string> texts;          // by key
  std::vector<std::vector<float>> embeddings;  // by key
};

// The first kTexts non-empty parity texts of at most `max_ids` ids (so that
// no truncation rule is involved), with their references.
Case FamilyCase(const std::string& family) {
  const std::string root = std::string(NLPFLOW_BINARY_DIR) + "/encoder_families/" + family;
  Case c{root + "/base", {}, {}};
  if (!fs::exists(root + "/reference.json")) return c;
  const nlohmann::json ref = ReadJson(root + "/reference.json");
  const nlohmann::json texts =
      ReadJson(SourceDir() + "/tests/fixtures/embedding_reference_large.json").at("items");
  const int64_t hidden = ref.at("hidden").get<int64_t>();
  const std::vector<float> all = Base64Floats(ref.at("embeddings").get<std::string>());
  for (size_t i = 0; i < texts.size() && static_cast<int>(c.texts.size()) < kTexts; ++i) {
    const std::string text = texts[i].at("text").get<std::string>();
    if (text.empty() || ref.at("ids")[i].size() > 120) continue;
    c.texts.push_back(text);
    c.embeddings.emplace_back(all.begin() + i * hidden, all.begin() + (i + 1) * hidden);
  }
  return c;
}

class FamilyServeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyServeTest, ServedEmbeddingsMatchTheReference) {
  Case c;
  if (GetParam() == "all-mpnet-base-v2") {
    c.model_dir = SourceDir() + "/models/all-mpnet-base-v2";
    if (!fs::exists(c.model_dir + "/model.safetensors")) GTEST_SKIP() << c.model_dir << " absent";
    const nlohmann::json items = ReadJson(SourceDir() + "/tests/fixtures/mpnet_reference.json")
                                     .at("items");
    for (size_t i = 0; i < items.size() && static_cast<int>(c.texts.size()) < kTexts; ++i) {
      if (items[i].at("text").get<std::string>().empty()) continue;
      c.texts.push_back(items[i].at("text").get<std::string>());
      c.embeddings.push_back(Base64Floats(items[i].at("embedding_f32").get<std::string>()));
    }
  } else {
    c = FamilyCase(GetParam());
    if (c.texts.empty()) GTEST_SKIP() << "build/encoder_families is absent: run through ctest";
  }
  const std::string bootstrap = KafkaCluster::bootstrap();
  ASSERT_FALSE(bootstrap.empty()) << "the Kafka broker did not start";
  const TestTopics topics = TopicsOfCurrentTest();
  CreateTopic(bootstrap, topics.in, 2);
  std::vector<std::pair<std::string, std::string>> input;
  for (size_t i = 0; i < c.texts.size(); ++i) input.emplace_back(std::to_string(i), c.texts[i]);
  ProduceAll(bootstrap, topics.in, input);

  TempDir tmp;
  Process p(RunArgs(bootstrap, topics.in, topics.out, topics.dlq, topics.group,
                    {"model.path=" + c.model_dir, "model.pooling=mean"}),
            tmp.path() + "/nlpflow.log");
  auto results = ConsumeAll(bootstrap, topics.out, c.texts.size(), std::chrono::seconds(180));
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(std::chrono::seconds(60)).value_or(-1), 0) << p.Log();
  ASSERT_EQ(results.size(), c.texts.size()) << p.Log();
  double worst = 2;
  for (const auto& m : results) {
    ASSERT_TRUE(m.key.has_value());
    const size_t i = std::stoul(*m.key);
    const std::vector<float> e = EmbeddingOfJson(m.value);
    ASSERT_EQ(e.size(), c.embeddings[i].size()) << m.value.substr(0, 200);
    const double cosine = Cosine(e, c.embeddings[i].data());
    EXPECT_GE(cosine, 0.99999) << GetParam() << ", text " << i << ": " << c.texts[i];
    worst = std::min(worst, cosine);
  }
  std::printf("[ worst    ] %s served: %zu texts, cosine 1 - %.3g\n", GetParam().c_str(),
              results.size(), 1 - worst);
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyServeTest,
                         ::testing::Values("bert", "distilbert", "electra", "roberta", "mpnet",
                                           "all-mpnet-base-v2"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace nlpflow::testing
