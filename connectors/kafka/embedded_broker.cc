#include "connectors/kafka/embedded_broker.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "connectors/kafka/kafka_status.h"
#include "connectors/kafka/rdkafka_util.h"

namespace nlpflow {

Result<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::Start(
    int num_brokers, const std::vector<TopicSpec>& topics) {
  if (num_brokers < 1 || num_brokers > 16) {
    return Status::InvalidArgument("embedded broker: num_brokers " +
                                   std::to_string(num_brokers) +
                                   " is outside [1, 16]");
  }
  for (const TopicSpec& spec : topics) {
    NLPFLOW_RETURN_IF_ERROR(ValidateTopicSpec(spec));
  }
  // rd_kafka_mock_cluster_new needs a client handle to run on. It never
  // connects anywhere: it has no bootstrap servers (log_level 4 keeps
  // librdkafka's notice about that out of the log).
  Result<kafka_internal::ConfPtr> conf = kafka_internal::BuildConf(
      {{"client.id", "nlpflow-embedded-broker"}, {"log_level", "4"}});
  if (!conf.ok()) return conf.status();
  Result<kafka_internal::HandlePtr> handle =
      kafka_internal::NewHandle(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!handle.ok()) return handle.status().WithContext("embedded broker");

  std::unique_ptr<EmbeddedBroker> broker(new EmbeddedBroker());
  broker->num_brokers_ = num_brokers;
  broker->handle_ = handle->release();
  broker->cluster_ = rd_kafka_mock_cluster_new(broker->handle_, num_brokers);
  if (broker->cluster_ == nullptr) {
    return Status::Unavailable(
        "embedded broker: librdkafka could not start its mock cluster "
        "(no free loopback port?)");
  }
  broker->bootstrap_servers_ = rd_kafka_mock_cluster_bootstraps(broker->cluster_);
  spdlog::info("embedded Kafka broker listening on {}",
               broker->bootstrap_servers_);
  NLPFLOW_RETURN_IF_ERROR(broker->CreateTopics(topics));
  return broker;
}

EmbeddedBroker::~EmbeddedBroker() {
  // The cluster runs on the handle: destroy it first.
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
  if (handle_ != nullptr) rd_kafka_destroy(handle_);
}

Status EmbeddedBroker::CreateTopics(const std::vector<TopicSpec>& topics) {
  for (const TopicSpec& spec : topics) {
    NLPFLOW_RETURN_IF_ERROR(ValidateTopicSpec(spec));
    int replication = spec.replication_factor == -1
                          ? std::min(3, num_brokers_)
                          : std::min(spec.replication_factor, num_brokers_);
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
        cluster_, spec.name.c_str(), spec.partitions, replication);
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) continue;
    NLPFLOW_RETURN_IF_ERROR(KafkaStatus(
        err, "embedded broker: creating topic '" + spec.name + "'"));
  }
  return Status::Ok();
}

}  // namespace nlpflow
