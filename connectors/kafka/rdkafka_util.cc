#include "connectors/kafka/rdkafka_util.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <set>

#include "connectors/kafka/kafka_status.h"

namespace nlpflow::kafka_internal {
namespace {

// Called from librdkafka's internal threads (log.queue is left false), so it
// must only use thread-safe things: spdlog's default logger is.
void LogToSpdlog(const rd_kafka_t* rk, int level, const char* facility,
                 const char* message) {
  // librdkafka uses syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug.
  spdlog::level::level_enum spd_level = spdlog::level::debug;
  if (level <= 3) {
    spd_level = spdlog::level::err;
  } else if (level == 4) {
    spd_level = spdlog::level::warn;
  } else if (level <= 6) {
    spd_level = spdlog::level::info;
  }
  spdlog::log(spd_level, "librdkafka {} {}: {}", rd_kafka_name(rk), facility,
              message);
}

}  // namespace

Result<ConfPtr> BuildConf(
    const std::vector<std::pair<std::string, std::string>>& properties) {
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [name, value] : properties) {
    rd_kafka_conf_res_t res = rd_kafka_conf_set(conf.get(), name.c_str(),
                                                value.c_str(), errstr,
                                                sizeof(errstr));
    if (res == RD_KAFKA_CONF_UNKNOWN) {
      return Status::InvalidArgument("unknown librdkafka property '" + name +
                                     "'");
    }
    if (res != RD_KAFKA_CONF_OK) {
      // The value is not echoed: it may be a password.
      return Status::InvalidArgument("invalid value for librdkafka property '" +
                                     name + "': " + errstr);
    }
  }
  rd_kafka_conf_set_log_cb(conf.get(), &LogToSpdlog);
  return conf;
}

Result<HandlePtr> NewHandle(rd_kafka_type_t type, ConfPtr conf) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    // rd_kafka_new fails on inconsistent settings, e.g. an idempotent producer
    // with acks=1.
    return Status::InvalidArgument(std::string("librdkafka rejected the "
                                               "configuration: ") +
                                   errstr);
  }
  conf.release();  // rd_kafka_new took it.
  return HandlePtr(rk);
}

Status CheckCluster(rd_kafka_t* rk, const std::string& bootstrap_servers,
                    int timeout_ms,
                    const std::vector<std::string>& required_topics) {
  const rd_kafka_metadata_t* metadata = nullptr;
  // all_topics=1: one request answers both "is anyone there" and "do the
  // topics exist". rd_kafka_metadata waits for a usable broker connection
  // for at most timeout_ms, so this is bounded even if nothing listens.
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk, 1, nullptr, &metadata, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    Status detail = KafkaStatus(err, "");
    return Status::Unavailable("no Kafka broker at '" + bootstrap_servers +
                               "' answered within " +
                               std::to_string(timeout_ms) + " ms: " +
                               detail.message());
  }
  std::set<std::string> existing;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    if (metadata->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      existing.insert(metadata->topics[i].topic);
    }
  }
  rd_kafka_metadata_destroy(metadata);
  for (const std::string& topic : required_topics) {
    if (!topic.empty() && topic[0] == '^') continue;
    if (existing.count(topic) == 0) {
      return Status::NotFound("topic '" + topic + "' does not exist on '" +
                              bootstrap_servers + "'");
    }
  }
  return Status::Ok();
}

std::string PartitionName(const char* topic, int32_t partition) {
  return std::string(topic) + "[" + std::to_string(partition) + "]";
}

}  // namespace nlpflow::kafka_internal
