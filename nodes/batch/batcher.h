// batch: groups tokenized records into batches for the infer stage.
//
// A batch is sent only when an infer slot is free (max_in_flight_batches
// batches at most are being inferred), so while the model is busy records
// gather and the next batch is larger. When a slot is free, the next batch is
// picked (see "Which records" below) and sent if
//   - it is full: max_batch_size records, or no waiting record fits under
//     max_batch_tokens or max_batch_real_tokens any more;
//   - or the oldest waiting record has waited max_queue_delay_us;
//   - or (dynamic policy only) no further record is on its way (nothing
//     upstream in decode/tokenize): a lone record on an idle stream never
//     waits for company that is not coming.
// Otherwise the batcher waits for the next record, a free slot, or the oldest
// record's delay to run out, whichever is first.
//
// Which records (policy dynamic): the oldest waiting record of the highest
// priority present (the anchor) always goes in the next batch, so no record
// starves behind others of its priority. The batch is filled with the waiting
// records whose token counts are closest to the anchor's (ties: the older
// first), high-priority ones before normal ones, so that a batch, padded to
// its longest record, wastes little on padding. A record that would push the
// batch over max_batch_tokens or max_batch_real_tokens is left for a later
// batch. The batch's records
// are sorted by length, shortest first (stable), so that rows of equal length
// sit side by side: the encoder runs attention once per run of equal lengths.
// Policy fixed (the naive baseline): arrival order, no length grouping, and
// no idle shortcut: a batch waits for max_batch_size records or for the
// oldest one's max_queue_delay_us, even when nothing else is coming.
// Both policies honour free slots, the two token budgets (fixed: stops at the
// first record that does not fit), priorities and deadlines.
//
// Priority: a record whose `priority_header` header says "high" goes before
// every normal record. Normal records can wait as long as high-priority ones
// fill every batch; their wait is bounded by deadline_ms (they expire) and by
// the pipeline's bound on records in flight (the source pauses and the
// high-priority stream dries up).
//
// Deadlines: with deadline_ms > 0 a record's deadline is its Kafka timestamp
// plus deadline_ms (records without a timestamp have none). Whenever an infer
// slot is free and the batcher decides, it first takes every waiting record
// already past its deadline (UnixMillis() > timestamp + deadline_ms) out of
// the queue and, with on_expired dead_letter, hands it to the expired
// callback, failed at Stage::kBatch with reason "expired". With on_expired
// process, such records are batched like any other.
//
// Threads: Add, ExpectUpstream, DropUpstream and BatchDone may be called from
// any thread. Start() runs a thread of its own (TBB has no timers) that calls
// Poll(); the emit and expired callbacks run on that thread, or on the thread
// of Stop() for what Stop() flushes. Tests do not Start(): they call Poll()
// themselves, with a fake clock, and the callbacks run on the test's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/record.h"
#include "nodes/batch/batcher_clock.h"

namespace nlpflow {

enum class BatchPolicy { kDynamic, kFixed };
enum class ExpiredAction { kDeadLetter, kProcess };

// The reason of the dead letter of an expired record.
inline constexpr const char* kExpiredReason = "expired";

struct BatcherOptions {
  BatchPolicy policy = BatchPolicy::kDynamic;
  // Most records in one batch.
  int max_batch_size = 32;
  // Most tokens in one batch, counted as the batch's records times its
  // longest record (what the model computes on, padding included, as Hugging
  // Face text-embeddings-inference counts it); 0 = no limit. A record longer
  // than this on its own goes in a batch alone.
  int64_t max_batch_tokens = 0;
  // Most real tokens in one batch: the sum of its records' token counts,
  // which is what a packed encoder (no padding) computes on, so a bound on
  // the batch's compute time; 0 = no limit. A record longer than this on its
  // own goes in a batch alone. Under a latency budget this is the budget that
  // matters: a batch never takes longer than about this many tokens' worth
  // of model time, so a record arriving behind it waits at most that long.
  int64_t max_batch_real_tokens = 0;
  // Longest a record waits for more records to join its batch while an
  // infer slot is free.
  int64_t max_queue_delay_us = 5000;
  // Batches that may be in the infer stage at once (= model instances).
  int max_in_flight_batches = 1;
  // Budget after the record's Kafka timestamp; 0 = no deadline.
  int64_t deadline_ms = 0;
  ExpiredAction on_expired = ExpiredAction::kDeadLetter;
  // Header whose value "high" makes a record high-priority; empty = every
  // record is normal.
  std::string priority_header = "nlpflow-priority";
  // Not owned; null = SystemBatcherClock::Get().
  const BatcherClock* clock = nullptr;
};

class Batcher {
 public:
  // Receives each closed batch; takes ownership of it.
  using EmitFn = std::function<void(BatchPtr)>;
  // Receives each expired record (on_expired dead_letter), already failed at
  // Stage::kBatch with reason kExpiredReason; takes ownership of it.
  using ExpiredFn = std::function<void(RecordPtr)>;

  // `expired` may be empty only if no record can expire (deadline_ms 0 or
  // on_expired process).
  Batcher(BatcherOptions options, EmitFn emit, ExpiredFn expired = nullptr);
  ~Batcher();  // Stop()s.

  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Starts the batcher's thread, which calls Poll() whenever something
  // changed or a delay ran out.
  void Start();

  // A record entered the stages before the batcher and is expected here.
  void ExpectUpstream();
  // An expected record will not arrive (it became a dead letter upstream).
  void DropUpstream();
  // Takes ownership of a tokenized record that was announced by
  // ExpectUpstream. Its queue delay starts now (the clock's SteadyMicros).
  void Add(RecordPtr record);
  // The infer stage finished a batch: a slot is free again.
  void BatchDone();

  struct PollResult {
    size_t batch_size = 0;  // records in the batch sent; 0: none sent
    size_t expired = 0;     // records handed to the expired callback
    // Steady time (µs) from which the decision can change without any call
    // to Add, DropUpstream or BatchDone (the oldest record's delay runs out);
    // kNever if only such a call can change it. Meaningful only when nothing
    // was sent or expired (else: poll again at once).
    int64_t retry_at_us = kNever;
  };
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

  // One decision at the clock's current time: hands expired records to the
  // expired callback and at most one batch to the emit callback, on the
  // caller's thread, without holding the batcher's lock.
  // REQUIRES: Start() was not called (its thread is the only caller then).
  PollResult Poll();

  // Sends everything still waiting (ignoring free slots and delays; expired
  // records still go to the expired callback), then stops the thread.
  // Idempotent. REQUIRES: nothing is added after Stop.
  void Stop();

  int64_t batches_emitted() const { return batches_emitted_.load(); }
  // Records handed to the expired callback.
  int64_t records_expired() const { return records_expired_.load(); }
  // Records past their deadline that were batched anyway (on_expired process).
  int64_t expired_processed() const { return expired_processed_.load(); }
  // Records waiting (both priorities).
  size_t waiting() const;

 private:
  struct Waiting {
    RecordPtr record;
    int64_t enqueued_us = 0;
    int64_t expires_unix_ms = kNever;  // kNever: no deadline
    int64_t tokens = 0;
    uint64_t arrival = 0;  // order of Add calls, for ties
  };
  // Where a picked record is: queue (kHigh, kNormal) and index in it.
  struct Slot {
    int queue;
    size_t index;
  };
  struct Pick {
    std::vector<Slot> members;  // in batch order; members[0] is the anchor
    bool full = false;
  };
  static constexpr int kHigh = 0;
  static constexpr int kNormal = 1;

  void Run();
  // REQUIRES: mu_ held. Moves the expired records (per options) into *out.
  void TakeExpiredLocked(int64_t now_unix_ms, std::vector<RecordPtr>* out);
  // REQUIRES: mu_ held, a record waiting. The records of the next batch.
  Pick PickLocked() const;
  // REQUIRES: mu_ held. Removes the picked records from the queues.
  BatchPtr TakeLocked(const Pick& pick, int64_t now_us);
  // Hands out what a decision produced; runs the callbacks.
  void Deliver(std::vector<RecordPtr> expired, BatchPtr batch);

  const BatcherOptions options_;
  const BatcherClock* const clock_;
  const EmitFn emit_;
  const ExpiredFn expired_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Waiting> queues_[2];  // GUARDED_BY(mu_); each in arrival order
  uint64_t next_arrival_ = 0;      // GUARDED_BY(mu_)
  int64_t upstream_ = 0;           // GUARDED_BY(mu_)
  int in_flight_batches_ = 0;      // GUARDED_BY(mu_)
  uint64_t events_ = 0;            // GUARDED_BY(mu_); counts state changes
  bool stopping_ = false;          // GUARDED_BY(mu_)
  bool started_ = false;           // GUARDED_BY(mu_)
  std::thread thread_;
  std::atomic<int64_t> batches_emitted_{0};
  std::atomic<int64_t> records_expired_{0};
  std::atomic<int64_t> expired_processed_{0};
};

}  // namespace nlpflow
