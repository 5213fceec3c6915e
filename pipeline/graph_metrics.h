// What the embedding graph counts and measures.
//
// GraphCounters: records in, out and dead-lettered, kept by every graph (the
// graph's own in-flight count is derived from them). Exact definitions:
//   in          records handed to the graph by its source (ServeGraph::Put)
//   out         results handed to the sink (ResultSink::Publish returned)
//   dead[stage] dead letters handed to the sink (PublishDeadLetter returned),
//               by the stage that rejected the record
// (With pipeline.ordered_per_partition "the sink" is the reorder stage in
// front of it, where a finished record may wait for an earlier one; none
// waits there once in_flight is 0.)
//   in_flight   in - out - sum(dead): records in the graph now
// So in = out + dead + in_flight holds in every Snapshot(), and a Snapshot's
// values all held at one instant (see Snapshot). Acknowledgement by a broker
// is counted elsewhere (the serve app's "acknowledged" counter).
//
// GraphMetrics: per-stage latency histograms and per-batch histograms, in a
// MetricsRegistry. A record's time between entering the graph and reaching
// the sink is split, from its StageTimes, into
//   stage     queue (waiting before it)             compute
//   decode    arrived -> decode started             decode started -> decoded
//   tokenize  decoded -> tokenize started           started -> tokenized
//   batch     tokenized -> its batch closed         (none: no work of its own)
//   infer     batch closed -> batch started on a    started -> inferred
//             model instance
//   encode    inferred -> encode started            started -> serialized
//   sink      (none: produced as soon as encoded)   produce -> broker ack
// Stage histograms count results only (dead letters leave early and would
// skew them); the sink's compute comes from the delivery report and counts
// results and dead letters.
//
// Threads: everything here is lock-free and may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "common/metrics.h"
#include "common/record.h"

namespace nlpflow {

inline constexpr int kNumStages = static_cast<int>(Stage::kSink) + 1;

struct GraphCounts {
  int64_t in = 0;
  int64_t out = 0;
  std::array<int64_t, kNumStages> dead{};  // indexed by Stage

  int64_t dead_total() const;
  int64_t in_flight() const { return in - out - dead_total(); }
  bool operator==(const GraphCounts&) const = default;
};

class GraphCounters {
 public:
  void AddIn() { in_.fetch_add(1); }
  void AddOut() { out_.fetch_add(1); }
  void AddDead(Stage stage) { dead_[static_cast<int>(stage)].fetch_add(1); }

  // in - out - dead from one pass over the counters; never negative, and 0
  // only if the graph was empty at some instant during the call.
  int64_t InFlight() const { return Read().in_flight(); }

  // Values that all held at one instant: the counters only grow, so two
  // successive passes that read the same values saw no change in between
  // (retried until they agree; under a flood of records that never settles,
  // after 1,000 tries the last pass is returned: still in >= out + dead).
  GraphCounts Snapshot() const;

 private:
  // Reads dead and out before in: whatever left the graph had entered it.
  GraphCounts Read() const;

  std::atomic<int64_t> in_{0};
  std::atomic<int64_t> out_{0};
  std::array<std::atomic<int64_t>, kNumStages> dead_{};
};

// Histograms the graph records into. Default-constructed: all null, nothing
// is recorded.
struct GraphMetrics {
  // Registers every histogram in `registry` (which must outlive the result).
  static GraphMetrics Register(MetricsRegistry* registry);

  // Observes the stage times of a result handed to the sink.
  void ObserveResult(const StageTimes& t) const;
  // Observes a batch about to run: its size and real and padded tokens.
  void ObserveBatch(const Batch& batch) const;
  // The sink's compute: produce to acknowledgement.
  void ObserveDelivery(int64_t latency_us) const;

  // Indexed by Stage; null where a stage has no such histogram.
  std::array<Histogram*, kNumStages> queue_seconds{};
  std::array<Histogram*, kNumStages> compute_seconds{};
  // Arrived -> encoded, per result: the latency the dashboard's p50/p99 show.
  Histogram* record_seconds = nullptr;
  Histogram* batch_size = nullptr;
  Histogram* batch_real_tokens = nullptr;
  Histogram* batch_padded_tokens = nullptr;
};

// Bucket bounds of the stage histograms, in seconds: 10 us to 10 s in
// 1-2.5-5 steps.
std::vector<double> LatencyBucketsSeconds();

}  // namespace nlpflow
