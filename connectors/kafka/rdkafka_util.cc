#include "connectors/kafka/rdkafka_util.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "connectors/kafka/kafka_status.h"

namespace nlpflow::kafka_internal {
namespace {

// Authentication failures that librdkafka reported in its log, per handle,
// so that CheckCluster can stop at once with librdkafka's own reason instead
// of waiting out its timeout. librdkafka reports them nowhere else before the
// application polls. The messages name the broker and the mechanism, never
// the password.
class AuthFailures {
 public:
  static AuthFailures& Get() {
    static AuthFailures* failures = new AuthFailures();  // never destroyed
    return *failures;
  }
  void Set(const rd_kafka_t* rk, std::string message) {
    std::lock_guard<std::mutex> lock(mutex_);
    failures_[rk] = std::move(message);
  }
  std::string Take(const rd_kafka_t* rk) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = failures_.find(rk);
    if (it == failures_.end()) return "";
    std::string m = std::move(it->second);
    failures_.erase(it);
    return m;
  }

 private:
  std::mutex mutex_;
  std::map<const rd_kafka_t*, std::string> failures_;  // GUARDED_BY(mutex_)
};

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
  // "SSL alert number": the broker refused the TLS session (no client
  // certificate where one is required, or one it does not accept: unknown
  // CA, expired), which librdkafka sees only on its first read.
  if (std::strstr(message, "SASL authentication error") != nullptr ||
      std::strstr(message, "SSL handshake failed") != nullptr ||
      std::strstr(message, "SSL alert number") != nullptr) {
    AuthFailures::Get().Set(rk, message);
  }
}

// The handle's SASL mechanism ("GSSAPI", librdkafka's default, if unset).
std::string SaslMechanism(rd_kafka_t* rk) {
  char value[64];
  size_t size = sizeof(value);
  if (rd_kafka_conf_get(rd_kafka_conf(rk), "sasl.mechanisms", value, &size) !=
      RD_KAFKA_CONF_OK) {
    return "";
  }
  return value;
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
  (void)AuthFailures::Get().Take(rk);  // a stale entry of a destroyed handle
  // all_topics=1: one request answers both "is anyone there" and "do the
  // topics exist". Asked in short rounds, so that a failed authentication
  // (logged by librdkafka meanwhile) stops the wait at once.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) break;
    err = rd_kafka_metadata(rk, 1, nullptr, &metadata,
                            static_cast<int>(std::min<int64_t>(left, 500)));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    std::string auth = AuthFailures::Get().Take(rk);
    if (!auth.empty()) {
      return Status::Unavailable(AuthFailureMessage(
          bootstrap_servers, auth, SaslMechanism(rk), rd_kafka_version()));
    }
    // An error other than a timeout can come back at once: do not spin.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
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

std::string AuthFailureMessage(const std::string& bootstrap_servers,
                               const std::string& reason,
                               const std::string& sasl_mechanism,
                               int librdkafka_version) {
  std::string message = "Kafka authentication at '" + bootstrap_servers +
                        "' failed: " + reason;
  // librdkafka 2.6.1 (confluentinc/librdkafka#4895) stopped repeating the
  // client nonce in the client-final-message; Kafka 4.0 made the broker's
  // nonce check exact (CVE-2024-56128), 3.x only checks the end. The broker
  // version is not known here, hence "against Kafka >= 4.0". The version's
  // low byte is the pre-release number: any 2.6.1 build has the fix.
  constexpr int kScramNonceFixed = 0x020601;  // 2.6.1
  if ((librdkafka_version >> 8) < kScramNonceFixed &&
      sasl_mechanism.rfind("SCRAM-", 0) == 0 &&
      reason.find("SASL authentication error") != std::string::npos) {
    message +=
        " (note: SCRAM against Kafka >= 4.0 needs librdkafka >= 2.6.1; "
        "linked: " +
        std::to_string((librdkafka_version >> 24) & 0xff) + "." +
        std::to_string((librdkafka_version >> 16) & 0xff) + "." +
        std::to_string((librdkafka_version >> 8) & 0xff) + ")";
  }
  return message;
}

std::string PartitionName(const char* topic, int32_t partition) {
  return std::string(topic) + "[" + std::to_string(partition) + "]";
}

std::vector<TopicPartition> ToPartitions(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  out.reserve(static_cast<size_t>(list->cnt));
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}

PartitionListPtr ToList(const std::set<TopicPartition>& partitions) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const TopicPartition& tp : partitions) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  }
  return list;
}

PartitionListPtr ToList(const std::vector<TopicPartitionOffset>& offsets) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const TopicPartitionOffset& o : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), o.topic.c_str(), o.partition)->offset =
        o.offset;
  }
  return list;
}

PartitionListPtr ToList(const std::map<TopicPartition, int64_t>& offsets) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [tp, offset] : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset =
        offset;
  }
  return list;
}

std::string Describe(const rd_kafka_topic_partition_list_t* list) {
  std::string out;
  for (int i = 0; i < list->cnt; ++i) {
    if (i > 0) out += ", ";
    out += PartitionName(list->elems[i].topic, list->elems[i].partition);
  }
  return out;
}

}  // namespace nlpflow::kafka_internal
