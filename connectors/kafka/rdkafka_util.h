// Helpers shared by the Kafka connectors: owning handles for librdkafka's C
// objects, building a configuration, routing librdkafka's log to spdlog and
// checking that a cluster answers.
//
// Internal to connectors/kafka (it includes librdkafka's C header).
#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "connectors/kafka/offset_tracker.h"

namespace nlpflow::kafka_internal {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct ErrorDeleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using PartitionListPtr =
    std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;

// A configuration with `properties` applied in order (later ones win) and
// librdkafka's log routed to spdlog. InvalidArgument names the property that
// is unknown or has an invalid value.
Result<ConfPtr> BuildConf(
    const std::vector<std::pair<std::string, std::string>>& properties);

// rd_kafka_new; takes ownership of `conf` (also on failure).
Result<HandlePtr> NewHandle(rd_kafka_type_t type, ConfPtr conf);

// Waits up to timeout_ms for a metadata answer from the cluster.
// Unavailable, naming `bootstrap_servers`, if none came. NotFound naming the
// first topic of `required_topics` the cluster does not have (names that
// start with '^' are regex subscriptions and are not checked).
Status CheckCluster(rd_kafka_t* rk, const std::string& bootstrap_servers,
                    int timeout_ms,
                    const std::vector<std::string>& required_topics = {});

// The start-up error for a failed authentication at `bootstrap_servers`:
// "Kafka authentication at '<servers>' failed: <reason>", where `reason` is
// librdkafka's log line (it names the broker and the mechanism, never the
// password). `sasl_mechanism` is the handle's sasl.mechanisms and
// `librdkafka_version` rd_kafka_version()'s value. A SASL failure with a
// SCRAM mechanism and a librdkafka before 2.6.1 gets a note: those versions
// send a final SCRAM message that Kafka >= 4.0 rejects even with the right
// password, and librdkafka's reason ("invalid credentials") blames the
// password.
std::string AuthFailureMessage(const std::string& bootstrap_servers,
                               const std::string& reason,
                               const std::string& sasl_mechanism,
                               int librdkafka_version);

// "topic[partition]" for messages.
std::string PartitionName(const char* topic, int32_t partition);

// Partition lists, librdkafka's and ours. A list made here owns its copies
// of the topic names; offsets are left at RD_KAFKA_OFFSET_INVALID unless
// given.
std::vector<TopicPartition> ToPartitions(const rd_kafka_topic_partition_list_t* list);
PartitionListPtr ToList(const std::set<TopicPartition>& partitions);
PartitionListPtr ToList(const std::vector<TopicPartitionOffset>& offsets);
PartitionListPtr ToList(const std::map<TopicPartition, int64_t>& offsets);
// "topic[0], topic[1]" for messages.
std::string Describe(const rd_kafka_topic_partition_list_t* list);

}  // namespace nlpflow::kafka_internal
