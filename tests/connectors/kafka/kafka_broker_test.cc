// EmbeddedBroker, topic admin and the fail-fast checks of Create.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <regex>

#include "connectors/kafka/embedded_broker.h"
#include "connectors/kafka/kafka_sink.h"
#include "connectors/kafka/kafka_source.h"
#include "connectors/kafka/topic_admin.h"
#include "tests/connectors/kafka/kafka_test_util.h"

namespace nlpflow {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Nothing listens on port 1 and an unprivileged process cannot bind it.
constexpr char kNobody[] = "127.0.0.1:1";
constexpr int kConnectTimeoutMs = 2000;
// Creating and destroying the client around the wait takes a little longer.
constexpr auto kBound = std::chrono::milliseconds(kConnectTimeoutMs + 2000);

TEST(EmbeddedBrokerTest, StartsOnLoopbackWithTopics) {
  auto broker = EmbeddedBroker::Start(1, {{"three", 3, 1}, {"one", 1, -1}});
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  const std::string bootstrap = (*broker)->bootstrap_servers();
  EXPECT_TRUE(std::regex_match(bootstrap, std::regex(R"(127\.0\.0\.1:\d+)")))
      << bootstrap;
  EXPECT_TRUE(CheckConnectivity(bootstrap, 5000).ok());
  EXPECT_EQ(testing_kafka::HighWatermarks(bootstrap, "three", 3).size(), 3u);
  // Creating an existing topic again is fine.
  EXPECT_TRUE((*broker)->CreateTopics({{"three", 3, 1}}).ok());
}

TEST(EmbeddedBrokerTest, SeveralBrokers) {
  auto broker = EmbeddedBroker::Start(3, {{"replicated", 2, 3}});
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  EXPECT_TRUE(std::regex_match((*broker)->bootstrap_servers(),
                               std::regex(R"(127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){2})")))
      << (*broker)->bootstrap_servers();
  EXPECT_TRUE(CheckConnectivity((*broker)->bootstrap_servers(), 5000).ok());
}

TEST(EmbeddedBrokerTest, RejectsBadArguments) {
  EXPECT_EQ(EmbeddedBroker::Start(0).status().message(),
            "embedded broker: num_brokers 0 is outside [1, 16]");
  EXPECT_EQ(EmbeddedBroker::Start(1, {{"t", 0, 1}}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(EmbeddedBrokerTest, MockClusterHasNoCreateTopicsRequest) {
  // Documented in topic_admin.h: the admin API fails on the mock cluster
  // (librdkafka 2.0.2 does not implement the request there); the pipeline
  // uses EmbeddedBroker::CreateTopics in embedded mode.
  auto broker = EmbeddedBroker::Start(1);
  ASSERT_TRUE(broker.ok());
  Status s = CreateTopics((*broker)->bootstrap_servers(), {{"new", 2, 1}}, 1000);
  EXPECT_FALSE(s.ok());
  std::printf("CreateTopics on the mock cluster: %s\n", s.ToString().c_str());
}

TEST(KafkaSourceCreateTest, MissingTopicIsNotFound) {
  auto broker = EmbeddedBroker::Start(1, {{"present", 1, 1}});
  ASSERT_TRUE(broker.ok());
  KafkaSourceOptions o;
  o.bootstrap_servers = (*broker)->bootstrap_servers();
  o.topics = {"present", "absent"};
  auto source = KafkaSource::Create(o, std::make_shared<OffsetTracker>(),
                                    [](RecordPtr) {});
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(source.status().message(),
            "topic 'absent' does not exist on '" + o.bootstrap_servers + "'");

  o.topics = {"present", "^regex.*"};  // regex subscriptions are not checked
  auto ok = KafkaSource::Create(o, std::make_shared<OffsetTracker>(),
                                [](RecordPtr) {});
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

template <typename F>
std::pair<Status, std::chrono::milliseconds> Timed(F f) {
  auto start = std::chrono::steady_clock::now();
  Status s = f();
  return {s, std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - start)};
}

void ExpectUnreachable(const Status& s, std::chrono::milliseconds took) {
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_THAT(s.message(), StartsWith("no Kafka broker at '127.0.0.1:1' "
                                      "answered within 2000 ms: "));
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
  EXPECT_LT(took, kBound);
}

TEST(UnreachableBrokerTest, SourceCreateFailsFast) {
  auto [s, took] = Timed([] {
    KafkaSourceOptions o;
    o.bootstrap_servers = kNobody;
    o.topics = {"in"};
    o.connect_timeout_ms = kConnectTimeoutMs;
    return KafkaSource::Create(o, std::make_shared<OffsetTracker>(),
                               [](RecordPtr) {})
        .status();
  });
  ExpectUnreachable(s, took);
}

TEST(UnreachableBrokerTest, SinkCreateFailsFast) {
  auto [s, took] = Timed([] {
    KafkaSinkOptions o;
    o.bootstrap_servers = kNobody;
    o.connect_timeout_ms = kConnectTimeoutMs;
    return KafkaSink::Create(o, [](const DeliveryReport&) {}).status();
  });
  ExpectUnreachable(s, took);
}

TEST(UnreachableBrokerTest, AdminCallsFailFast) {
  auto [s, took] = Timed([] { return CheckConnectivity(kNobody, kConnectTimeoutMs); });
  ExpectUnreachable(s, took);
  auto [c, took2] = Timed([] {
    return CreateTopics(kNobody, {{"out", 1, 1}}, kConnectTimeoutMs);
  });
  ExpectUnreachable(c, took2);
}

}  // namespace
}  // namespace nlpflow
