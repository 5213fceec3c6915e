// The delivery checker of the fault tests, in the style of Kafka's own
// transactions test: every input record carries a unique key; after a run
// the checker reads the output topic and the dead-letter topic with
// isolation.level=read_committed and reports
//   in            input records (good + poison)
//   out           result messages read (duplicates included)
//   dead_letters  dead-letter messages read (duplicates included)
//   duplicates    messages beyond the first per key, over both topics
//   missing       good keys without a result + poison keys without a dead letter
//   misrouted     good keys on the dead-letter topic or poison keys on the output
//   unexpected    keys that were never input
//   out_of_order  per input partition: results whose input offset is not
//                 greater than the previous one read from the same output
//                 partition for the same input partition
// A result names its input in "source": {"topic", "partition", "offset"}; a
// dead letter in "topic", "partition", "offset" (JSON output format).
//
// Also the fault tests' input (ProduceInputWithPoison), their seed
// (FaultSeed) and what they require of the report (ExpectDelivered).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "tests/integration/test_util.h"

namespace nlpflow::testing {

struct DeliveryReport {
  int64_t in = 0;
  int64_t out = 0;
  int64_t dead_letters = 0;
  int64_t duplicates = 0;
  int64_t missing = 0;
  int64_t misrouted = 0;
  int64_t unexpected = 0;
  int64_t out_of_order = 0;
  std::map<int32_t, int64_t> out_of_order_by_partition;  // input partition -> count
  std::string first_missing;                              // a key, for messages

  // One line: "in=... out=... dead_letters=... duplicates=... missing=... ..."
  std::string Summary() const;
};

struct DeliveryCheck {
  std::string bootstrap;
  std::string output_topic;
  std::string dead_letter_topic;
  std::set<std::string> good_keys;    // expected on the output topic
  std::set<std::string> poison_keys;  // expected on the dead-letter topic
};

// Reads both topics from the beginning (read_committed) until every expected
// key was seen and then nothing new came for `settle`, or `timeout` passed;
// then counts. Prints the summary line to stdout, prefixed by `label`.
DeliveryReport CheckDelivery(const DeliveryCheck& check, const std::string& label,
                             std::chrono::seconds timeout,
                             std::chrono::seconds settle = std::chrono::seconds(5));

// Produces `n` records with unique keys to `topics.in` (which must exist): 1%
// poison (keys "p<i>": invalid UTF-8, broken JSON, no "text" field, or over
// input.max_record_bytes=2000, in turn), the rest JSON texts (keys "g<i>").
// Returns the check that expects the good keys on `topics.out` and the poison
// keys on `topics.dlq`.
DeliveryCheck ProduceInputWithPoison(const std::string& bootstrap, const TestTopics& topics,
                                     int n);

// The seed of a fault test's random choices: $NLPFLOW_FAULT_SEED, or else the
// time. Printed with the test's name, so that a run can be repeated.
uint32_t FaultSeed();

// What the fault tests require: nothing missing, misrouted or unexpected;
// with `exactly_once` also no duplicates and no partition out of order.
void ExpectDelivered(const DeliveryReport& report, bool exactly_once);

}  // namespace nlpflow::testing
