// Options validation, property handling and the error mapping: no broker
// needed (Create fails before it connects).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "connectors/kafka/kafka_options.h"
#include "connectors/kafka/kafka_sink.h"
#include "connectors/kafka/kafka_source.h"
#include "connectors/kafka/kafka_status.h"
#include "connectors/kafka/topic_admin.h"

namespace nlpflow {
namespace {

using ::testing::Contains;
using ::testing::Key;
using ::testing::Not;
using ::testing::Pair;

KafkaSourceOptions ValidSource() {
  KafkaSourceOptions o;
  o.topics = {"in"};
  o.connect_timeout_ms = 0;  // never connect in these tests
  return o;
}

TEST(KafkaOptionsTest, DefaultsNeedOnlyTopics) {
  EXPECT_TRUE(ValidateKafkaSourceOptions(ValidSource()).ok());
  EXPECT_TRUE(ValidateKafkaSinkOptions(KafkaSinkOptions()).ok());
  Status no_topics = ValidateKafkaSourceOptions(KafkaSourceOptions());
  EXPECT_EQ(no_topics.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(no_topics.message(), "topics: at least one input topic is needed");
}

TEST(KafkaOptionsTest, ValidationNamesTheField) {
  KafkaSourceOptions o = ValidSource();
  o.group_id = "";
  EXPECT_EQ(ValidateKafkaSourceOptions(o).message(), "group_id: must not be empty");
  o = ValidSource();
  o.max_in_flight = 0;
  EXPECT_EQ(ValidateKafkaSourceOptions(o).message(),
            "max_in_flight: 0 is outside [1, 100000000]");
  o = ValidSource();
  o.poll_timeout_ms = 5000;
  EXPECT_EQ(ValidateKafkaSourceOptions(o).message(),
            "poll_timeout_ms: 5000 is outside [1, 1000]");
  o = ValidSource();
  o.topics = {"in", ""};
  EXPECT_EQ(ValidateKafkaSourceOptions(o).message(), "topics[]: must not be empty");

  KafkaSinkOptions s;
  s.bootstrap_servers = "";
  EXPECT_EQ(ValidateKafkaSinkOptions(s).message(),
            "bootstrap_servers: must not be empty");
  s = KafkaSinkOptions();
  s.linger_ms = -1;
  EXPECT_EQ(ValidateKafkaSinkOptions(s).code(), StatusCode::kInvalidArgument);
}

TEST(KafkaOptionsTest, UserPropertiesComeLast) {
  KafkaSourceOptions o = ValidSource();
  o.consumer_properties = {{"fetch.wait.max.ms", "50"}};
  auto props = ConsumerProperties(o);
  EXPECT_THAT(props, Contains(Pair("enable.auto.commit", "false")));
  EXPECT_THAT(props, Contains(Pair("enable.auto.offset.store", "false")));
  EXPECT_EQ(props.back(), std::make_pair(std::string("fetch.wait.max.ms"),
                                         std::string("50")));

  KafkaSinkOptions s;
  auto producer = ProducerProperties(s);
  EXPECT_THAT(producer, Contains(Pair("enable.idempotence", "true")));
  EXPECT_THAT(producer, Contains(Pair("acks", "all")));
  EXPECT_THAT(producer, Contains(Pair("linger.ms", "1")));
  EXPECT_THAT(producer, Contains(Pair("message.timeout.ms", "30000")));
}

TEST(KafkaOptionsTest, TransactionalSinkSetsItsIdAndTimeouts) {
  KafkaSinkOptions s;
  s.transactional_id = "group-a";
  s.transaction_timeout_ms = 20000;
  s.message_timeout_ms = 15000;
  ASSERT_TRUE(ValidateKafkaSinkOptions(s).ok());
  auto producer = ProducerProperties(s);
  EXPECT_THAT(producer, Contains(Pair("transactional.id", "group-a")));
  EXPECT_THAT(producer, Contains(Pair("transaction.timeout.ms", "20000")));
  EXPECT_THAT(producer, Contains(Pair("message.timeout.ms", "15000")));

  s.message_timeout_ms = 30000;
  Status st = ValidateKafkaSinkOptions(s);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "message_timeout_ms: 30000 must not exceed transaction_timeout_ms (20000)");

  // Not transactional: no transactional properties.
  EXPECT_THAT(ProducerProperties(KafkaSinkOptions()), Not(Contains(Key("transactional.id"))));
}

TEST(KafkaOptionsTest, ConsumerReadsCommittedOnly) {
  EXPECT_THAT(ConsumerProperties(ValidSource()), Contains(Pair("isolation.level", "read_committed")));
}

TEST(KafkaOptionsTest, UnknownConsumerPropertyIsNamed) {
  KafkaSourceOptions o = ValidSource();
  o.consumer_properties = {{"no.such.property", "1"}};
  auto source = KafkaSource::Create(o, std::make_shared<OffsetTracker>(),
                                    [](RecordPtr) {});
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(source.status().message(),
            "Kafka consumer config: unknown librdkafka property "
            "'no.such.property'");
}

TEST(KafkaOptionsTest, UnknownProducerPropertyIsNamed) {
  KafkaSinkOptions o;
  o.connect_timeout_ms = 0;
  o.producer_properties = {{"lingerr.ms", "5"}};
  auto sink = KafkaSink::Create(o, [](const DeliveryReport&) {});
  ASSERT_FALSE(sink.ok());
  EXPECT_EQ(sink.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(sink.status().message(),
            "Kafka producer config: unknown librdkafka property 'lingerr.ms'");
}

TEST(KafkaOptionsTest, InvalidPropertyValueIsNamed) {
  KafkaSourceOptions o = ValidSource();
  o.consumer_properties = {{"enable.auto.commit", "maybe"}};
  auto source = KafkaSource::Create(o, std::make_shared<OffsetTracker>(),
                                    [](RecordPtr) {});
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(source.status().message(),
              ::testing::StartsWith("Kafka consumer config: invalid value for "
                                    "librdkafka property 'enable.auto.commit': "));
}

TEST(KafkaOptionsTest, InconsistentProducerSettingsAreRejected) {
  KafkaSinkOptions o;
  o.connect_timeout_ms = 0;
  o.producer_properties = {{"acks", "1"}};  // idempotence needs acks=all
  auto sink = KafkaSink::Create(o, [](const DeliveryReport&) {});
  ASSERT_FALSE(sink.ok());
  EXPECT_EQ(sink.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(sink.status().message(),
              ::testing::StartsWith(
                  "Kafka producer: librdkafka rejected the configuration: "));
  EXPECT_THAT(sink.status().message(), ::testing::HasSubstr("acks"));
}

TEST(KafkaOptionsTest, MissingCallbacksAreRejected) {
  auto source = KafkaSource::Create(ValidSource(), nullptr, [](RecordPtr) {});
  EXPECT_EQ(source.status().message(), "Kafka source: tracker must not be null");
  auto sink = KafkaSink::Create(KafkaSinkOptions(), nullptr);
  EXPECT_EQ(sink.status().message(), "Kafka sink: on_delivery must be set");
}

TEST(KafkaOptionsTest, TopicSpecValidation) {
  EXPECT_TRUE(ValidateTopicSpec({"out", 4, -1}).ok());
  EXPECT_TRUE(ValidateTopicSpec({"out", 1, 3}).ok());
  EXPECT_EQ(ValidateTopicSpec({"", 1, 1}).message(),
            "topic name: must not be empty");
  EXPECT_EQ(ValidateTopicSpec({"out", 0, 1}).message(),
            "topic 'out': partitions 0 must be >= 1");
  EXPECT_EQ(ValidateTopicSpec({"out", 1, 0}).message(),
            "topic 'out': replication_factor 0 must be -1 or >= 1");
}

TEST(KafkaStatusTest, MapsCodesWithContext) {
  EXPECT_TRUE(KafkaStatus(RD_KAFKA_RESP_ERR_NO_ERROR, "x").ok());
  Status timed_out = KafkaStatus(RD_KAFKA_RESP_ERR__TIMED_OUT, "metadata");
  EXPECT_EQ(timed_out.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(timed_out.message(), "metadata: Local: Timed out (_TIMED_OUT)");
  EXPECT_EQ(KafkaStatusCode(RD_KAFKA_RESP_ERR__TRANSPORT), StatusCode::kUnavailable);
  EXPECT_EQ(KafkaStatusCode(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART),
            StatusCode::kNotFound);
  EXPECT_EQ(KafkaStatusCode(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(KafkaStatusCode(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT),
            StatusCode::kDeadlineExceeded);
  EXPECT_EQ(KafkaStatusCode(RD_KAFKA_RESP_ERR__PURGE_QUEUE), StatusCode::kCancelled);
  EXPECT_EQ(KafkaStatusCode(RD_KAFKA_RESP_ERR__FATAL),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(KafkaStatusCode(RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER),
            StatusCode::kDataLoss);
  EXPECT_EQ(KafkaStatusCode(RD_KAFKA_RESP_ERR_UNKNOWN), StatusCode::kInternal);
  EXPECT_TRUE(KafkaStatus(static_cast<const rd_kafka_error_t*>(nullptr), "x").ok());
}

}  // namespace
}  // namespace nlpflow
