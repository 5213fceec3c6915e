#include "connectors/kafka/offset_tracker.h"

#include <algorithm>
#include <tuple>

namespace nlpflow {
namespace {

std::string Name(std::string_view topic, int32_t partition) {
  return std::string(topic) + "[" + std::to_string(partition) + "]";
}

}  // namespace

Status OffsetTracker::Track(std::string_view topic, int32_t partition,
                            int64_t offset) {
  if (offset < 0) {
    return Status::InvalidArgument("cannot track offset " +
                                   std::to_string(offset) + " of " +
                                   Name(topic, partition));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = partitions_.find(std::pair<std::string_view, int32_t>(topic, partition));
  if (it == partitions_.end()) {
    PartitionState fresh;
    fresh.min_sequence = FenceOf(topic, partition);
    it = partitions_.emplace(Key(std::string(topic), partition), std::move(fresh))
             .first;
  }
  PartitionState& p = it->second;
  if (p.start_offset < 0) p.start_offset = offset;
  if (offset <= p.last_tracked) {
    return Status::FailedPrecondition(
        "offset " + std::to_string(offset) + " of " + Name(topic, partition) +
        " is not after the last tracked offset " +
        std::to_string(p.last_tracked));
  }
  p.window.push_back(Entry{offset, false});
  p.last_tracked = offset;
  in_flight_.fetch_add(1, std::memory_order_release);
  return Status::Ok();
}

Status OffsetTracker::MarkDone(std::string_view topic, int32_t partition,
                               int64_t offset) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = partitions_.find(std::pair<std::string_view, int32_t>(topic, partition));
  if (it == partitions_.end()) {
    return Status::NotFound(Name(topic, partition) + " is not tracked");
  }
  return MarkDoneLocked(topic, partition, offset, it->second);
}

Status OffsetTracker::MarkDoneLocked(std::string_view topic, int32_t partition,
                                     int64_t offset, PartitionState& p) {
  std::deque<Entry>& w = p.window;
  if (w.empty() || offset < w.front().offset || offset > w.back().offset) {
    return Status::NotFound("offset " + std::to_string(offset) + " of " +
                            Name(topic, partition) + " is not in flight");
  }
  // Without gaps the entry sits at offset - front; with gaps, search.
  size_t index = static_cast<size_t>(offset - w.front().offset);
  if (index >= w.size() || w[index].offset != offset) {
    auto found = std::lower_bound(
        w.begin(), w.end(), offset,
        [](const Entry& e, int64_t value) { return e.offset < value; });
    if (found == w.end() || found->offset != offset) {
      return Status::NotFound("offset " + std::to_string(offset) + " of " +
                              Name(topic, partition) + " is not in flight");
    }
    index = static_cast<size_t>(found - w.begin());
  }
  if (w[index].done) {
    return Status::FailedPrecondition("offset " + std::to_string(offset) +
                                      " of " + Name(topic, partition) +
                                      " was already marked done");
  }
  w[index].done = true;
  in_flight_.fetch_sub(1, std::memory_order_release);
  // Each entry is popped once: amortized O(1).
  while (!w.empty() && w.front().done) {
    p.commit_position = w.front().offset + 1;
    w.pop_front();
  }
  return Status::Ok();
}

Status OffsetTracker::MarkDone(std::string_view topic, int32_t partition,
                               int64_t offset, uint64_t sequence) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = partitions_.find(std::pair<std::string_view, int32_t>(topic, partition));
  if (it == partitions_.end() || sequence < it->second.min_sequence) {
    // Tracked by an earlier assignment and forgotten since: it still counted
    // as in flight (an orphan) until now.
    in_flight_.fetch_sub(1, std::memory_order_release);
    return Status::NotFound("offset " + std::to_string(offset) + " of " +
                            Name(topic, partition) +
                            " is stale (the partition was forgotten)");
  }
  return MarkDoneLocked(topic, partition, offset, it->second);
}

bool OffsetTracker::IsCurrent(std::string_view topic, int32_t partition,
                              uint64_t sequence) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sequence >= FenceOf(topic, partition);
}

void OffsetTracker::Release(std::string_view topic, int32_t partition,
                            int64_t offset, uint64_t sequence) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = partitions_.find(std::pair<std::string_view, int32_t>(topic, partition));
  if (it == partitions_.end() || sequence < it->second.min_sequence) {
    in_flight_.fetch_sub(1, std::memory_order_release);  // an orphan
    return;
  }
  std::deque<Entry>& w = it->second.window;
  auto found = std::lower_bound(
      w.begin(), w.end(), offset,
      [](const Entry& e, int64_t value) { return e.offset < value; });
  if (found != w.end() && found->offset == offset && !found->done &&
      !found->released) {
    found->released = true;
    in_flight_.fetch_sub(1, std::memory_order_release);
  }
}

uint64_t OffsetTracker::FenceOf(std::string_view topic, int32_t partition) const {
  auto it = fences_.find(std::pair<std::string_view, int32_t>(topic, partition));
  return it == fences_.end() ? 0 : it->second;
}

void OffsetTracker::FenceLocked(const std::vector<TopicPartition>& partitions,
                                uint64_t fence_sequence) {
  fence_generation_.fetch_add(1, std::memory_order_release);
  for (const TopicPartition& tp : partitions) {
    uint64_t& fence = fences_[Key(tp.topic, tp.partition)];
    fence = std::max(fence, fence_sequence);
  }
}

void OffsetTracker::Fence(const std::vector<TopicPartition>& partitions,
                          uint64_t fence_sequence) {
  std::lock_guard<std::mutex> lock(mutex_);
  FenceLocked(partitions, fence_sequence);
}

int64_t OffsetTracker::Unfinished(const std::vector<TopicPartition>& partitions) const {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t n = 0;
  for (const TopicPartition& tp : partitions) {
    auto it = partitions_.find(
        std::pair<std::string_view, int32_t>(tp.topic, tp.partition));
    if (it == partitions_.end()) continue;
    for (const Entry& e : it->second.window) n += (e.done || e.released) ? 0 : 1;
  }
  return n;
}

std::optional<int64_t> OffsetTracker::OldestUnfinished(std::string_view topic,
                                                      int32_t partition) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = partitions_.find(std::pair<std::string_view, int32_t>(topic, partition));
  if (it == partitions_.end() || it->second.window.empty()) return std::nullopt;
  return it->second.window.front().offset;
}

std::vector<TopicPartitionOffset> OffsetTracker::StartPositions() const {
  std::vector<TopicPartitionOffset> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [key, p] : partitions_) {
    if (p.start_offset >= 0) out.push_back({key.first, key.second, p.start_offset});
  }
  return out;
}

std::vector<TopicPartitionOffset> OffsetTracker::TakeCommittable() {
  std::vector<TopicPartitionOffset> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [key, p] : partitions_) {
    if (p.commit_position > p.taken_position) {
      out.push_back({key.first, key.second, p.commit_position});
      p.taken_position = p.commit_position;
    }
  }
  return out;
}

std::vector<TopicPartitionOffset> OffsetTracker::CommitPositions() const {
  std::vector<TopicPartitionOffset> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [key, p] : partitions_) {
    if (p.commit_position >= 0) {
      out.push_back({key.first, key.second, p.commit_position});
    }
  }
  return out;
}

std::vector<TopicPartitionOffset> OffsetTracker::CommitPositions(
    const std::vector<TopicPartition>& partitions) const {
  std::vector<TopicPartitionOffset> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const TopicPartition& tp : partitions) {
    auto it = partitions_.find(
        std::pair<std::string_view, int32_t>(tp.topic, tp.partition));
    if (it != partitions_.end() && it->second.commit_position >= 0) {
      out.push_back({tp.topic, tp.partition, it->second.commit_position});
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
  });
  return out;
}

void OffsetTracker::RestoreCommittable(
    const std::vector<TopicPartitionOffset>& failed) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const TopicPartitionOffset& f : failed) {
    auto it = partitions_.find(
        std::pair<std::string_view, int32_t>(f.topic, f.partition));
    if (it != partitions_.end() && it->second.taken_position == f.offset) {
      it->second.taken_position = -1;
    }
  }
}

// Unfinished records of a forgotten partition are still in the graph: they
// keep counting in in_flight_ until their MarkDone (with sequence) or Release
// finds them stale. (Before, Forget subtracted them at once, and the source
// could hand over max_in_flight more records while they were still there.)
void OffsetTracker::Forget(const std::vector<TopicPartition>& partitions,
                           uint64_t fence_sequence) {
  std::lock_guard<std::mutex> lock(mutex_);
  FenceLocked(partitions, fence_sequence);
  for (const TopicPartition& tp : partitions) {
    auto it = partitions_.find(
        std::pair<std::string_view, int32_t>(tp.topic, tp.partition));
    if (it != partitions_.end()) partitions_.erase(it);
  }
}

void OffsetTracker::ForgetAll(uint64_t fence_sequence) {
  std::lock_guard<std::mutex> lock(mutex_);
  fence_generation_.fetch_add(1, std::memory_order_release);
  for (const auto& [key, p] : partitions_) {
    uint64_t& fence = fences_[key];
    fence = std::max(fence, fence_sequence);
  }
  partitions_.clear();
}

}  // namespace nlpflow
