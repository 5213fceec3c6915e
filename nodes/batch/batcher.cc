#include "nodes/batch/batcher.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdlib>

namespace nlpflow {
namespace {

bool IsHighPriority(const Record& r, const std::string& header) {
  if (header.empty()) return false;
  for (const auto& h : r.headers) {
    // The first such header decides.
    if (h.key == header) return h.value == "high";
  }
  return false;
}

}  // namespace

Batcher::Batcher(BatcherOptions options, EmitFn emit, ExpiredFn expired)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : SystemBatcherClock::Get()),
      emit_(std::move(emit)),
      expired_(std::move(expired)) {
  assert(expired_ || options_.deadline_ms == 0 ||
         options_.on_expired == ExpiredAction::kProcess);
}

Batcher::~Batcher() { Stop(); }

void Batcher::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void Batcher::ExpectUpstream() {
  std::lock_guard<std::mutex> lock(mu_);
  ++upstream_;
}

void Batcher::DropUpstream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --upstream_;
    ++events_;
  }
  // Fewer records on the way may mean the waiting ones should go now.
  cv_.notify_one();
}

void Batcher::Add(RecordPtr record) {
  Waiting w;
  w.enqueued_us = clock_->SteadyMicros();
  if (options_.deadline_ms > 0 && record->timestamp_ms >= 0) {
    w.expires_unix_ms = record->timestamp_ms + options_.deadline_ms;
  }
  w.tokens = static_cast<int64_t>(record->encoding.ids.size());
  const int queue = IsHighPriority(*record, options_.priority_header) ? kHigh : kNormal;
  w.record = std::move(record);
  {
    std::lock_guard<std::mutex> lock(mu_);
    --upstream_;
    w.arrival = next_arrival_++;
    queues_[queue].push_back(std::move(w));
    ++events_;
  }
  cv_.notify_one();
}

void Batcher::BatchDone() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_batches_;
    ++events_;
  }
  cv_.notify_one();
}

size_t Batcher::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queues_[kHigh].size() + queues_[kNormal].size();
}

void Batcher::TakeExpiredLocked(int64_t now_unix_ms, std::vector<RecordPtr>* out) {
  if (options_.deadline_ms <= 0 || options_.on_expired != ExpiredAction::kDeadLetter) return;
  for (auto& queue : queues_) {
    auto keep = std::stable_partition(queue.begin(), queue.end(), [&](const Waiting& w) {
      return now_unix_ms <= w.expires_unix_ms;
    });
    for (auto it = keep; it != queue.end(); ++it) {
      it->record->Fail(Stage::kBatch, kExpiredReason);
      out->push_back(std::move(it->record));
    }
    queue.erase(keep, queue.end());
  }
}

Batcher::Pick Batcher::PickLocked() const {
  const int64_t max_size = options_.max_batch_size;
  const int64_t max_tokens = options_.max_batch_tokens;
  const int64_t max_real = options_.max_batch_real_tokens;
  Pick pick;
  const int first = queues_[kHigh].empty() ? kNormal : kHigh;
  const Waiting& anchor = queues_[first].front();
  pick.members.push_back({first, 0});
  int64_t longest = anchor.tokens;
  int64_t real = anchor.tokens;

  // Candidates after the anchor, in the order they are offered a place.
  std::vector<Slot> candidates;
  for (int q = first; q <= kNormal; ++q) {
    const size_t begin = candidates.size();
    for (size_t i = (q == first ? 1 : 0); i < queues_[q].size(); ++i) {
      candidates.push_back({q, i});
    }
    if (options_.policy == BatchPolicy::kDynamic) {
      // Closest in length to the anchor first; queue order breaks ties, so
      // that among equals the oldest goes first.
      std::stable_sort(candidates.begin() + begin, candidates.end(),
                       [&](const Slot& a, const Slot& b) {
                         const int64_t da = std::abs(queues_[a.queue][a.index].tokens - anchor.tokens);
                         const int64_t db = std::abs(queues_[b.queue][b.index].tokens - anchor.tokens);
                         return da < db;
                       });
    }
  }

  for (const Slot& c : candidates) {
    if (static_cast<int64_t>(pick.members.size()) >= max_size) break;
    const int64_t tokens = queues_[c.queue][c.index].tokens;
    const int64_t new_longest = std::max(longest, tokens);
    if ((max_tokens > 0 &&
         static_cast<int64_t>(pick.members.size() + 1) * new_longest > max_tokens) ||
        (max_real > 0 && real + tokens > max_real)) {
      // It does not fit: the batch is full as far as this record goes.
      pick.full = true;
      if (options_.policy == BatchPolicy::kFixed) break;  // arrival order: no skipping
      continue;
    }
    pick.members.push_back(c);
    longest = new_longest;
    real += tokens;
  }
  const int64_t n = static_cast<int64_t>(pick.members.size());
  if (n >= max_size) pick.full = true;
  // Not even the shortest record could join.
  if (max_tokens > 0 && (n + 1) * longest > max_tokens) pick.full = true;
  if (max_real > 0 && real + 1 > max_real) pick.full = true;
  return pick;
}

BatchPtr Batcher::TakeLocked(const Pick& pick, int64_t now_us) {
  auto batch = std::make_shared<Batch>();
  batch->records.reserve(pick.members.size());
  batch->closed_us = now_us;
  const bool count_expired =
      options_.deadline_ms > 0 && options_.on_expired == ExpiredAction::kProcess;
  const int64_t now_unix_ms = count_expired ? clock_->UnixMillis() : 0;
  for (const Slot& s : pick.members) {
    Waiting& w = queues_[s.queue][s.index];
    if (count_expired && now_unix_ms > w.expires_unix_ms) expired_processed_.fetch_add(1);
    w.record->times.batched_us = now_us;
    batch->records.push_back(std::move(w.record));
  }
  if (options_.policy == BatchPolicy::kDynamic) {
    // Shortest first: rows of equal length side by side, which the encoder
    // attends to in one go (nodes/infer/bert_encoder.cc, SelfAttention).
    std::stable_sort(batch->records.begin(), batch->records.end(),
                     [](const RecordPtr& a, const RecordPtr& b) {
                       return a->encoding.ids.size() < b->encoding.ids.size();
                     });
  }
  // The moved-from entries have null records: drop them, keeping the order.
  for (auto& queue : queues_) {
    queue.erase(std::remove_if(queue.begin(), queue.end(),
                               [](const Waiting& w) { return w.record == nullptr; }),
                queue.end());
  }
  ++in_flight_batches_;
  return batch;
}

void Batcher::Deliver(std::vector<RecordPtr> expired, BatchPtr batch) {
  records_expired_.fetch_add(static_cast<int64_t>(expired.size()));
  for (auto& r : expired) expired_(std::move(r));
  if (batch) {
    batches_emitted_.fetch_add(1);
    emit_(std::move(batch));
  }
}

Batcher::PollResult Batcher::Poll() {
  PollResult result;
  std::vector<RecordPtr> expired;
  BatchPtr batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_flight_batches_ >= options_.max_in_flight_batches) return result;
    TakeExpiredLocked(clock_->UnixMillis(), &expired);
    if (!queues_[kHigh].empty() || !queues_[kNormal].empty()) {
      const int64_t now = clock_->SteadyMicros();
      int64_t oldest = kNever;
      for (const auto& queue : queues_) {
        if (!queue.empty()) oldest = std::min(oldest, queue.front().enqueued_us);
      }
      const int64_t due = oldest + options_.max_queue_delay_us;
      const Pick pick = PickLocked();
      const bool nothing_coming =
          options_.policy == BatchPolicy::kDynamic && upstream_ <= 0;
      if (pick.full || nothing_coming || now >= due) {
        batch = TakeLocked(pick, now);
        result.batch_size = batch->records.size();
      } else {
        result.retry_at_us = due;
      }
    }
  }
  result.expired = expired.size();
  Deliver(std::move(expired), std::move(batch));
  return result;
}

void Batcher::Run() {
  while (true) {
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      seen = events_;
    }
    const PollResult r = Poll();
    if (r.batch_size > 0 || r.expired > 0) continue;
    std::unique_lock<std::mutex> lock(mu_);
    auto changed = [&] { return stopping_ || events_ != seen; };
    if (r.retry_at_us == kNever) {
      cv_.wait(lock, changed);
    } else {
      const int64_t wait_us = r.retry_at_us - clock_->SteadyMicros();
      if (wait_us > 0) cv_.wait_for(lock, std::chrono::microseconds(wait_us), changed);
    }
  }
}

void Batcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  // Everything still waiting goes out, slots or not, on this thread (the
  // batcher's own has ended).
  while (true) {
    std::vector<RecordPtr> expired;
    BatchPtr batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      TakeExpiredLocked(clock_->UnixMillis(), &expired);
      if (!queues_[kHigh].empty() || !queues_[kNormal].empty()) {
        batch = TakeLocked(PickLocked(), clock_->SteadyMicros());
      }
    }
    if (!batch && expired.empty()) break;
    Deliver(std::move(expired), std::move(batch));
  }
}

}  // namespace nlpflow
