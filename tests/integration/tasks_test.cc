// Classifiers and token taggers served on a real Kafka broker (started
// through scripts/kafka): `nlpflow run --set model.path=...` with nothing else
// changed. Each test serves 1,000 records of the texts in
// tests/fixtures/tasks/reference.json and checks every key's typed result
// against what Hugging Face's pipeline said for its text, in JSON and in
// Protobuf, with poison records as dead letters and every offset committed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "schemas/result.pb.h"
#include "tests/integration/test_util.h"

namespace nlpflow::testing {
namespace {

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new KafkaEnvironment);
const std::string kTasks = std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/tasks";

const nlohmann::json& Reference() {
  static const nlohmann::json doc = [] {
    std::ifstream in(kTasks + "/reference.json");
    return nlohmann::json::parse(in);
  }();
  return doc;
}

class TasksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bootstrap_ = KafkaCluster::bootstrap();
    ASSERT_FALSE(bootstrap_.empty()) << "the Kafka broker did not start";
    CreateTopic(bootstrap_, topics_.in, 4);
  }
  std::vector<std::string> Args(const std::vector<std::string>& extra) {
    return RunArgs(bootstrap_, topics_.in, topics_.out, topics_.dlq, topics_.group, extra);
  }
  void StopCleanly(Process& p) {
    p.Signal(SIGTERM);
    auto code = p.Wait(std::chrono::seconds(60));
    ASSERT_TRUE(code.has_value()) << "nlpflow did not stop within 60 s\n" << p.Log();
    EXPECT_EQ(*code, 0) << p.Log();
  }
  std::string bootstrap_;
  const TestTopics topics_ = TopicsOfCurrentTest();
  TempDir tmp_;
};

TEST_F(TasksTest, AClassifierServesAThousandRecordsWithLabels) {
  const nlohmann::json& items = Reference().at("models").at("classify3");
  std::vector<std::pair<std::string, std::string>> input;
  for (int i = 0; i < 1000; ++i) {
    input.emplace_back("k" + std::to_string(i),
                       nlohmann::json({{"text", items[i % items.size()].at("text")}, {"id", i}})
                           .dump());
  }
  input.emplace_back("poison", R"({"text": ""})");
  ProduceAll(bootstrap_, topics_.in, input);

  Process p(Args({"model.path=" + kTasks + "/classify3", "model.task=auto", "input.format=json"}),
            tmp_.path() + "/nlpflow.log");
  auto results = ConsumeAll(bootstrap_, topics_.out, 1000, std::chrono::seconds(180));
  auto dead = ConsumeAll(bootstrap_, topics_.dlq, 1, std::chrono::seconds(60));
  StopCleanly(p);

  ASSERT_EQ(results.size(), 1000u) << p.Log();
  std::set<std::string> keys;
  for (const auto& m : results) {
    keys.insert(*m.key);
    const nlohmann::json j = nlohmann::json::parse(m.value);
    const int i = std::stoi(m.key->substr(1));
    EXPECT_EQ(j.at("id"), std::to_string(i));
    const nlohmann::json& want = items[i % items.size()].at("labels");
    EXPECT_EQ(j.at("label"), want[0].at("label")) << *m.key;
    EXPECT_NEAR(j.at("score").get<double>(), want[0].at("score").get<double>(), 1e-4);
    ASSERT_EQ(j.at("labels").size(), 3u);
    for (size_t k = 0; k < 3; ++k) EXPECT_EQ(j["labels"][k].at("label"), want[k].at("label"));
    EXPECT_EQ(j.at("logits").size(), 3u);
    EXPECT_FALSE(j.contains("embedding"));
  }
  EXPECT_EQ(keys.size(), 1000u);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(dead[0].value).at("reason"), "empty text");
  EXPECT_EQ(GroupLag(bootstrap_, topics_.group, topics_.in), 0);
}

TEST_F(TasksTest, ATokenTaggerServesAThousandRecordsOfEntitiesInProtobuf) {
  const nlohmann::json& items = Reference().at("models").at("ner7");
  std::vector<std::pair<std::string, std::string>> input;
  for (int i = 0; i < 1000; ++i) {
    input.emplace_back("k" + std::to_string(i), items[i % items.size()].at("text"));
  }
  input.emplace_back("poison", "bad \xff byte");
  ProduceAll(bootstrap_, topics_.in, input);

  Process p(Args({"model.path=" + kTasks + "/ner7", "output.format=protobuf",
                  "model.aggregation=first"}),
            tmp_.path() + "/nlpflow.log");
  auto results = ConsumeAll(bootstrap_, topics_.out, 1000, std::chrono::seconds(180));
  auto dead = ConsumeAll(bootstrap_, topics_.dlq, 1, std::chrono::seconds(60));
  StopCleanly(p);

  ASSERT_EQ(results.size(), 1000u) << p.Log();
  std::set<std::string> keys;
  int64_t entities = 0;
  for (const auto& m : results) {
    keys.insert(*m.key);
    nlpflow::v1::Result r;
    ASSERT_TRUE(r.ParseFromString(m.value)) << *m.key;
    ASSERT_EQ(r.output_case(), nlpflow::v1::Result::kTokenClassification) << *m.key;
    EXPECT_EQ(r.embedding_size(), 0);
    const int i = std::stoi(m.key->substr(1));
    const nlohmann::json& want = items[i % items.size()].at("entities").at("first");
    ASSERT_EQ(r.token_classification().entities_size(), static_cast<int>(want.size())) << *m.key;
    for (int k = 0; k < r.token_classification().entities_size(); ++k) {
      const auto& e = r.token_classification().entities(k);
      EXPECT_EQ(e.entity_group(), want[k].at("entity_group").get<std::string>());
      EXPECT_EQ(e.word(), want[k].at("word").get<std::string>());
      EXPECT_EQ(e.start(), want[k].at("start").get<int64_t>());
      EXPECT_EQ(e.end(), want[k].at("end").get<int64_t>());
      EXPECT_NEAR(e.score(), want[k].at("score").get<double>(), 1e-4);
      ++entities;
    }
  }
  EXPECT_EQ(keys.size(), 1000u);
  EXPECT_GT(entities, 1000);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].headers.at("nlpflow.dlq.reason"), "invalid UTF-8 at byte 4");
  EXPECT_EQ(GroupLag(bootstrap_, topics_.group, topics_.in), 0);
}

}  // namespace
}  // namespace nlpflow::testing
