// Options of the Kafka connectors: plain structs, every field defaulted.
//
// The pipeline parses its YAML into these once; the connectors never see
// YAML. The librdkafka properties the connectors set themselves (listed in
// kafka_options.cc, next to the code that applies them) start from the
// low-latency settings in FACTS.md; the *_properties maps are applied last,
// so a user can override any of them. An unknown property name or an invalid
// value makes Create() fail with InvalidArgument naming the property.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace nlpflow {

// Extra librdkafka properties, "name" -> "value", applied after ours.
using KafkaProperties = std::map<std::string, std::string>;

struct KafkaSourceOptions {
  // Comma-separated host:port list of brokers to bootstrap from.
  std::string bootstrap_servers = "127.0.0.1:9092";
  // Consumer group. Processes with the same group split the partitions.
  std::string group_id = "nlpflow";
  // Topics to subscribe to. A name starting with '^' is a regex
  // subscription; plain names must exist when Create() runs.
  std::vector<std::string> topics;
  // Shows up in broker logs and metrics.
  std::string client_id = "nlpflow";

  // How long one poll may block waiting for a message. Bounds how late the
  // poll thread notices Stop(), a due commit or a backpressure change; it adds
  // no latency to records (a poll returns as soon as one is there).
  int poll_timeout_ms = 10;
  // How often the poll thread commits the done offsets (asynchronously).
  // Shorter repeats fewer records after a crash and costs more commit
  // requests.
  int commit_interval_ms = 200;
  // Backpressure bound: at most this many records are handed over and not yet
  // marked done (OffsetTracker::in_flight()). When it is reached the source
  // pauses its partitions.
  int max_in_flight = 1000;
  // Resume the partitions once in_flight() <= max_in_flight * this / 100.
  // Lower values pause less often, in longer stretches.
  int resume_at_percent = 75;
  // Create() fails with Unavailable if no broker answers a metadata request
  // within this time. 0 skips the check.
  int connect_timeout_ms = 10000;
  // Stop() retries its final synchronous commit for at most this long while
  // it fails only because a rebalance is under way (polling meanwhile, so the
  // rebalance can complete).
  int stop_commit_timeout_ms = 5000;
  // On a revoke, how long the source waits for the records of the revoked
  // partitions that are still in the graph to be written (and then commits
  // them) before it lets the partitions go. What is not written by then is
  // dropped unwritten and read again by the new owner.
  int revoke_timeout_ms = 10000;

  // librdkafka consumer properties, applied last.
  KafkaProperties consumer_properties;
};

struct KafkaSinkOptions {
  std::string bootstrap_servers = "127.0.0.1:9092";
  std::string client_id = "nlpflow";

  // librdkafka linger.ms: how long the producer waits to fill a batch. 1 ms
  // trades a little throughput for latency.
  int linger_ms = 1;
  // librdkafka message.timeout.ms: a message not acknowledged by then gets a
  // failed delivery report (DeadlineExceeded). Retries happen inside it.
  int message_timeout_ms = 30000;
  // Produce() blocks at most this long while librdkafka's local queue is full
  // (queue.buffering.max.messages / .kbytes), then returns Unavailable.
  int queue_full_timeout_ms = 1000;
  // Create() fails with Unavailable if no broker answers within this time.
  // 0 skips the check.
  int connect_timeout_ms = 10000;

  // Exactly-once: a non-empty id makes the producer transactional
  // (librdkafka transactional.id). It must be stable across restarts of the
  // same instance (a restart then fences its previous incarnation and aborts
  // the transaction it left open) and differ between instances.
  std::string transactional_id;
  // librdkafka transaction.timeout.ms: the coordinator aborts a transaction
  // left open longer. message_timeout_ms must not exceed it. Also bounds how
  // long a commit or abort may take.
  int transaction_timeout_ms = 60000;

  // librdkafka producer properties, applied last.
  KafkaProperties producer_properties;
};

// One validation function per struct: InvalidArgument naming the field.
Status ValidateKafkaSourceOptions(const KafkaSourceOptions& options);
Status ValidateKafkaSinkOptions(const KafkaSinkOptions& options);

// The librdkafka properties the connectors use, ours first and the user's
// last, in the order they are applied. Exposed for logging and tests.
std::vector<std::pair<std::string, std::string>> ConsumerProperties(
    const KafkaSourceOptions& options);
std::vector<std::pair<std::string, std::string>> ProducerProperties(
    const KafkaSinkOptions& options);

}  // namespace nlpflow
