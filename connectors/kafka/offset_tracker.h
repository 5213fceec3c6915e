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
// RestoreCommittable, Forget and ForgetAll; the sink's delivery thread (or, in
// exactly-once mode, the graph worker that produced the result) calls
// MarkDone; graph workers call IsCurrent and Release.
//
// Fences: a partition that leaves the instance (revoked, lost, or rewound
// after an aborted transaction) is forgotten with a fence, a sequence number
// (Record::sequence) that the source has not handed out yet. Records of that
// partition with a smaller sequence are stale: they must not be produced
// (IsCurrent is false), and their late MarkDone never touches the state of a
// later assignment of the same partition, even for the same offset. Stale
// records keep counting in in_flight() until they leave the graph (MarkDone
// or Release), so that the source's backpressure bound holds for everything
// in the graph, not only for partitions it still owns.
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
#include <optional>
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
  // The same for the record with `sequence`. If that record is stale (its
  // partition was forgotten after it was tracked) it only stops counting in
  // in_flight() and the result is NotFound ("stale"); the partition's current
  // state, if any, is not touched.
  Status MarkDone(std::string_view topic, int32_t partition, int64_t offset,
                  uint64_t sequence);

  // False if the record with `sequence` is stale: its partition was fenced
  // after it was handed over. Its result must then not be written.
  bool IsCurrent(std::string_view topic, int32_t partition,
                 uint64_t sequence) const;

  // The record left the graph without a result being produced (it was stale
  // at the sink): it stops counting in in_flight(). A record still tracked
  // (fenced but not forgotten yet) stays in its window, never done, so the
  // commit position does not pass it.
  void Release(std::string_view topic, int32_t partition, int64_t offset,
               uint64_t sequence);

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

  // Fences `partitions` at `fence_sequence` (see above): records with a
  // smaller sequence are stale from now on. Does not drop their state: done
  // offsets still count toward CommitPositions (a revoke commits them after
  // fencing).
  void Fence(const std::vector<TopicPartition>& partitions,
             uint64_t fence_sequence);

  // Fences `partitions` at `fence_sequence` and drops their commit state
  // (they were revoked or lost, or are rewound). Their unfinished records
  // keep counting in in_flight() until each one's MarkDone or Release. A later
  // Track of the same partition starts afresh.
  void Forget(const std::vector<TopicPartition>& partitions,
              uint64_t fence_sequence);
  // Forget for every partition with state (an aborted transaction).
  void ForgetAll(uint64_t fence_sequence);
  // Forget with fence 0: no record becomes stale (for tests and callers
  // without sequences). Unfinished records still count until MarkDone.
  void Forget(const std::vector<TopicPartition>& partitions) {
    Forget(partitions, 0);
  }

  // Tracked records of `partitions` that are neither done nor released.
  int64_t Unfinished(const std::vector<TopicPartition>& partitions) const;

  // The first offset tracked for each partition since its state was created,
  // i.e. where this instance started reading it. Sorted like
  // CommitPositions.
  std::vector<TopicPartitionOffset> StartPositions() const;

  // The oldest tracked offset of the partition that is not done yet (the one
  // its commit position waits for); nullopt if there is none.
  std::optional<int64_t> OldestUnfinished(std::string_view topic,
                                          int32_t partition) const;

  // Changes whenever a fence moves (Fence, Forget, ForgetAll). Lock-free.
  uint64_t fence_generation() const {
    return fence_generation_.load(std::memory_order_acquire);
  }

  // Records tracked and not yet done, over all partitions. Lock-free.
  int64_t in_flight() const { return in_flight_.load(std::memory_order_acquire); }

 private:
  struct Entry {
    int64_t offset;
    bool done;
    bool released = false;  // left the graph unproduced; never done
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
    // The first offset tracked into this state.
    int64_t start_offset = -1;
    // The partition's fence when this state was created: records with a
    // smaller sequence belong to an earlier assignment.
    uint64_t min_sequence = 0;
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
  Status MarkDoneLocked(std::string_view topic, int32_t partition,
                        int64_t offset, PartitionState& p);
  uint64_t FenceOf(std::string_view topic, int32_t partition) const;
  // REQUIRES: mutex_ held. Raises the fences of `partitions` to
  // `fence_sequence` and bumps fence_generation_.
  void FenceLocked(const std::vector<TopicPartition>& partitions, uint64_t fence_sequence);

  std::map<Key, PartitionState, KeyLess> partitions_;  // GUARDED_BY(mutex_)
  std::map<Key, uint64_t, KeyLess> fences_;            // GUARDED_BY(mutex_)
  // Written under mutex_, read without it.
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> fence_generation_{0};
};

}  // namespace nlpflow
