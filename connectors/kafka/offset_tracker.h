// OffsetTracker: which input offsets may be committed (at-least-once).
//
// Records of one partition enter the graph in offset order but may finish out
// of order (batches, parallel workers, delivery reports). The offset to commit
// for a partition is "last contiguous done offset + 1": every offset the
// source tracked below it is done. Offsets are tracked by the values actually
// seen, never by +1 arithmetic, because Kafka offsets have gaps (compaction,
// transaction markers): after tracking 5 and 7 and finishing both, the commit
// position is 8.
//
// Thread-safety: every method may be called from any thread. In nlpflow the
// source's poll thread calls Track, TakeCommittable, CommitPositions,
// RestoreCommittable and Forget; the sink's delivery thread calls MarkDone.
//
// Cost: Track and the advance of the done prefix are O(1) amortized. MarkDone
// finds its entry in O(1) when the partition's in-flight offsets are dense
// and by binary search (O(log n)) where they have gaps. Memory is one entry
// per tracked offset from the oldest unfinished one on: a record that never
// finishes keeps the entries of everything after it alive.
//
// No Kafka dependency: the logic is unit-tested on its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace nlpflow {

struct TopicPartition {
  std::string topic;
  int32_t partition = -1;

  friend auto operator<=>(const TopicPartition&,
                          const TopicPartition&) = default;
};

// A commit position: the next offset the group should read.
struct TopicPartitionOffset {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;

  friend bool operator==(const TopicPartitionOffset&,
                         const TopicPartitionOffset&) = default;
};

class OffsetTracker {
 public:
  OffsetTracker() = default;
  OffsetTracker(const OffsetTracker&) = delete;
  OffsetTracker& operator=(const OffsetTracker&) = delete;

  // A record at `offset` entered the graph.
  // REQUIRES: offset is greater than every offset tracked before for this
  // partition since it was last forgotten; otherwise FailedPrecondition and
  // nothing changes (the source drops such a re-delivered record: the first
  // copy is already in flight or done). InvalidArgument for offset < 0.
  Status Track(std::string_view topic, int32_t partition, int64_t offset);

  // The result (or dead letter) of the record at `offset` was acknowledged.
  // NotFound if the partition is not tracked (e.g. forgotten after a revoke:
  // a late report, which callers may ignore) or the offset is not in flight;
  // FailedPrecondition if it was already marked done. Either way nothing
  // changes.
  Status MarkDone(std::string_view topic, int32_t partition, int64_t offset);

  // The commit position of every partition whose position advanced since the
  // last TakeCommittable, sorted by (topic, partition). Marks them taken.
  std::vector<TopicPartitionOffset> TakeCommittable();

  // The commit position of every tracked partition that has one (something
  // done), taken or not, sorted by (topic, partition). For synchronous
  // commits on revoke and stop.
  std::vector<TopicPartitionOffset> CommitPositions() const;
  // The same, restricted to `partitions`.
  std::vector<TopicPartitionOffset> CommitPositions(
      const std::vector<TopicPartition>& partitions) const;

  // A commit of `failed` did not go through: TakeCommittable returns those
  // partitions again (at their current position) unless a newer position was
  // taken since.
  void RestoreCommittable(const std::vector<TopicPartitionOffset>& failed);

  // Drops all state of `partitions` (they were revoked). Their unfinished
  // records no longer count in in_flight(); their late MarkDone calls get
  // NotFound.
  void Forget(const std::vector<TopicPartition>& partitions);

  // Records tracked and not yet done, over all partitions. Lock-free.
  int64_t in_flight() const { return in_flight_.load(std::memory_order_acquire); }

 private:
  struct Entry {
    int64_t offset;
    bool done;
  };
  struct PartitionState {
    // Tracked offsets from the oldest unfinished one on, ascending. The front
    // entry is never done (done prefixes are popped at once).
    std::deque<Entry> window;
    int64_t last_tracked = -1;
    // Last contiguous done offset + 1; -1 while nothing is done.
    int64_t commit_position = -1;
    // commit_position as last returned by TakeCommittable; -1 if none.
    int64_t taken_position = -1;
  };
  using Key = std::pair<std::string, int32_t>;
  struct KeyLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::pair<std::string_view, int32_t>(a.first, a.second) <
             std::pair<std::string_view, int32_t>(b.first, b.second);
    }
  };

  mutable std::mutex mutex_;
  std::map<Key, PartitionState, KeyLess> partitions_;  // GUARDED_BY(mutex_)
  // Written under mutex_, read without it.
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace nlpflow
