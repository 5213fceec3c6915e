#include "connectors/kafka/topic_admin.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <thread>
#include <utility>

#include "connectors/kafka/kafka_status.h"
#include "connectors/kafka/rdkafka_util.h"

namespace nlpflow {

using kafka_internal::BuildConf;
using kafka_internal::CheckCluster;
using kafka_internal::HandlePtr;
using kafka_internal::NewHandle;
using kafka_internal::QueuePtr;

namespace {

// A client for one admin call. A producer handle is the lightest kind.
Result<HandlePtr> AdminClient(const std::string& bootstrap_servers,
                              const KafkaProperties& properties) {
  if (bootstrap_servers.empty()) {
    return Status::InvalidArgument("bootstrap_servers: must not be empty");
  }
  std::vector<std::pair<std::string, std::string>> p = {
      {"bootstrap.servers", bootstrap_servers},
      {"client.id", "nlpflow-admin"},
      {"log.connection.close", "false"},
  };
  for (const auto& kv : properties) p.push_back(kv);
  Result<kafka_internal::ConfPtr> conf = BuildConf(p);
  if (!conf.ok()) return conf.status().WithContext("Kafka admin config");
  return NewHandle(RD_KAFKA_PRODUCER, std::move(*conf));
}

struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
};
struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const {
    rd_kafka_AdminOptions_destroy(o);
  }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};

// The first of `topics` that the cluster's metadata does not show yet with
// all its partitions led by a broker; empty once all are usable.
std::string FirstNotReady(rd_kafka_t* rk, const std::vector<TopicSpec>& topics,
                          int timeout_ms) {
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk, 1, nullptr, &md, timeout_ms) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return topics.front().name;
  }
  std::string not_ready;
  for (const TopicSpec& spec : topics) {
    bool ready = false;
    for (int i = 0; i < md->topic_cnt && !ready; ++i) {
      const rd_kafka_metadata_topic_t& t = md->topics[i];
      if (spec.name != t.topic || t.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      ready = t.partition_cnt > 0;
      for (int p = 0; p < t.partition_cnt; ++p) {
        if (t.partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
            t.partitions[p].leader < 0) {
          ready = false;
        }
      }
    }
    if (!ready) {
      not_ready = spec.name;
      break;
    }
  }
  rd_kafka_metadata_destroy(md);
  return not_ready;
}

}  // namespace

Status ValidateTopicSpec(const TopicSpec& spec) {
  if (spec.name.empty()) {
    return Status::InvalidArgument("topic name: must not be empty");
  }
  if (spec.partitions < 1) {
    return Status::InvalidArgument("topic '" + spec.name + "': partitions " +
                                   std::to_string(spec.partitions) +
                                   " must be >= 1");
  }
  if (spec.replication_factor != -1 && spec.replication_factor < 1) {
    return Status::InvalidArgument(
        "topic '" + spec.name + "': replication_factor " +
        std::to_string(spec.replication_factor) + " must be -1 or >= 1");
  }
  return Status::Ok();
}

Status CheckConnectivity(const std::string& bootstrap_servers, int timeout_ms,
                         const KafkaProperties& properties) {
  NLPFLOW_ASSIGN_OR_RETURN(HandlePtr rk, AdminClient(bootstrap_servers, properties));
  return CheckCluster(rk.get(), bootstrap_servers, timeout_ms);
}

Status CreateTopics(const std::string& bootstrap_servers,
                    const std::vector<TopicSpec>& topics, int timeout_ms,
                    const KafkaProperties& properties) {
  for (const TopicSpec& spec : topics) {
    NLPFLOW_RETURN_IF_ERROR(ValidateTopicSpec(spec));
  }
  if (topics.empty()) return Status::Ok();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  NLPFLOW_ASSIGN_OR_RETURN(HandlePtr rk, AdminClient(bootstrap_servers, properties));
  // Fails fast and clearly when nobody listens; the admin request would only
  // time out.
  NLPFLOW_RETURN_IF_ERROR(CheckCluster(rk.get(), bootstrap_servers, timeout_ms));

  char errstr[512];
  std::vector<std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter>> owned;
  std::vector<rd_kafka_NewTopic_t*> new_topics;
  for (const TopicSpec& spec : topics) {
    rd_kafka_NewTopic_t* t =
        rd_kafka_NewTopic_new(spec.name.c_str(), spec.partitions,
                              spec.replication_factor, errstr, sizeof(errstr));
    if (t == nullptr) {
      return Status::InvalidArgument("topic '" + spec.name + "': " + errstr);
    }
    owned.emplace_back(t);
    new_topics.push_back(t);
  }
  std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter> options(
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, errstr,
                                            sizeof(errstr));
  // Wait for the controller to report the topics created, so that producers
  // and consumers started right after see them.
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms, errstr,
                                              sizeof(errstr));

  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_CreateTopics(rk.get(), new_topics.data(), new_topics.size(),
                        options.get(), queue.get());
  // The request itself is bounded by timeout_ms; the margin covers the reply.
  std::unique_ptr<rd_kafka_event_t, EventDeleter> event(
      rd_kafka_queue_poll(queue.get(), timeout_ms + 5000));
  if (event == nullptr) {
    return Status::DeadlineExceeded("CreateTopics on '" + bootstrap_servers +
                                    "' got no answer within " +
                                    std::to_string(timeout_ms) + " ms");
  }
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status(
        KafkaStatusCode(rd_kafka_event_error(event.get())),
        "CreateTopics on '" + bootstrap_servers +
            "': " + rd_kafka_event_error_string(event.get()));
  }
  const rd_kafka_CreateTopics_result_t* result =
      rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(result, &count);
  for (size_t i = 0; i < count; ++i) {
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    const char* name = rd_kafka_topic_result_name(results[i]);
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      spdlog::debug("Kafka topic '{}' already exists", name);
      continue;
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* detail = rd_kafka_topic_result_error_string(results[i]);
      return KafkaStatus(err, std::string("creating topic '") + name + "'" +
                                  (detail != nullptr ? std::string(": ") + detail
                                                     : std::string()));
    }
    spdlog::info("created Kafka topic '{}'", name);
  }

  // The controller reports a topic created before every broker's metadata
  // shows a leader for each partition; wait for that, so that clients
  // started right after find the topics whole.
  while (true) {
    std::string not_ready = FirstNotReady(rk.get(), topics, 1000);
    if (not_ready.empty()) return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::DeadlineExceeded(
          "topic '" + not_ready + "' on '" + bootstrap_servers +
          "' has partitions without a leader after " +
          std::to_string(timeout_ms) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace nlpflow
