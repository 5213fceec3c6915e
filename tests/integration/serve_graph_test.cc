// End-to-end tests of the serve graph against a real Kafka broker that the
// test starts through scripts/kafka. Each test uses topics and a group of its
// own, so tests do not see each other's records.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/integration/test_util.h"

namespace nlpflow::testing {
namespace {

using ::testing::HasSubstr;

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new KafkaEnvironment);

class ServeGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bootstrap_ = KafkaCluster::bootstrap();
    ASSERT_FALSE(bootstrap_.empty()) << "the Kafka broker did not start";
    CreateTopic(bootstrap_, topics_.in, 4);
  }

  std::vector<std::string> Args(const std::vector<std::string>& extra = {}) {
    return RunArgs(bootstrap_, topics_.in, topics_.out, topics_.dlq, topics_.group, extra);
  }

  // Stops a pipeline with SIGTERM and expects a clean exit.
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

TEST_F(ServeGraphTest, ThousandTextsGiveThousandNormalizedEmbeddingsWithTheirKeys) {
  std::vector<std::pair<std::string, std::string>> input;
  for (int i = 0; i < 1000; ++i) input.emplace_back("key-" + std::to_string(i), TestText(i));
  ProduceAll(bootstrap_, topics_.in, input, {{"trace-id", "abc-123"}});

  Process p(Args(), tmp_.path() + "/nlpflow.log");
  auto results = ConsumeAll(bootstrap_, topics_.out, 1000, std::chrono::seconds(240));
  // Anything extra would show up here.
  auto extra = ConsumeAll(bootstrap_, topics_.out, 1001, std::chrono::seconds(60),
                          /*idle=*/std::chrono::seconds(3));
  StopCleanly(p);

  ASSERT_EQ(results.size(), 1000u) << p.Log();
  EXPECT_EQ(extra.size(), 1000u);
  std::set<std::string> keys;
  for (const auto& m : results) {
    ASSERT_TRUE(m.key.has_value());
    keys.insert(*m.key);
    auto e = EmbeddingOfJson(m.value);
    ASSERT_EQ(e.size(), 384u) << m.value.substr(0, 200);
    double norm = 0;
    for (float x : e) norm += double(x) * x;
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-4) << *m.key;
    EXPECT_EQ(m.headers.count("nlpflow.total_us"), 1u);
    EXPECT_EQ(m.headers.count("trace-id") ? m.headers.at("trace-id") : "", "abc-123");
  }
  EXPECT_EQ(keys.size(), 1000u);
  EXPECT_TRUE(keys.count("key-0") && keys.count("key-999"));
  // Offsets are committed only after acknowledgement, and all were: no lag.
  EXPECT_EQ(GroupLag(bootstrap_, topics_.group, topics_.in), 0);
  // Nothing became a dead letter.
  EXPECT_TRUE(ConsumeAll(bootstrap_, topics_.dlq, 1, std::chrono::seconds(2)).empty());
}

TEST_F(ServeGraphTest, EmbedCommandAndKafkaGiveTheSameVectors) {
  const int n = 200;
  std::vector<std::pair<std::string, std::string>> input;
  const std::string texts_path = tmp_.path() + "/texts.txt";
  {
    std::ofstream f(texts_path);
    for (int i = 0; i < n; ++i) {
      input.emplace_back(std::to_string(i), TestText(i * 7 + 3));
      f << TestText(i * 7 + 3) << "\n";
    }
  }
  ProduceAll(bootstrap_, topics_.in, input);
  Process p(Args(), tmp_.path() + "/nlpflow.log");
  auto results = ConsumeAll(bootstrap_, topics_.out, n, std::chrono::seconds(120));
  StopCleanly(p);
  ASSERT_EQ(results.size(), static_cast<size_t>(n));

  const std::string out_path = tmp_.path() + "/out.jsonl";
  Process embed({NlpflowBinary(), "embed", "--config", SourceDir() + "/configs/minilm-embed.yaml",
                 "--set", "model.path=" + SourceDir() + "/models/all-MiniLM-L6-v2"},
                tmp_.path() + "/embed.log", texts_path, out_path);
  auto code = embed.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(code.has_value());
  ASSERT_EQ(*code, 0) << embed.Log();
  std::vector<std::vector<float>> offline;
  std::ifstream in(out_path);
  for (std::string line; std::getline(in, line);) offline.push_back(EmbeddingOfJson(line));
  ASSERT_EQ(offline.size(), static_cast<size_t>(n));

  // Batches differ between the two runs (so do the GEMM shapes), which may
  // change the last bits of a float; nothing more.
  float worst = 0;
  for (const auto& m : results) {
    const auto& a = offline[std::stoi(*m.key)];
    auto b = EmbeddingOfJson(m.value);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  }
  EXPECT_LT(worst, 1e-5) << "largest difference between embed and Kafka results";
}

TEST_F(ServeGraphTest, KilledHardAndRestartedLosesNothing) {
  const int n = 5000;
  std::vector<std::pair<std::string, std::string>> input;
  for (int i = 0; i < n; ++i) input.emplace_back("k" + std::to_string(i), TestText(i));
  ProduceAll(bootstrap_, topics_.in, input);

  {
    // A short session timeout so the restarted instance does not wait 45 s
    // (librdkafka's default) for the group to give up on the killed one.
    Process first(Args({"kafka.consumer.session.timeout.ms=6000"}), tmp_.path() + "/first.log");
    // Kill it in the middle: once a fifth of the results are out.
    auto some = ConsumeAll(bootstrap_, topics_.out, n / 5, std::chrono::seconds(180));
    ASSERT_GE(some.size(), static_cast<size_t>(n / 5)) << first.Log();
    first.Signal(SIGKILL);
    ASSERT_EQ(first.Wait(std::chrono::seconds(10)).value_or(-1), 128 + SIGKILL);
  }
  auto before_restart = ConsumeAll(bootstrap_, topics_.out, n, std::chrono::seconds(60),
                                   /*idle=*/std::chrono::seconds(3));
  ASSERT_LT(before_restart.size(), static_cast<size_t>(n)) << "killed too late to test anything";

  Process second(Args({"kafka.consumer.session.timeout.ms=6000"}), tmp_.path() + "/second.log");
  ConsumeUntilKeys(bootstrap_, topics_.out, n, std::chrono::seconds(300));
  StopCleanly(second);
  // Everything on the output topic now, duplicates included.
  std::map<std::string, int> seen;
  for (const auto& m : ConsumeAll(bootstrap_, topics_.out, 3 * n, std::chrono::seconds(120),
                                  /*idle=*/std::chrono::seconds(3))) {
    ++seen[m.key.value_or("")];
  }

  int missing = 0, duplicates = 0;
  for (const auto& [key, value] : input) {
    auto it = seen.find(key);
    if (it == seen.end()) {
      ++missing;
    } else {
      duplicates += it->second - 1;
    }
  }
  std::printf("killed after %zu results; after restart: %zu keys, %d duplicates, %d missing\n",
              before_restart.size(), seen.size(), duplicates, missing);
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(seen.size(), static_cast<size_t>(n));
  EXPECT_EQ(GroupLag(bootstrap_, topics_.group, topics_.in), 0);
}

TEST_F(ServeGraphTest, PoisonRecordsBecomeDeadLettersAndTheStreamGoesOn) {
  std::vector<std::pair<std::string, std::string>> input;
  std::map<std::string, std::string> poison = {
      {"p-empty", R"({"text": ""})"},
      {"p-utf8", std::string("{\"text\": \"caf\xc3\x28 au lait\"}")},
      {"p-json", R"({"text": "unterminated)"},
      {"p-field", R"({"body": "no text field here"})"},
      {"p-large", "{\"text\": \"" + std::string(3000, 'a') + "\"}"},
  };
  std::map<std::string, std::string> reasons = {
      {"p-empty", "empty text"},
      {"p-utf8", "invalid UTF-8 at byte 13"},
      {"p-json", "invalid JSON"},
      {"p-field", "JSON field 'text' is missing"},
      {"p-large", "record too large: 3012 bytes, the limit is 2000"},
  };
  int good = 0;
  for (int i = 0; i < 300; ++i) {
    nlohmann::json j = {{"text", TestText(i)}, {"id", i}};
    input.emplace_back("g" + std::to_string(i), j.dump());
    ++good;
    if (i % 60 == 30) {
      for (const auto& [k, v] : poison) input.emplace_back(k + "-" + std::to_string(i), v);
    }
  }
  const size_t poison_count = input.size() - good;
  ProduceAll(bootstrap_, topics_.in, input);

  Process p(Args({"input.format=json", "input.max_record_bytes=2000"}),
            tmp_.path() + "/nlpflow.log");
  auto results = ConsumeAll(bootstrap_, topics_.out, good, std::chrono::seconds(180));
  auto dead = ConsumeAll(bootstrap_, topics_.dlq, poison_count, std::chrono::seconds(60));
  StopCleanly(p);

  ASSERT_EQ(results.size(), static_cast<size_t>(good)) << p.Log();
  for (const auto& m : results) EXPECT_EQ(m.key->substr(0, 1), "g");
  ASSERT_EQ(dead.size(), poison_count);
  for (const auto& m : dead) {
    const std::string kind = m.key->substr(0, m.key->rfind('-'));
    auto j = nlohmann::json::parse(m.value);
    EXPECT_EQ(j["stage"], "decode") << *m.key;
    EXPECT_EQ(j["reason"], reasons.at(kind)) << *m.key;
    EXPECT_EQ(m.headers.at("nlpflow.dlq.reason"), reasons.at(kind));
    EXPECT_EQ(j["topic"], topics_.in);
    EXPECT_GE(j["offset"].get<int64_t>(), 0);
  }
  // Dead letters are committed like any other record.
  EXPECT_EQ(GroupLag(bootstrap_, topics_.group, topics_.in), 0);
}

TEST_F(ServeGraphTest, ExpiredRecordsBecomeDeadLettersAndAreCommitted) {
  std::vector<std::pair<std::string, std::string>> old_input, new_input;
  for (int i = 0; i < 30; ++i) old_input.emplace_back("old-" + std::to_string(i), TestText(i));
  for (int i = 0; i < 20; ++i) new_input.emplace_back("new-" + std::to_string(i), TestText(100 + i));
  ProduceAll(bootstrap_, topics_.in, old_input);
  // Their Kafka timestamps are now more than the 4 s budget in the past.
  std::this_thread::sleep_for(std::chrono::milliseconds(5000));

  Process p(Args({"batch.deadline_ms=4000"}), tmp_.path() + "/nlpflow.log");
  auto dead = ConsumeAll(bootstrap_, topics_.dlq, old_input.size(), std::chrono::seconds(120));
  // The pipeline runs: fresh records are well within their budget.
  ProduceAll(bootstrap_, topics_.in, new_input);
  auto results = ConsumeAll(bootstrap_, topics_.out, new_input.size(), std::chrono::seconds(120));
  StopCleanly(p);

  ASSERT_EQ(dead.size(), old_input.size()) << p.Log();
  for (const auto& m : dead) {
    EXPECT_EQ(m.key->substr(0, 4), "old-");
    auto j = nlohmann::json::parse(m.value);
    EXPECT_EQ(j["stage"], "batch") << *m.key;
    EXPECT_EQ(j["reason"], "expired") << *m.key;
    EXPECT_EQ(m.headers.at("nlpflow.dlq.reason"), "expired");
  }
  ASSERT_EQ(results.size(), new_input.size()) << p.Log();
  for (const auto& m : results) EXPECT_EQ(m.key->substr(0, 4), "new-");
  // Expired records are committed like any other dead letter.
  EXPECT_EQ(GroupLag(bootstrap_, topics_.group, topics_.in), 0);
}

TEST_F(ServeGraphTest, OrderedPerPartitionKeepsEachPartitionsInputOrder) {
  // One key per input partition's worth of records: a key's records share an
  // input partition and an output partition, so the output shows their order.
  // Texts of varied length make the dynamic batcher group them out of order.
  std::vector<std::pair<std::string, std::string>> input;
  for (int i = 0; i < 240; ++i) {
    std::string text = TestText(i);
    for (int k = 0; k < i % 7; ++k) text.append(" ").append(TestText(i + k));
    input.emplace_back(std::string("k").append(std::to_string(i % 4)), text);
  }
  ProduceAll(bootstrap_, topics_.in, input);

  Process p(Args({"pipeline.ordered_per_partition=true", "model.instances=2",
                  "batch.max_batch_size=8"}),
            tmp_.path() + "/nlpflow.log");
  auto results = ConsumeAll(bootstrap_, topics_.out, input.size(), std::chrono::seconds(240));
  StopCleanly(p);

  ASSERT_EQ(results.size(), input.size()) << p.Log();
  std::map<std::string, int64_t> last_offset;
  std::map<std::string, int32_t> in_partition;
  for (const auto& m : results) {
    auto j = nlohmann::json::parse(m.value);
    const int64_t offset = j["source"]["offset"].get<int64_t>();
    const int32_t partition = j["source"]["partition"].get<int32_t>();
    auto it = last_offset.find(*m.key);
    if (it != last_offset.end()) {
      EXPECT_GT(offset, it->second) << "key " << *m.key << ": out of input order";
      EXPECT_EQ(partition, in_partition[*m.key]);
    }
    last_offset[*m.key] = offset;
    in_partition[*m.key] = partition;
  }
  EXPECT_EQ(GroupLag(bootstrap_, topics_.group, topics_.in), 0);
}

}  // namespace
}  // namespace nlpflow::testing
