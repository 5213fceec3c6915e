// TransactionCoordinator: the exactly-once protocol between the source's
// consumer and the sink's transactional producer, in one place. The source
// asks it to end the open transaction; it takes the offsets that are done
// from the offset tracker, has the sink commit them with the records the
// transaction holds (KafkaSink::EndTransaction, which it alone calls), and
// keeps, per partition, the offset last committed that way. After an abort
// (asked for, or because the commit failed, or because the sink had to
// rebuild its producer) every partition is forgotten in the tracker and the
// coordinator says where each partition still assigned must rewind to: its
// last committed offset, or where reading it began.
//
// Threads: the source's poll thread only (it also owns the consumer handle
// passed in).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "common/status.h"
#include "connectors/kafka/offset_tracker.h"

typedef struct rd_kafka_s rd_kafka_t;

namespace nlpflow {

class KafkaSink;

class TransactionCoordinator {
 public:
  // `sink` (transactional) and `tracker` must outlive the coordinator.
  TransactionCoordinator(KafkaSink* sink, OffsetTracker* tracker)
      : sink_(sink), tracker_(tracker) {}

  struct Outcome {
    // OK: committed. Cancelled: aborted; seek `rewind`. Otherwise fatal (the
    // producer was fenced): the source must stop.
    Status status;
    // Aborted only: partition -> offset to seek to, for the partitions in
    // `assignment` that are not in `release`.
    std::map<TopicPartition, int64_t> rewind;
  };

  // Ends the open transaction and begins the next. `release` names
  // partitions to forget once it committed (a revoke); `abort` aborts it.
  // `assignment` is the consumer's assignment; `next_sequence` the sequence
  // the tracker forgets up to (OffsetTracker::Forget).
  Outcome End(rd_kafka_t* consumer, const std::vector<TopicPartition>& release, bool abort,
              const std::set<TopicPartition>& assignment, uint64_t next_sequence);

  // The partition left the assignment: its committed offset is no longer
  // where a rewind goes.
  void Forget(const TopicPartition& partition) { committed_.erase(partition); }

 private:
  KafkaSink* const sink_;
  OffsetTracker* const tracker_;
  // The last offset committed in a transaction, per partition.
  std::map<TopicPartition, int64_t> committed_;
};

}  // namespace nlpflow
