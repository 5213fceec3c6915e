#include "nodes/batch/batcher.h"

#include <algorithm>
#include <chrono>

namespace nlpflow {

Batcher::Batcher(BatcherOptions options, EmitFn emit)
    : options_(options), emit_(std::move(emit)) {}

Batcher::~Batcher() { Stop(); }

void Batcher::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
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
  }
  // Fewer records on the way may mean the waiting ones should go now.
  cv_.notify_one();
}

void Batcher::Add(RecordPtr record) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --upstream_;
    queue_.push_back(std::move(record));
  }
  cv_.notify_one();
}

void Batcher::BatchDone() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_batches_;
  }
  cv_.notify_one();
}

BatchPtr Batcher::TakeBatchLocked() {
  auto batch = std::make_shared<Batch>();
  const size_t n = std::min<size_t>(queue_.size(), options_.max_batch_size);
  batch->records.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    batch->records.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  batch->closed_us = NowMicros();
  for (auto& r : batch->records) r->times.batched_us = batch->closed_us;
  ++in_flight_batches_;
  return batch;
}

void Batcher::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (stopping_) break;
    if (queue_.empty() || in_flight_batches_ >= options_.max_in_flight_batches) {
      cv_.wait(lock);
      continue;
    }
    const bool full = queue_.size() >= static_cast<size_t>(options_.max_batch_size);
    const bool nothing_coming = upstream_ <= 0;
    const int64_t deadline =
        queue_.front()->times.tokenized_us + options_.max_queue_delay_us;
    const int64_t now = NowMicros();
    if (full || nothing_coming || now >= deadline) {
      BatchPtr batch = TakeBatchLocked();
      lock.unlock();
      batches_emitted_.fetch_add(1);
      emit_(std::move(batch));
      lock.lock();
      continue;
    }
    cv_.wait_for(lock, std::chrono::microseconds(deadline - now));
  }
  // Stopping: everything still waiting goes out, slots or not.
  while (!queue_.empty()) {
    BatchPtr batch = TakeBatchLocked();
    lock.unlock();
    batches_emitted_.fetch_add(1);
    emit_(std::move(batch));
    lock.lock();
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
}

}  // namespace nlpflow
