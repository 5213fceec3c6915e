// batch: groups tokenized records into batches for the infer stage.
//
// Policy. A batch is sent only when an infer slot is free (max_in_flight_batches
// batches at most are being inferred), so while the model is busy records
// gather and the next batch is larger. When a slot is free, the batcher sends
//   - max_batch_size records if that many are waiting;
//   - otherwise everything waiting, once the oldest record has waited
//     max_queue_delay_us, or at once if no further record is on its way
//     (nothing upstream in decode/tokenize): a lone record on an idle stream
//     never waits for company that is not coming.
// TBB has no timers, so the batcher runs a thread of its own.
//
// Threads: Add, ExpectUpstream, DropUpstream and BatchDone may be called from
// any thread. The emit callback runs on the batcher's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "common/record.h"

namespace nlpflow {

struct BatcherOptions {
  // Most records in one batch.
  int max_batch_size = 32;
  // Longest a record waits for more records to join its batch while an
  // infer slot is free and more records are on their way.
  int64_t max_queue_delay_us = 5000;
  // Batches that may be in the infer stage at once (= model instances).
  int max_in_flight_batches = 1;
};

class Batcher {
 public:
  // Receives each closed batch; takes ownership of it.
  using EmitFn = std::function<void(BatchPtr)>;

  Batcher(BatcherOptions options, EmitFn emit);
  ~Batcher();  // Stop()s.

  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  void Start();

  // A record entered the stages before the batcher and is expected here.
  void ExpectUpstream();
  // An expected record will not arrive (it became a dead letter upstream).
  void DropUpstream();
  // Takes ownership of a tokenized record that was announced by ExpectUpstream.
  void Add(RecordPtr record);
  // The infer stage finished a batch: a slot is free again.
  void BatchDone();

  // Sends everything still waiting (ignoring free slots), then stops the
  // thread. Idempotent. REQUIRES: Start() was called before the first Add;
  // nothing is added after Stop.
  void Stop();

  int64_t batches_emitted() const { return batches_emitted_.load(); }

 private:
  void Run();
  // REQUIRES: mu_ held. Takes up to max_batch_size records off the queue.
  BatchPtr TakeBatchLocked();

  const BatcherOptions options_;
  const EmitFn emit_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RecordPtr> queue_;       // GUARDED_BY(mu_)
  int64_t upstream_ = 0;              // GUARDED_BY(mu_)
  int in_flight_batches_ = 0;         // GUARDED_BY(mu_)
  bool stopping_ = false;             // GUARDED_BY(mu_)
  bool started_ = false;              // GUARDED_BY(mu_)
  std::thread thread_;
  std::atomic<int64_t> batches_emitted_{0};
};

}  // namespace nlpflow
