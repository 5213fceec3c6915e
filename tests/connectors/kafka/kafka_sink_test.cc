// KafkaSink failure paths against the embedded broker with a broker taken
// down: failed deliveries are reported, Close purges what is left.
#include <librdkafka/rdkafka.h>
// Must come after rdkafka.h.
#include <librdkafka/rdkafka_mock.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "connectors/kafka/embedded_broker.h"
#include "connectors/kafka/kafka_sink.h"

namespace nlpflow {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class Reports {
 public:
  void Add(const DeliveryReport& r) {
    std::lock_guard<std::mutex> lock(mutex_);
    reports_.push_back(r);
  }
  std::vector<DeliveryReport> Get() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return reports_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<DeliveryReport> reports_;
};

class KafkaSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = EmbeddedBroker::Start(1, {{"out", 2, 1}});
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
  }

  std::unique_ptr<KafkaSink> MakeSink(int message_timeout_ms) {
    KafkaSinkOptions o;
    o.bootstrap_servers = broker_->bootstrap_servers();
    o.message_timeout_ms = message_timeout_ms;
    auto sink = KafkaSink::Create(o, [this](const DeliveryReport& r) { reports_.Add(r); });
    EXPECT_TRUE(sink.ok()) << sink.status().ToString();
    return sink.ok() ? std::move(sink).value() : nullptr;
  }

  void ProduceThree(KafkaSink& sink) {
    for (int i = 0; i < 3; ++i) {
      // (Not "k" + to_string(i): GCC 12 warns wrongly, bug 105329.)
      std::string key = std::to_string(i);
      ASSERT_TRUE(sink.Produce("out", key, "v", {},
                               DeliveryTag{Coordinates{"in", 1, 40 + i}, 0})
                      .ok());
    }
  }

  std::unique_ptr<EmbeddedBroker> broker_;
  Reports reports_;
};

TEST_F(KafkaSinkTest, DeliversAndReportsWhereItWrote) {
  auto sink = MakeSink(30000);
  ASSERT_NE(sink, nullptr);
  ProduceThree(*sink);
  ASSERT_TRUE(sink->Flush(10000).ok());
  std::vector<DeliveryReport> r = reports_.Get();
  ASSERT_EQ(r.size(), 3u);
  for (const DeliveryReport& d : r) {
    EXPECT_TRUE(d.status.ok());
    EXPECT_EQ(d.tag.source.topic, "in");
    EXPECT_EQ(d.tag.source.partition, 1);
    EXPECT_EQ(d.destination.topic, "out");
    EXPECT_GE(d.destination.offset, 0);
    EXPECT_GE(d.latency_us, 0);
  }
  KafkaSinkStats stats = sink->stats();
  EXPECT_EQ(stats.produced, 3u);
  EXPECT_EQ(stats.delivered, 3u);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_TRUE(sink->Close(1000).ok());
  EXPECT_TRUE(sink->Close(1000).ok());  // idempotent
  Status after = sink->Produce("out", std::nullopt, "v", {}, DeliveryTag{});
  EXPECT_EQ(after.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(after.message(), "Kafka sink is closed");
}

TEST_F(KafkaSinkTest, TimedOutDeliveryIsReportedAsFailed) {
  auto sink = MakeSink(1000);
  ASSERT_NE(sink, nullptr);
  ASSERT_EQ(rd_kafka_mock_broker_set_down(broker_->mock_cluster(), 1),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ProduceThree(*sink);
  ASSERT_TRUE(sink->Flush(10000).ok());  // all three got their (failed) report
  std::vector<DeliveryReport> r = reports_.Get();
  ASSERT_EQ(r.size(), 3u);
  for (const DeliveryReport& d : r) {
    EXPECT_EQ(d.status.code(), StatusCode::kDeadlineExceeded) << d.status.ToString();
    EXPECT_THAT(d.status.message(),
                StartsWith("Kafka sink: delivery to 'out' failed"));
    EXPECT_THAT(d.status.message(), HasSubstr("(_MSG_TIMED_OUT)"));
    EXPECT_EQ(d.tag.source.topic, "in");
    EXPECT_EQ(d.destination.offset, -1);
  }
  EXPECT_EQ(sink->stats().failed, 3u);
  EXPECT_TRUE(sink->status().ok());  // a failed delivery is not fatal
}

TEST_F(KafkaSinkTest, CloseReportsWhatItPurges) {
  auto sink = MakeSink(30000);
  ASSERT_NE(sink, nullptr);
  ASSERT_EQ(rd_kafka_mock_broker_set_down(broker_->mock_cluster(), 1),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ProduceThree(*sink);
  Status closed = sink->Close(200);
  EXPECT_EQ(closed.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(closed.message(),
            "Kafka sink: 3 message(s) still without a delivery report after 200 ms");
  std::vector<DeliveryReport> r = reports_.Get();
  ASSERT_EQ(r.size(), 3u);
  for (const DeliveryReport& d : r) {
    EXPECT_EQ(d.status.code(), StatusCode::kCancelled) << d.status.ToString();
  }
}

TEST_F(KafkaSinkTest, FlushFromTheDeliveryCallbackIsRefused) {
  KafkaSinkOptions o;
  o.bootstrap_servers = broker_->bootstrap_servers();
  KafkaSink* self = nullptr;
  Status from_callback;
  std::atomic<bool> called{false};
  auto sink = KafkaSink::Create(o, [&](const DeliveryReport&) {
    from_callback = self->Flush(10);
    called = true;
  });
  ASSERT_TRUE(sink.ok());
  self = sink->get();
  ASSERT_TRUE((*sink)->Produce("out", std::nullopt, "", {}, DeliveryTag{}).ok());
  ASSERT_TRUE((*sink)->Flush(10000).ok());
  ASSERT_TRUE(called);
  EXPECT_EQ(from_callback.code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace nlpflow

namespace nlpflow {
namespace {

// Exactly-once recovery in place: the broker answers the transaction's end
// (EndTxn, Kafka API key 26) with INVALID_TXN_STATE, as after a cluster that
// was unreachable; librdkafka makes that a fatal producer error. The sink
// rebuilds its producer with the same transactional id instead of failing:
// the transaction counts as aborted, the sink stays healthy, and the next
// transaction commits.
TEST(KafkaSinkTransactionTest, FailedAbortRebuildsTheProducerInPlace) {
  auto broker = EmbeddedBroker::Start(1, {{"out", 1, 1}});
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  KafkaSinkOptions o;
  o.bootstrap_servers = (*broker)->bootstrap_servers();
  o.transactional_id = "sink-test-rebuild";
  o.transaction_timeout_ms = 10000;
  o.message_timeout_ms = 10000;
  Reports reports;
  auto sink = KafkaSink::Create(o, [&](const DeliveryReport& r) { reports.Add(r); });
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  KafkaSink& s = **sink;
  auto produce = [&] {
    auto hold = s.HoldProduce();
    return s.Produce("out", std::nullopt, "v", {}, DeliveryTag{});
  };
  auto no_offsets = [] { return std::vector<TopicPartitionOffset>(); };

  ASSERT_TRUE(produce().ok());
  constexpr int16_t kEndTxn = 26;
  rd_kafka_mock_push_request_errors((*broker)->mock_cluster(), kEndTxn, 1,
                                    RD_KAFKA_RESP_ERR_INVALID_TXN_STATE);
  int afters = 0;
  bool last_committed = true;
  auto after = [&](bool committed) {
    ++afters;
    last_committed = committed;
  };
  Status ended = s.EndTransaction(no_offsets, nullptr, /*abort=*/false, after);
  EXPECT_EQ(ended.code(), StatusCode::kCancelled) << ended.ToString();
  EXPECT_THAT(ended.message(), HasSubstr("the producer was rebuilt after"));
  EXPECT_EQ(afters, 1);
  EXPECT_FALSE(last_committed);
  EXPECT_TRUE(s.status().ok()) << s.status().ToString();
  EXPECT_EQ(s.stats().producer_rebuilds, 1u);

  ASSERT_TRUE(produce().ok());
  Status next = s.EndTransaction(no_offsets, nullptr, /*abort=*/false, after);
  EXPECT_TRUE(next.ok()) << next.ToString();
  EXPECT_EQ(afters, 2);
  EXPECT_TRUE(last_committed);
  EXPECT_TRUE(s.Close(5000).ok());
}

// Fenced (another producer took the transactional id): the one error that
// ends the sink.
TEST(KafkaSinkTransactionTest, FencedEndsTheSink) {
  auto broker = EmbeddedBroker::Start(1, {{"out", 1, 1}});
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  KafkaSinkOptions o;
  o.bootstrap_servers = (*broker)->bootstrap_servers();
  o.transactional_id = "sink-test-fenced";
  o.transaction_timeout_ms = 10000;
  o.message_timeout_ms = 10000;
  auto sink = KafkaSink::Create(o, [](const DeliveryReport&) {});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  KafkaSink& s = **sink;
  {
    auto hold = s.HoldProduce();
    ASSERT_TRUE(s.Produce("out", std::nullopt, "v", {}, DeliveryTag{}).ok());
  }
  constexpr int16_t kEndTxn = 26;
  rd_kafka_mock_push_request_errors((*broker)->mock_cluster(), kEndTxn, 1,
                                    RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
  Status ended = s.EndTransaction([] { return std::vector<TopicPartitionOffset>(); }, nullptr,
                                  /*abort=*/false, [](bool) {});
  EXPECT_EQ(ended.code(), StatusCode::kInternal) << ended.ToString();
  EXPECT_THAT(ended.message(), StartsWith("exactly-once: the transactional producer "
                                          "'sink-test-fenced' was fenced ("));
  EXPECT_EQ(s.status().message(), ended.message());
  EXPECT_EQ(s.stats().producer_rebuilds, 0u);
}

}  // namespace
}  // namespace nlpflow
