#include "connectors/kafka/kafka_options.h"

#include <string>

namespace nlpflow {
namespace {

Status CheckRange(const char* field, int value, int lo, int hi) {
  if (value < lo || value > hi) {
    return Status::InvalidArgument(std::string(field) + ": " +
                                   std::to_string(value) + " is outside [" +
                                   std::to_string(lo) + ", " +
                                   std::to_string(hi) + "]");
  }
  return Status::Ok();
}

Status CheckNotEmpty(const char* field, const std::string& value) {
  if (value.empty()) {
    return Status::InvalidArgument(std::string(field) + ": must not be empty");
  }
  return Status::Ok();
}

constexpr int kMaxMs = 24 * 3600 * 1000;

}  // namespace

Status ValidateKafkaSourceOptions(const KafkaSourceOptions& o) {
  NLPFLOW_RETURN_IF_ERROR(CheckNotEmpty("bootstrap_servers", o.bootstrap_servers));
  NLPFLOW_RETURN_IF_ERROR(CheckNotEmpty("group_id", o.group_id));
  if (o.topics.empty()) {
    return Status::InvalidArgument("topics: at least one input topic is needed");
  }
  for (const std::string& topic : o.topics) {
    NLPFLOW_RETURN_IF_ERROR(CheckNotEmpty("topics[]", topic));
  }
  // A poll longer than a second would make Stop() and commits sluggish.
  NLPFLOW_RETURN_IF_ERROR(CheckRange("poll_timeout_ms", o.poll_timeout_ms, 1, 1000));
  NLPFLOW_RETURN_IF_ERROR(
      CheckRange("commit_interval_ms", o.commit_interval_ms, 1, kMaxMs));
  NLPFLOW_RETURN_IF_ERROR(
      CheckRange("max_in_flight", o.max_in_flight, 1, 100'000'000));
  NLPFLOW_RETURN_IF_ERROR(
      CheckRange("resume_at_percent", o.resume_at_percent, 0, 99));
  NLPFLOW_RETURN_IF_ERROR(
      CheckRange("connect_timeout_ms", o.connect_timeout_ms, 0, kMaxMs));
  NLPFLOW_RETURN_IF_ERROR(CheckRange("stop_commit_timeout_ms",
                                     o.stop_commit_timeout_ms, 0, kMaxMs));
  NLPFLOW_RETURN_IF_ERROR(
      CheckRange("revoke_timeout_ms", o.revoke_timeout_ms, 0, kMaxMs));
  return Status::Ok();
}

Status ValidateKafkaSinkOptions(const KafkaSinkOptions& o) {
  NLPFLOW_RETURN_IF_ERROR(CheckNotEmpty("bootstrap_servers", o.bootstrap_servers));
  // librdkafka's own limits for linger.ms and message.timeout.ms.
  NLPFLOW_RETURN_IF_ERROR(CheckRange("linger_ms", o.linger_ms, 0, 900000));
  NLPFLOW_RETURN_IF_ERROR(
      CheckRange("message_timeout_ms", o.message_timeout_ms, 1, 2147483647));
  NLPFLOW_RETURN_IF_ERROR(
      CheckRange("queue_full_timeout_ms", o.queue_full_timeout_ms, 0, kMaxMs));
  NLPFLOW_RETURN_IF_ERROR(
      CheckRange("connect_timeout_ms", o.connect_timeout_ms, 0, kMaxMs));
  if (!o.transactional_id.empty()) {
    // The broker's transaction.max.timeout.ms is 15 minutes by default.
    NLPFLOW_RETURN_IF_ERROR(CheckRange("transaction_timeout_ms",
                                       o.transaction_timeout_ms, 1000, 900000));
    if (o.message_timeout_ms > o.transaction_timeout_ms) {
      return Status::InvalidArgument(
          "message_timeout_ms: " + std::to_string(o.message_timeout_ms) +
          " must not exceed transaction_timeout_ms (" +
          std::to_string(o.transaction_timeout_ms) + ")");
    }
  }
  return Status::Ok();
}

std::vector<std::pair<std::string, std::string>> ConsumerProperties(
    const KafkaSourceOptions& o) {
  std::vector<std::pair<std::string, std::string>> p = {
      {"bootstrap.servers", o.bootstrap_servers},
      {"group.id", o.group_id},
      {"client.id", o.client_id},
      // At-least-once: offsets are committed by the source, explicitly, and
      // only up to what the OffsetTracker says is done.
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      // A new group starts at the beginning: nothing is skipped silently.
      {"auto.offset.reset", "earliest"},
      // Input written by transactional producers: only committed records
      // (librdkafka's default; Java's is read_uncommitted).
      {"isolation.level", "read_committed"},
      {"enable.partition.eof", "false"},
      // Low latency (FACTS.md): the broker answers a fetch after 10 ms at most
      // even if it has little data, and retries after errors come soon.
      {"fetch.wait.max.ms", "10"},
      {"fetch.error.backoff.ms", "10"},
      {"socket.nagle.disable", "true"},
      // Brokers close idle connections; librdkafka would log each at error.
      {"log.connection.close", "false"},
  };
  for (const auto& kv : o.consumer_properties) p.push_back(kv);
  return p;
}

std::vector<std::pair<std::string, std::string>> ProducerProperties(
    const KafkaSinkOptions& o) {
  std::vector<std::pair<std::string, std::string>> p = {
      {"bootstrap.servers", o.bootstrap_servers},
      {"client.id", o.client_id},
      // No duplicates or reordering from producer retries.
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", std::to_string(o.linger_ms)},
      {"message.timeout.ms", std::to_string(o.message_timeout_ms)},
      {"socket.nagle.disable", "true"},
      // The Java client's partitioner: a key lands on the same partition as
      // when a Java producer writes it.
      {"partitioner", "murmur2_random"},
      {"log.connection.close", "false"},
  };
  if (!o.transactional_id.empty()) {
    p.push_back({"transactional.id", o.transactional_id});
    p.push_back({"transaction.timeout.ms", std::to_string(o.transaction_timeout_ms)});
  }
  for (const auto& kv : o.producer_properties) p.push_back(kv);
  return p;
}

}  // namespace nlpflow
