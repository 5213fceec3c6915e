// The connectors against a real Kafka broker: what librdkafka's mock cluster
// cannot show. Topic creation through the Admin API, and that a member
// commits the done offsets of the partitions it gives up at the revoke (the
// mock rejects commits while its group is rebalancing; a real broker accepts
// them in PreparingRebalance).
//
// Uses the broker at $NLPFLOW_KAFKA_BOOTSTRAP if set; otherwise starts one
// with scripts/kafka for the whole binary and stops it at the end.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "connectors/kafka/kafka_sink.h"
#include "connectors/kafka/kafka_source.h"
#include "connectors/kafka/topic_admin.h"
#include "tests/connectors/kafka/kafka_test_util.h"

namespace nlpflow {
namespace {

using testing_kafka::Collector;
using testing_kafka::CommittedOffsets;
using testing_kafka::DoneMarkingSource;
using testing_kafka::HighWatermarks;
using testing_kafka::kNoOffset;
using testing_kafka::ProtocolName;
using testing_kafka::WaitUntil;
using std::chrono::milliseconds;
using std::chrono::seconds;

class RealBroker : public ::testing::Environment {
 public:
  static const std::string& bootstrap() { return bootstrap_; }
  static const std::string& error() { return error_; }

  void SetUp() override {
    if (const char* given = std::getenv("NLPFLOW_KAFKA_BOOTSTRAP")) {
      bootstrap_ = given;
      return;
    }
    dir_ = "/tmp/nlpflow-kafka-connectors-" + std::to_string(getpid());
    std::string command = std::string("bash ") + NLPFLOW_SOURCE_DIR +
                          "/scripts/kafka start --dir " + dir_ + " --owner " +
                          std::to_string(getpid());
    FILE* out = popen(command.c_str(), "r");
    char line[512] = {0};
    if (out != nullptr && std::fgets(line, sizeof(line), out) != nullptr) {
      bootstrap_ = line;
      while (!bootstrap_.empty() && std::isspace(bootstrap_.back())) {
        bootstrap_.pop_back();
      }
    }
    int rc = out != nullptr ? pclose(out) : -1;
    if (rc != 0 || bootstrap_.empty()) {
      error_ = "scripts/kafka start failed (rc " + std::to_string(rc) +
               "); see its stderr above";
      bootstrap_.clear();
    }
  }

  void TearDown() override {
    if (dir_.empty()) return;
    std::string command = std::string("bash ") + NLPFLOW_SOURCE_DIR +
                          "/scripts/kafka stop --dir " + dir_;
    if (std::system(command.c_str()) != 0) {
      std::fprintf(stderr, "scripts/kafka stop failed\n");
    }
  }

 private:
  static inline std::string bootstrap_;
  static inline std::string error_;
  std::string dir_;
};

// Unique per run, so that a shared broker's older topics never interfere.
std::string Unique(const std::string& name) {
  return name + "-" + std::to_string(getpid()) + "-" +
         std::to_string(NowMicros() % 1000000);
}

class RealBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(RealBroker::bootstrap().empty()) << RealBroker::error();
    bootstrap_ = RealBroker::bootstrap();
  }

  // Writes n messages with values "value-<first + i>" and keys "<first + i>".
  void Produce(const std::string& topic, int first, int n) {
    KafkaSinkOptions o;
    o.bootstrap_servers = bootstrap_;
    std::atomic<int> failed{0};
    auto sink = KafkaSink::Create(o, [&](const DeliveryReport& r) {
      if (!r.status.ok()) ++failed;
    });
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    for (int i = first; i < first + n; ++i) {
      std::string key = std::to_string(i);
      EXPECT_TRUE((*sink)
                      ->Produce(topic, key, "value-" + std::to_string(i), {},
                                DeliveryTag{})
                      .ok());
    }
    EXPECT_TRUE((*sink)->Flush(30000).ok());
    EXPECT_EQ(failed.load(), 0);
    EXPECT_TRUE((*sink)->Close(1000).ok());
  }

  std::string bootstrap_;
};

TEST_F(RealBrokerTest, CreateTopicsCreatesAndAcceptsExisting) {
  const std::string topic = Unique("created");
  Status created = CreateTopics(bootstrap_, {{topic, 3, 1}}, 20000);
  ASSERT_TRUE(created.ok()) << created.ToString();
  EXPECT_EQ(HighWatermarks(bootstrap_, topic, 3).size(), 3u);
  EXPECT_TRUE(CreateTopics(bootstrap_, {{topic, 3, 1}}, 20000).ok());
  // The broker's default replication factor (1 on this cluster).
  EXPECT_TRUE(CreateTopics(bootstrap_, {{Unique("default-rf"), 1, -1}}, 20000).ok());

  Status too_many = CreateTopics(bootstrap_, {{Unique("rf"), 1, 50}}, 20000);
  EXPECT_EQ(too_many.code(), StatusCode::kInvalidArgument) << too_many.ToString();
  EXPECT_THAT(too_many.message(), ::testing::StartsWith("creating topic 'rf-"));
}

class RealBrokerRebalanceTest : public RealBrokerTest,
                                public ::testing::WithParamInterface<const char*> {};

// A consumes everything and marks it done, with no periodic commits. B
// joins: A's revoke must commit, or B would read old records again.
TEST_P(RealBrokerRebalanceTest, RevokeCommitsDoneOffsets) {
  constexpr int kCount = 200;
  constexpr int kPartitions = 4;
  const std::string topic = Unique(std::string("revoke-") + GetParam());
  const std::string group = topic;
  ASSERT_TRUE(CreateTopics(bootstrap_, {{topic, kPartitions, 1}}, 20000).ok());
  Produce(topic, 0, kCount);

  KafkaSourceOptions o;
  o.bootstrap_servers = bootstrap_;
  o.group_id = group;
  o.topics = {topic};
  o.commit_interval_ms = 3'600'000;  // only revoke and Stop commit
  o.consumer_properties = {{"partition.assignment.strategy", GetParam()},
                           {"session.timeout.ms", "6000"},
                           {"heartbeat.interval.ms", "300"}};
  // For debugging: e.g. NLPFLOW_KAFKA_DEBUG=cgrp,fetch
  if (const char* debug = std::getenv("NLPFLOW_KAFKA_DEBUG")) {
    o.consumer_properties["debug"] = debug;
  }

  Collector got_a;
  auto a = DoneMarkingSource(o, std::make_shared<OffsetTracker>(), got_a);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE((*a)->Start().ok());
  ASSERT_TRUE(got_a.WaitFor(kCount, seconds(60))) << got_a.size();
  for (auto [p, offset] : CommittedOffsets(bootstrap_, group, topic, kPartitions)) {
    EXPECT_EQ(offset, kNoOffset) << p;
  }

  Collector got_b;
  auto b = DoneMarkingSource(o, std::make_shared<OffsetTracker>(), got_b);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->Start().ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return (*a)->stats().assigned_partitions == 2 &&
               (*b)->stats().assigned_partitions == 2;
      },
      seconds(60)));
  // The partitions A gave up are committed at the end of its records.
  std::map<int32_t, int64_t> committed =
      CommittedOffsets(bootstrap_, group, topic, kPartitions);
  std::map<int32_t, int64_t> watermarks = HighWatermarks(bootstrap_, topic, kPartitions);
  int committed_partitions = 0;
  for (auto [p, offset] : committed) {
    if (offset != kNoOffset) {
      EXPECT_EQ(offset, watermarks[p]) << p;
      ++committed_partitions;
    }
  }
  // Eager: A gave up all four (and got two back); cooperative: only two.
  EXPECT_GE(committed_partitions, 2);

  // New records (40 keys: every partition gets some); B must read only those.
  Produce(topic, kCount, 40);
  ASSERT_TRUE(WaitUntil([&] { return got_a.size() + got_b.size() == kCount + 40; },
                        seconds(30)))
      << got_a.size() << " + " << got_b.size();
  EXPECT_GT(got_b.size(), 0u);
  for (const RecordPtr& r : got_b.records()) {
    EXPECT_GE(std::stoi(r->payload.substr(6)), kCount) << r->payload;
  }
  EXPECT_TRUE((*a)->Stop().ok());
  EXPECT_TRUE((*b)->Stop().ok());
  EXPECT_EQ(CommittedOffsets(bootstrap_, group, topic, kPartitions),
            HighWatermarks(bootstrap_, topic, kPartitions));
}

INSTANTIATE_TEST_SUITE_P(Protocols, RealBrokerRebalanceTest,
                         ::testing::Values("range", "cooperative-sticky"),
                         ProtocolName);

}  // namespace
}  // namespace nlpflow

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new nlpflow::RealBroker());
  return RUN_ALL_TESTS();
}
