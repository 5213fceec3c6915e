// Topic administration and a connectivity check, for the pipeline's start-up
// (it creates its output and dead-letter topics if absent) and for tests.
//
// Each call makes a short-lived client of its own; call from any thread.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "connectors/kafka/kafka_options.h"

namespace nlpflow {

struct TopicSpec {
  std::string name;
  int partitions = 1;
  // -1: the broker's default.replication.factor (needs Kafka >= 2.4).
  int replication_factor = -1;
};

// InvalidArgument naming the field for an empty name, partitions < 1 or a
// replication factor that is neither -1 nor >= 1.
Status ValidateTopicSpec(const TopicSpec& spec);

// OK if a broker at `bootstrap_servers` answers a metadata request within
// timeout_ms; Unavailable naming the servers otherwise. `properties` are
// extra librdkafka properties (security settings, for instance).
Status CheckConnectivity(const std::string& bootstrap_servers, int timeout_ms,
                         const KafkaProperties& properties = {});

// Creates the topics with the Admin API and waits (up to timeout_ms in all)
// until the cluster reports them created and its metadata shows a leader for
// every partition, so that clients started next find them whole (a broker
// may still answer NOT_LEADER for a moment; librdkafka's producers and
// consumers retry that by themselves). A topic that
// already exists is OK and is left as it is (its partition count is not
// changed). Unavailable if the
// cluster does not answer; otherwise the first failure, naming its topic.
// librdkafka's mock cluster (EmbeddedBroker) does not implement CreateTopics:
// use EmbeddedBroker::CreateTopics there.
Status CreateTopics(const std::string& bootstrap_servers,
                    const std::vector<TopicSpec>& topics, int timeout_ms,
                    const KafkaProperties& properties = {});

}  // namespace nlpflow
