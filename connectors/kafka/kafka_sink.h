// KafkaSink: an idempotent producer for results and dead letters, with one
// delivery report per produced message.
//
// Threads:
//   - Produce may be called from any thread, concurrently (TBB workers).
//   - A delivery thread, owned by the sink, serves librdkafka's event queue.
//     It is the only thread that calls `on_delivery`, one report at a time.
//   - Flush and Close may be called from any thread except the delivery
//     thread (they wait for it; from there they return FailedPrecondition).
//   - librdkafka's internal threads only log (through spdlog).
//
// Delivery contract: every Produce that returned OK gets exactly one
// DeliveryReport: OK once the broker acknowledged the message with acks=all;
// non-OK when it failed (message.timeout.ms passed: DeadlineExceeded; too
// large: InvalidArgument; purged by Close: Cancelled; ...). The owner decides
// what a failure means; the input's offset must then not be marked done.
// A Produce that returned non-OK gets no report.
//
// Transactions (exactly-once; options.transactional_id set): Create runs
// init_transactions (fencing an earlier producer with the same id and
// aborting what it left open) and begins the first transaction. Messages
// belong to the open transaction; EndTransaction commits it together with the
// consumer offsets it is given (or aborts it) and begins the next one.
// Produce must be called while holding HoldProduce(), so that a commit never
// runs in the middle of a Produce; EndTransaction and Exclusive wait until no
// hold is left. Delivery reports still come, but only the commit says whether
// a message counts: after an abort the purged messages get failed reports.
//
// Produce does not wait for the broker. It only waits while librdkafka's local
// queue is full (queue.buffering.max.messages / .kbytes): it retries every
// millisecond, while the delivery thread frees room, for up to
// queue_full_timeout_ms and then returns Unavailable. With the source's
// max_in_flight bound well below the queue size (100,000 messages by default)
// this does not happen in the serve graph.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/record.h"
#include "common/status.h"
#include "connectors/kafka/kafka_options.h"
#include "connectors/kafka/offset_tracker.h"

// librdkafka's consumer group metadata, kept opaque here.
struct rd_kafka_consumer_group_metadata_s;

namespace nlpflow {

// Carried untouched from Produce to the message's delivery report.
struct DeliveryTag {
  Coordinates source;     // the input record the message answers for
  uint64_t sequence = 0;  // free for the caller, e.g. Record::sequence
};

struct DeliveryReport {
  DeliveryTag tag;
  // Where the message was written. partition and offset are -1 when unknown
  // (a failure before the message was assigned or acknowledged).
  Coordinates destination;
  Status status;
  // From Produce to the broker's acknowledgement (librdkafka's measure);
  // -1 if unknown.
  int64_t latency_us = -1;
};

struct KafkaSinkStats {
  uint64_t produced = 0;    // Produce calls that returned OK
  uint64_t delivered = 0;   // OK reports
  uint64_t failed = 0;      // non-OK reports
  uint64_t producer_rebuilds = 0;  // exactly-once recoveries in place
};

class KafkaSink {
 public:
  using DeliveryCallback = std::function<void(const DeliveryReport&)>;

  // Validates `options`, creates the producer and checks, for at most
  // options.connect_timeout_ms, that the cluster answers (Unavailable naming
  // the bootstrap servers otherwise). Starts the delivery thread.
  static Result<std::unique_ptr<KafkaSink>> Create(const KafkaSinkOptions& options,
                                                   DeliveryCallback on_delivery);

  // Close(0).
  ~KafkaSink();

  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;

  // Queues one message; copies everything it is given. `key` nullopt writes a
  // null key, "" an empty one. The partition comes from the key (murmur2,
  // like the Java client) or, without a key, is chosen at random.
  // Errors: FailedPrecondition after Close; the fatal error once the
  // producer failed fatally; Unavailable if the local queue stayed full;
  // InvalidArgument for a message librdkafka rejects (e.g. too large).
  Status Produce(std::string_view topic, std::optional<std::string_view> key,
                 std::string_view value, const std::vector<Header>& headers,
                 const DeliveryTag& tag);

  // Waits until every message produced so far got its report (sending queued
  // messages at once, whatever linger.ms says), or timeout_ms passed:
  // DeadlineExceeded naming how many are outstanding.
  Status Flush(int timeout_ms);

  // Flush(timeout_ms); then purges what is still outstanding (reports with
  // Cancelled status), stops the delivery thread and destroys the producer.
  // Idempotent; returns the first call's result (the flush's, or the fatal
  // error).
  Status Close(int timeout_ms);

  // True with options.transactional_id.
  bool transactional() const;

  // A shared hold: while any exists, no transaction ends and no Exclusive
  // function runs. Never take two on one thread (a waiting EndTransaction
  // would deadlock them).
  std::shared_lock<std::shared_mutex> HoldProduce();

  // Runs `fn` while nobody holds HoldProduce() (e.g. to fence partitions so
  // that no result of theirs is produced after it returns).
  void Exclusive(const std::function<void()>& fn);

  // Transactional only. With no hold left: `positions()` gives the consumer
  // offsets to commit with the open transaction (sent with `group_metadata`);
  // then the transaction commits, or, if `abort` is set or the commit fails
  // in a way that requires it, aborts. `after(committed)` runs next, still
  // with no hold, and then the next transaction begins. If nothing was
  // produced and positions() is empty, nothing is sent (after(true) runs).
  // Returns OK when committed; Cancelled ("transaction aborted: ...") when
  // aborted, after which the caller must rewind its consumer to the committed
  // offsets. When the producer cannot go on without having been fenced (an
  // abort or begin_transaction failed, a fatal error such as an epoch or
  // sequence problem after the cluster was unreachable) it is rebuilt in
  // place with the same transactional id (init_transactions retried until it
  // works) and the transaction counts as aborted (Cancelled, after(false)).
  // Anything else is fatal: the producer was fenced by another instance;
  // status() then returns it too. Retriable errors are retried for up to
  // transaction_timeout_ms.
  Status EndTransaction(
      const std::function<std::vector<TopicPartitionOffset>()>& positions,
      const rd_kafka_consumer_group_metadata_s* group_metadata, bool abort,
      const std::function<void(bool committed)>& after);

  // OK, or the producer's fatal error (e.g. fenced). After a fatal error every
  // outstanding message gets a failed report and Produce fails.
  Status status() const;

  KafkaSinkStats stats() const;

 private:
  class Impl;
  explicit KafkaSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nlpflow
