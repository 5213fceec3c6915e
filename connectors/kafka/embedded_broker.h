// EmbeddedBroker: librdkafka's mock cluster, a Kafka-protocol broker inside
// this process on loopback ports chosen by the kernel. For the embedded
// quick start and for tests; no TLS/SASL, no transaction markers, and no
// CreateTopics request (create topics with CreateTopics() here). Its group
// coordinator waits 3 s before the first rebalance of an empty group (like
// group.initial.rebalance.delay.ms on a real broker).
//
// Thread-safety: all methods may be called from any thread; the broker runs
// on a thread of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "connectors/kafka/topic_admin.h"

// librdkafka's types, so that this header does not include its C headers.
struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace nlpflow {

class EmbeddedBroker {
 public:
  // Starts `num_brokers` (1..16) brokers and creates `topics`. Logs
  // "embedded Kafka broker listening on 127.0.0.1:NNNN".
  static Result<std::unique_ptr<EmbeddedBroker>> Start(
      int num_brokers = 1, const std::vector<TopicSpec>& topics = {});

  // Stops the brokers; clients still connected see the connections drop.
  ~EmbeddedBroker();

  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  // Comma-separated host:port list for bootstrap.servers.
  const std::string& bootstrap_servers() const { return bootstrap_servers_; }

  // Creates the topics; one that exists already is OK (left as it is). A
  // replication factor of -1 or above the broker count becomes
  // min(3, broker count) or the broker count.
  Status CreateTopics(const std::vector<TopicSpec>& topics);

  // For error-injection tests (rdkafka_mock.h: rd_kafka_mock_broker_set_down,
  // rd_kafka_mock_push_request_errors, ...). Owned by this object.
  rd_kafka_mock_cluster_s* mock_cluster() const { return cluster_; }

 private:
  EmbeddedBroker() = default;

  int num_brokers_ = 0;
  rd_kafka_s* handle_ = nullptr;            // the mock cluster needs one
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
  std::string bootstrap_servers_;
};

}  // namespace nlpflow
