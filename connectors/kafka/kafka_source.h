// KafkaSource: reads input topics as a member of a consumer group and hands
// each message, as a Record, to a callback (the graph's entry).
//
// Threads:
//   - Create, Start, Stop, status and stats are called by the owner, from any
//     thread except the poll thread (Stop joins it; called from there it
//     returns FailedPrecondition). Stop is idempotent and the destructor calls
//     it.
//   - The poll thread (started by Start) is the only thread that touches the
//     librdkafka consumer. It calls `on_record`, one record at a time, and
//     OffsetTracker::Track right before each call; it runs librdkafka's
//     rebalance, commit and error callbacks.
//   - librdkafka's internal threads only log (through spdlog).
//   - Anyone (in nlpflow: the sink's delivery thread) calls
//     OffsetTracker::MarkDone when a record's result or dead letter was
//     acknowledged by the broker.
//
// Each Record carries coords (topic, partition, offset), the key (nullopt for
// a null key, "" for an empty one), the headers in order (a null header
// value arrives as ""), timestamp_ms (-1 if the message has none), the payload
// bytes, sequence (0, 1, 2, ... in this source's arrival order) and
// times.arrived_us.
//
// Contract of `on_record`: called on the poll thread only, never
// concurrently; must return quickly (it delays the next poll; not returning
// within librdkafka's max.poll.interval.ms, 300 s by default, drops the
// consumer from its group); must not call Stop(). If it throws, the source
// stops with an Internal status.
//
// Delivery (at-least-once): the poll thread commits, every
// commit_interval_ms, the OffsetTracker positions that advanced (async commit
// with explicit offsets); on revoke it commits the revoked partitions' done
// positions synchronously and then forgets them; Stop commits what is done
// synchronously. Nothing is committed that is not done, so a crash repeats
// records and never loses one.
//
// Exactly-once (Create with a transactional `sink`): the poll thread does not
// commit offsets itself. Every commit_interval_ms it ends the sink's open
// transaction with the tracker's advanced positions and the consumer's group
// metadata (KafkaSink::EndTransaction), so results, dead letters and input
// offsets commit together. If the transaction aborts, every partition is
// forgotten and fenced (nothing in flight is published any more) and the
// consumer seeks each assigned partition back to its last committed position
// (or where this instance started reading it), and goes on. A fatal
// transaction error (fenced) stops the source with that error.
//
// Rebalances with a `sink`: on a revoke the poll thread waits (up to
// revoke_timeout_ms) until the revoked partitions' records in the graph are
// written; then, exactly-once, it commits the transaction (or aborts it and
// rewinds the partitions it keeps), or, at-least-once, fences the partitions
// (no later result of theirs is produced), flushes the producer and commits
// their done offsets; only then are they released. Lost partitions are fenced
// at once and nothing more is written for them (exactly-once: the open
// transaction is aborted). Records of fenced partitions still in the graph
// are dropped at the sink (OffsetTracker::IsCurrent/Release) and keep
// counting toward max_in_flight until they are.
//
// Backpressure, exactly: the poll thread checks tracker->in_flight() before
// every poll, and a poll returns at most one message. When in_flight() >=
// max_in_flight it pauses every assigned partition (librdkafka discards what
// it had fetched ahead and later resumes at the first message not handed
// over) and keeps polling so that the group membership stays alive. So the
// source hands over no record while in_flight() >= max_in_flight: in_flight()
// never exceeds max_in_flight through this source. It resumes when
// in_flight() <= max_in_flight * resume_at_percent / 100.
// Records of revoked partitions count in in_flight() until they leave the
// graph.
//
// Rebalances: both the eager (range, roundrobin) and the cooperative
// (cooperative-sticky, via partition.assignment.strategy) protocols.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/record.h"
#include "common/status.h"
#include "connectors/kafka/kafka_options.h"
#include "connectors/kafka/kafka_sink.h"
#include "connectors/kafka/offset_tracker.h"

namespace nlpflow {

// Counters for metrics and tests; a snapshot, each field read atomically.
struct KafkaSourceStats {
  uint64_t records = 0;           // handed to on_record
  uint64_t dropped_duplicates = 0;  // re-delivered offsets not handed over
  uint64_t pauses = 0;            // times backpressure paused the partitions
  bool paused = false;            // paused by backpressure now
  uint64_t commits = 0;           // successful offset commits (async or sync)
  uint64_t commit_failures = 0;
  uint64_t aborted_transactions = 0;  // exactly-once only
  int32_t assigned_partitions = 0;
  // True once the group assigned this member its share, even an empty one
  // (a standby when members outnumber partitions).
  bool joined_group = false;
};

// Where the consumer stands in one assigned partition (for consumer lag).
struct PartitionPosition {
  std::string topic;
  int32_t partition = -1;
  // The next offset to hand over (last handed-over offset + 1); -1 until a
  // record of the partition was handed over since it was assigned.
  int64_t position = -1;
  // The partition's first and end offsets as of the last fetch response; -1
  // if none yet.
  int64_t low_watermark = -1;
  int64_t high_watermark = -1;
};

class KafkaSource {
 public:
  using RecordCallback = std::function<void(RecordPtr)>;

  // Validates `options`, creates the consumer and checks, for at most
  // options.connect_timeout_ms, that the cluster answers (Unavailable naming
  // the bootstrap servers otherwise) and that the input topics exist
  // (NotFound). Does not join the group yet. `tracker` is shared with
  // whoever calls MarkDone; `on_record` is the graph's entry. `sink`, if
  // given, is the producer the results go to (it must outlive the source):
  // transactional, it makes the source exactly-once (see above); either way
  // it is used to fence and flush on revokes.
  static Result<std::unique_ptr<KafkaSource>> Create(
      const KafkaSourceOptions& options, std::shared_ptr<OffsetTracker> tracker,
      RecordCallback on_record, KafkaSink* sink = nullptr);

  // Calls Stop() with no drain.
  ~KafkaSource();

  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  // Subscribes and starts the poll thread. FailedPrecondition if called twice
  // or after Stop.
  Status Start();

  // Stops handing over records and pauses the partitions. Then, for up to
  // drain_timeout_ms, keeps polling and committing while in_flight() > 0 (the
  // graph keeps running and finishing records meanwhile). Then commits what is
  // done synchronously (retrying for up to options.stop_commit_timeout_ms if
  // a rebalance is under way), leaves the group (consumer close) and joins
  // the poll thread. Idempotent: later calls return the first call's result.
  // Returns the first fatal error of the source, else the final commit's
  // status.
  // Records finished after Stop are not committed: they are read again by the
  // next owner of their partitions.
  Status Stop(int drain_timeout_ms = 0);

  // OK while the source is healthy; the first fatal error otherwise (the poll
  // thread then stops handing over records and leaves the group).
  Status status() const;

  KafkaSourceStats stats() const;

  // Every assigned partition's position and high watermark, as the poll
  // thread last read them from librdkafka's local state (every
  // commit_interval_ms; no broker request). Sorted by (topic, partition).
  std::vector<PartitionPosition> positions() const;

 private:
  class Impl;
  explicit KafkaSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nlpflow
