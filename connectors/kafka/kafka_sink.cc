#include "connectors/kafka/kafka_sink.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>

#include "connectors/kafka/kafka_status.h"
#include "connectors/kafka/rdkafka_util.h"

namespace nlpflow {

using kafka_internal::BuildConf;
using kafka_internal::CheckCluster;
using kafka_internal::ErrorPtr;
using kafka_internal::PartitionListPtr;
using kafka_internal::HandlePtr;
using kafka_internal::NewHandle;
using kafka_internal::QueuePtr;

namespace {

// How long Close waits for the reports of purged messages. They are made
// locally, so this is only a guard against a stuck delivery callback.
constexpr int kPurgeReportTimeoutMs = 5000;

// What to do about an error of a transactional call (FACTS.md: librdkafka's
// error classes).
// kFenced: fatal because another producer took over the transactional id.
enum class TxnErrorKind { kRetriable, kAbortable, kFatal, kFenced };

TxnErrorKind Classify(const rd_kafka_error_t* e) {
  if (rd_kafka_error_is_fatal(e)) return TxnErrorKind::kFatal;
  if (rd_kafka_error_txn_requires_abort(e)) return TxnErrorKind::kAbortable;
  if (rd_kafka_error_is_retriable(e)) return TxnErrorKind::kRetriable;
  // Anything else (e.g. a state error): abort and start over; if even the
  // abort fails the producer is given up.
  return TxnErrorKind::kAbortable;
}

// Errors that mean another producer with the same transactional id took
// over (fenced this one): the only ones that end an exactly-once instance.
bool IsFencing(rd_kafka_resp_err_t code) {
  return code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
         code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

int LeftMs(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
  return static_cast<int>(std::max<int64_t>(left, 1));
}

}  // namespace

class KafkaSink::Impl {
 public:
  Impl(const KafkaSinkOptions& options, DeliveryCallback on_delivery)
      : options_(options), on_delivery_(std::move(on_delivery)) {}

  ~Impl() { Close(0); }

  Status Init();
  Status Produce(std::string_view topic, std::optional<std::string_view> key,
                 std::string_view value, const std::vector<Header>& headers,
                 const DeliveryTag& tag);
  Status Flush(int timeout_ms);
  Status Close(int timeout_ms);

  Status status() const {
    std::lock_guard<std::mutex> lock(status_mutex_);
    return fatal_;
  }

  bool transactional() const { return !options_.transactional_id.empty(); }
  std::shared_lock<std::shared_mutex> HoldProduce() {
    return std::shared_lock<std::shared_mutex>(txn_mutex_);
  }
  void Exclusive(const std::function<void()>& fn) {
    std::unique_lock<std::shared_mutex> lock(txn_mutex_);
    fn();
  }
  Status EndTransaction(
      const std::function<std::vector<TopicPartitionOffset>()>& positions,
      const rd_kafka_consumer_group_metadata_s* group_metadata, bool abort,
      const std::function<void(bool committed)>& after);

  KafkaSinkStats stats() const {
    return KafkaSinkStats{produced_.load(), delivered_.load(), failed_.load(), rebuilds_.load()};
  }

 private:
  void DeliveryLoop();
  void Report(const rd_kafka_message_t* message);
  void OnError(rd_kafka_resp_err_t err, const char* reason);
  void Fail(Status status);
  Status FlushHandle(int timeout_ms);
  // Runs `call` (a transactional librdkafka call taking a timeout) until it
  // succeeds, fails for good, or `deadline` passes.
  Status TxnCall(const char* what,
                 const std::function<rd_kafka_error_t*(int)>& call,
                 std::chrono::steady_clock::time_point deadline,
                 TxnErrorKind* kind);
  Status FatalTxnError(const Status& cause);
  // The producer and its queue (no cluster check, no transactions yet).
  Status CreateProducer();
  // Starts the delivery thread for the current producer.
  void StartDelivery();
  // Stops it; then reports what is left on the queue. Idempotent.
  void StopDelivery();
  // Exactly-once recovery in place: the producer cannot go on (an abort or
  // begin failed, a fatal error that is not fencing) but no other instance
  // took over. Destroys it (what it had queued gets failed reports; what its
  // open transaction wrote is aborted by the broker once the new producer
  // fences it) and makes a new one with the same transactional id, retrying
  // init_transactions until it succeeds, the producer is fenced (fatal) or
  // the sink closes; then begins a transaction.
  // REQUIRES: txn_mutex_ held exclusively, handle_mutex_ not held.
  Status RebuildProducer(const Status& cause);
  // The producer's fatal error as a status; `*fenced` whether it is fencing.
  Status FatalErrorOf(rd_kafka_t* rk, const char* what, bool* fenced);
  bool OnDeliveryThread() const {
    return std::this_thread::get_id() == delivery_thread_id_.load();
  }

  const KafkaSinkOptions options_;
  const DeliveryCallback on_delivery_;

  // Produce and Flush hold it shared while they use the producer; Close takes
  // it exclusively to wait them out and before destroying the producer.
  std::shared_mutex handle_mutex_;
  // Held shared by producers (HoldProduce), exclusively by EndTransaction
  // and Exclusive. Taken before handle_mutex_.
  std::shared_mutex txn_mutex_;
  // Messages produced since the open transaction began.
  std::atomic<uint64_t> produced_in_txn_{0};
  HandlePtr producer_;  // GUARDED_BY(handle_mutex_) for destruction
  QueuePtr queue_;      // main queue: delivery reports and errors as events
  std::atomic<bool> closing_{false};

  std::mutex close_mutex_;
  bool closed_ = false;  // GUARDED_BY(close_mutex_)
  Status close_status_;  // GUARDED_BY(close_mutex_)

  std::thread delivery_thread_;
  std::atomic<std::thread::id> delivery_thread_id_{};
  std::atomic<bool> stop_delivery_{false};

  mutable std::mutex status_mutex_;
  Status fatal_;  // GUARDED_BY(status_mutex_)
  std::atomic<bool> has_failed_{false};

  std::atomic<uint64_t> produced_{0};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> failed_{0};

  // Exactly-once: the producer failed fatally without being fenced (set by
  // the delivery thread or Produce); the next EndTransaction rebuilds it.
  std::atomic<bool> rebuild_needed_{false};
  // Exactly-once: a Produce was refused because the open transaction is in
  // an abortable state; the next EndTransaction aborts instead of committing.
  std::atomic<bool> abort_needed_{false};
  std::atomic<uint64_t> rebuilds_{0};
};

Status KafkaSink::Impl::CreateProducer() {
  Result<kafka_internal::ConfPtr> conf = BuildConf(ProducerProperties(options_));
  if (!conf.ok()) return conf.status().WithContext("Kafka producer config");
  // Delivery reports and errors come as events on the main queue, served by
  // our delivery thread. In this mode rd_kafka_flush only waits (it does not
  // serve the queue itself), so Flush can run on any thread and the callback
  // still runs on the delivery thread only.
  rd_kafka_conf_set_events(conf->get(),
                           RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR);
  Result<HandlePtr> handle = NewHandle(RD_KAFKA_PRODUCER, std::move(*conf));
  if (!handle.ok()) return handle.status().WithContext("Kafka producer");
  producer_ = std::move(handle).value();
  queue_.reset(rd_kafka_queue_get_main(producer_.get()));
  return Status::Ok();
}

void KafkaSink::Impl::StartDelivery() {
  stop_delivery_.store(false);
  delivery_thread_ = std::thread(&Impl::DeliveryLoop, this);
}

void KafkaSink::Impl::StopDelivery() {
  stop_delivery_.store(true);
  if (queue_ != nullptr) rd_kafka_queue_yield(queue_.get());
  if (delivery_thread_.joinable()) delivery_thread_.join();
}

Status KafkaSink::Impl::Init() {
  NLPFLOW_RETURN_IF_ERROR(CreateProducer());
  if (options_.connect_timeout_ms > 0) {
    NLPFLOW_RETURN_IF_ERROR(CheckCluster(producer_.get(),
                                         options_.bootstrap_servers,
                                         options_.connect_timeout_ms));
  }
  StartDelivery();
  if (transactional()) {
    const int timeout_ms = options_.transaction_timeout_ms;
    Status init = KafkaStatus(
        ErrorPtr(rd_kafka_init_transactions(producer_.get(), timeout_ms)).get(),
        "Kafka producer: init_transactions for transactional.id '" +
            options_.transactional_id + "'");
    if (!init.ok()) return init;
    NLPFLOW_RETURN_IF_ERROR(KafkaStatus(
        ErrorPtr(rd_kafka_begin_transaction(producer_.get())).get(),
        "Kafka producer: begin_transaction"));
    spdlog::info("Kafka sink: transactional producer '{}' ready",
                 options_.transactional_id);
  }
  return Status::Ok();
}

Status KafkaSink::Impl::TxnCall(
    const char* what, const std::function<rd_kafka_error_t*(int)>& call,
    std::chrono::steady_clock::time_point deadline, TxnErrorKind* kind) {
  while (true) {
    ErrorPtr error(call(LeftMs(deadline)));
    if (error == nullptr) return Status::Ok();
    *kind = Classify(error.get());
    if (*kind == TxnErrorKind::kFatal && IsFencing(rd_kafka_error_code(error.get()))) {
      *kind = TxnErrorKind::kFenced;
    }
    Status st = KafkaStatus(error.get(), std::string("Kafka sink: ") + what);
    if (*kind == TxnErrorKind::kRetriable &&
        std::chrono::steady_clock::now() < deadline) {
      spdlog::warn("{}; retrying", st.message());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (*kind == TxnErrorKind::kRetriable) *kind = TxnErrorKind::kAbortable;
    return st;
  }
}

Status KafkaSink::Impl::FatalTxnError(const Status& cause) {
  Status fatal = Status::Internal(
      "exactly-once: the transactional producer '" + options_.transactional_id +
      "' was fenced (" + cause.message() +
      "): another instance runs with the same transactional id. Nothing after the last "
      "committed transaction was published; a restart resumes from there");
  Fail(fatal);
  return fatal;
}

Status KafkaSink::Impl::FatalErrorOf(rd_kafka_t* rk, const char* what, bool* fenced) {
  char detail[512] = "";
  const rd_kafka_resp_err_t cause = rd_kafka_fatal_error(rk, detail, sizeof(detail));
  *fenced = IsFencing(cause);
  return KafkaStatus(cause, std::string(what) + detail);
}

Status KafkaSink::Impl::RebuildProducer(const Status& cause) {
  spdlog::warn("exactly-once: rebuilding the transactional producer '{}' after: {}",
               options_.transactional_id, cause.message());
  StopDelivery();
  {
    std::unique_lock<std::shared_mutex> handle(handle_mutex_);
    // Queued and in-flight messages get failed reports (the transaction they
    // belong to is aborted; only its commit would have counted them).
    rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                                        RD_KAFKA_PURGE_F_NON_BLOCKING);
    // Serve the reports here (the delivery thread is stopped, and in event
    // mode rd_kafka_flush would only wait for someone to).
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(kPurgeReportTimeoutMs);
    while (rd_kafka_outq_len(producer_.get()) > 0 &&
           std::chrono::steady_clock::now() < deadline) {
      rd_kafka_event_t* event = rd_kafka_queue_poll(queue_.get(), 100);
      if (event == nullptr) continue;
      if (rd_kafka_event_type(event) == RD_KAFKA_EVENT_DR) {
        while (const rd_kafka_message_t* m = rd_kafka_event_message_next(event)) Report(m);
      }
      rd_kafka_event_destroy(event);
    }
    queue_.reset();
    producer_.reset();
  }
  Status last = cause;
  for (int attempt = 1; !closing_.load(); ++attempt) {
    {
      std::unique_lock<std::shared_mutex> handle(handle_mutex_);
      queue_.reset();
      producer_.reset();
      NLPFLOW_RETURN_IF_ERROR(CreateProducer());
    }
    StartDelivery();
    rd_kafka_t* rk = producer_.get();
    // Fences the old producer; the coordinator aborts what it left open.
    ErrorPtr init(rd_kafka_init_transactions(rk, options_.transaction_timeout_ms));
    if (init == nullptr) {
      Status begun = KafkaStatus(ErrorPtr(rd_kafka_begin_transaction(rk)).get(),
                                 "Kafka sink: begin_transaction");
      if (begun.ok()) {
        produced_in_txn_.store(0);
        rebuild_needed_.store(false);
        abort_needed_.store(false);
        ++rebuilds_;
        spdlog::warn("exactly-once: transactional producer '{}' rebuilt (attempt {})",
                     options_.transactional_id, attempt);
        return Status::Ok();
      }
      last = begun;
    } else {
      last = KafkaStatus(init.get(), "Kafka sink: init_transactions of the rebuilt producer");
      if (rd_kafka_error_is_fatal(init.get()) && IsFencing(rd_kafka_error_code(init.get()))) {
        return FatalTxnError(last);
      }
    }
    spdlog::warn("exactly-once: {} (attempt {}); trying again", last.message(), attempt);
    StopDelivery();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return last.WithContext("exactly-once: the sink closed while rebuilding its producer");
}

Status KafkaSink::Impl::EndTransaction(
    const std::function<std::vector<TopicPartitionOffset>()>& positions,
    const rd_kafka_consumer_group_metadata_s* group_metadata, bool abort,
    const std::function<void(bool committed)>& after) {
  if (!transactional()) {
    return Status::FailedPrecondition("Kafka sink is not transactional");
  }
  std::unique_lock<std::shared_mutex> txn(txn_mutex_);
  std::shared_lock<std::shared_mutex> handle(handle_mutex_);
  if (closing_.load() || producer_ == nullptr) {
    return Status::FailedPrecondition("Kafka sink is closed");
  }
  if (has_failed_.load()) return status();
  // Recovery in place: rebuild the producer; everything since the last
  // commit is aborted and read again.
  auto rebuild = [&](const Status& cause) -> Status {
    handle.unlock();
    NLPFLOW_RETURN_IF_ERROR(RebuildProducer(cause));
    if (after) after(false);
    return Status::Cancelled("transaction aborted: the producer was rebuilt after: " +
                             cause.message());
  };
  if (rebuild_needed_.load()) {
    bool fenced = false;
    Status fatal = FatalErrorOf(producer_.get(), "Kafka sink: fatal producer error: ", &fenced);
    if (fenced) return FatalTxnError(fatal);
    return rebuild(fatal);
  }
  if (abort_needed_.exchange(false)) abort = true;
  rd_kafka_t* rk = producer_.get();
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(options_.transaction_timeout_ms);

  Status failure;
  TxnErrorKind kind = TxnErrorKind::kAbortable;
  bool committed = false;
  if (!abort) {
    std::vector<TopicPartitionOffset> offsets = positions();
    if (offsets.empty() && produced_in_txn_.load() == 0) {
      if (after) after(true);
      return Status::Ok();
    }
    if (!offsets.empty()) {
      PartitionListPtr list = kafka_internal::ToList(offsets);
      failure = TxnCall(
          "send_offsets_to_transaction",
          [&](int ms) {
            return rd_kafka_send_offsets_to_transaction(
                rk, list.get(),
                reinterpret_cast<const rd_kafka_consumer_group_metadata_t*>(
                    group_metadata),
                ms);
          },
          deadline, &kind);
    }
    if (failure.ok()) {
      failure = TxnCall(
          "commit_transaction",
          [&](int ms) { return rd_kafka_commit_transaction(rk, ms); }, deadline,
          &kind);
    }
    committed = failure.ok();
    if (!committed && kind == TxnErrorKind::kFenced) return FatalTxnError(failure);
    if (!committed && kind == TxnErrorKind::kFatal) return rebuild(failure);
  }
  if (!committed) {
    if (!failure.ok()) spdlog::warn("{}; aborting the transaction", failure.message());
    const auto abort_deadline =
        std::chrono::steady_clock::now() +
        std::chrono::milliseconds(options_.transaction_timeout_ms);
    TxnErrorKind abort_kind = TxnErrorKind::kAbortable;
    Status aborted = TxnCall(
        "abort_transaction",
        [&](int ms) { return rd_kafka_abort_transaction(rk, ms); },
        abort_deadline, &abort_kind);
    if (!aborted.ok() && abort_kind == TxnErrorKind::kFenced) return FatalTxnError(aborted);
    // An abort that fails (e.g. INVALID_TXN_STATE after the cluster was
    // unreachable) leaves a producer that cannot go on: make a new one.
    if (!aborted.ok()) return rebuild(aborted);
  }
  produced_in_txn_.store(0);
  if (after) after(committed);
  ErrorPtr begin_error(rd_kafka_begin_transaction(rk));
  Status begun = KafkaStatus(begin_error.get(), "Kafka sink: begin_transaction");
  if (!begun.ok()) {
    if (rd_kafka_error_is_fatal(begin_error.get()) &&
        IsFencing(rd_kafka_error_code(begin_error.get()))) {
      return FatalTxnError(begun);
    }
    // The transaction ended as reported; the next one runs on a new producer.
    handle.unlock();
    NLPFLOW_RETURN_IF_ERROR(RebuildProducer(begun));
  }
  if (committed) return Status::Ok();
  return Status::Cancelled("transaction aborted: " +
                           (failure.ok() ? std::string("on request")
                                         : failure.message()));
}

Status KafkaSink::Impl::Produce(std::string_view topic,
                                std::optional<std::string_view> key,
                                std::string_view value,
                                const std::vector<Header>& headers,
                                const DeliveryTag& tag) {
  std::shared_lock<std::shared_mutex> lock(handle_mutex_);
  if (closing_.load() || producer_ == nullptr) {
    return Status::FailedPrecondition("Kafka sink is closed");
  }
  if (has_failed_.load()) return status();

  rd_kafka_headers_t* hdrs = nullptr;
  if (!headers.empty()) {
    hdrs = rd_kafka_headers_new(headers.size());
    for (const Header& h : headers) {
      rd_kafka_header_add(hdrs, h.key.data(), static_cast<ssize_t>(h.key.size()),
                          h.value.data(), h.value.size());
    }
  }
  // A present but empty key must keep a non-null pointer: librdkafka writes a
  // null key for a null pointer and an empty one otherwise.
  static const char kEmpty[] = "";
  const void* key_data = nullptr;
  size_t key_size = 0;
  if (key.has_value()) {
    key_data = key->data() != nullptr ? key->data() : kEmpty;
    key_size = key->size();
  }
  // The value is never null (a null value is a tombstone to compacted
  // topics); an empty view is written as an empty value.
  char* value_data = const_cast<char*>(
      value.data() != nullptr ? value.data() : kEmpty);
  const std::string topic_name(topic);
  auto owned_tag = std::make_unique<DeliveryTag>(tag);

  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(options_.queue_full_timeout_ms);
  while (true) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_.get(), RD_KAFKA_V_TOPIC(topic_name.c_str()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE(value_data, value.size()),
        RD_KAFKA_V_KEY(key_data, key_size), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE(owned_tag.get()), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      owned_tag.release();  // freed by Report
      ++produced_;
      ++produced_in_txn_;
      return Status::Ok();
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL &&
        std::chrono::steady_clock::now() < deadline) {
      // The delivery thread frees room as reports come in.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    // On failure the headers are still ours.
    if (hdrs != nullptr) rd_kafka_headers_destroy(hdrs);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return Status::Unavailable(
          "Kafka sink: local producer queue still full after " +
          std::to_string(options_.queue_full_timeout_ms) +
          " ms (queue.buffering.max.messages/.kbytes)");
    }
    if (transactional() && err == RD_KAFKA_RESP_ERR__STATE) {
      // The open transaction is in an abortable state: it will be aborted and
      // this record read again, so it is not written now.
      abort_needed_.store(true);
      return Status::Ok();
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      bool fenced = false;
      Status fatal =
          FatalErrorOf(producer_.get(), "Kafka sink: fatal producer error: ", &fenced);
      if (transactional() && !fenced) {
        // Rebuilt at the next EndTransaction, which aborts this transaction.
        rebuild_needed_.store(true);
        return Status::Ok();
      }
      Fail(fatal);
      return fatal;
    }
    return KafkaStatus(err, "Kafka sink: produce to '" + topic_name + "'");
  }
}

Status KafkaSink::Impl::Flush(int timeout_ms) {
  if (OnDeliveryThread()) {
    return Status::FailedPrecondition(
        "KafkaSink::Flush called from the delivery callback");
  }
  std::shared_lock<std::shared_mutex> lock(handle_mutex_);
  if (producer_ == nullptr) {
    return Status::FailedPrecondition("Kafka sink is closed");
  }
  return FlushHandle(timeout_ms);
}

Status KafkaSink::Impl::FlushHandle(int timeout_ms) {
  rd_kafka_resp_err_t err = rd_kafka_flush(producer_.get(), timeout_ms);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
  uint64_t reported = delivered_.load() + failed_.load();
  uint64_t produced = produced_.load();
  return Status::DeadlineExceeded(
      "Kafka sink: " + std::to_string(produced - reported) +
      " message(s) still without a delivery report after " +
      std::to_string(timeout_ms) + " ms");
}

Status KafkaSink::Impl::Close(int timeout_ms) {
  if (OnDeliveryThread()) {
    return Status::FailedPrecondition(
        "KafkaSink::Close called from the delivery callback");
  }
  std::lock_guard<std::mutex> close_lock(close_mutex_);
  if (closed_) return close_status_;
  closed_ = true;
  if (producer_ == nullptr) return close_status_;  // Init failed

  closing_.store(true);
  // Wait out Produce calls that passed the closing_ check before it was set;
  // later ones fail, so nothing is queued after this.
  { std::unique_lock<std::shared_mutex> wait(handle_mutex_); }

  if (transactional() && !has_failed_.load()) {
    // What the open transaction holds was never committed with its input
    // offsets: abort it now rather than leave it to block read_committed
    // readers until the transaction timeout. The abort purges the queue.
    std::unique_lock<std::shared_mutex> txn(txn_mutex_);
    Status aborted = KafkaStatus(
        ErrorPtr(rd_kafka_abort_transaction(producer_.get(),
                                            std::max(timeout_ms, 1000)))
            .get(),
        "Kafka sink: abort of the open transaction at close");
    if (!aborted.ok()) spdlog::warn("{}", aborted.message());
  }
  Status flushed = FlushHandle(timeout_ms);
  if (!flushed.ok()) {
    spdlog::warn("{}; purging them", flushed.message());
    rd_kafka_purge(producer_.get(),
                   RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    if (!FlushHandle(kPurgeReportTimeoutMs).ok()) {
      spdlog::error(
          "Kafka sink: {} purged message(s) got no delivery report",
          produced_.load() - delivered_.load() - failed_.load());
    }
  }
  StopDelivery();

  std::unique_lock<std::shared_mutex> lock(handle_mutex_);
  queue_.reset();
  producer_.reset();
  Status fatal = status();
  close_status_ = fatal.ok() ? flushed : fatal;
  return close_status_;
}

void KafkaSink::Impl::DeliveryLoop() {
  delivery_thread_id_.store(std::this_thread::get_id());
  while (!stop_delivery_.load()) {
    // The timeout only bounds how late a missed yield is noticed.
    rd_kafka_event_t* event = rd_kafka_queue_poll(queue_.get(), 100);
    if (event == nullptr) continue;
    switch (rd_kafka_event_type(event)) {
      case RD_KAFKA_EVENT_DR: {
        const rd_kafka_message_t* message;
        while ((message = rd_kafka_event_message_next(event)) != nullptr) {
          Report(message);
        }
        break;
      }
      case RD_KAFKA_EVENT_ERROR:
        OnError(rd_kafka_event_error(event), rd_kafka_event_error_string(event));
        break;
      default:
        break;
    }
    // Destroying a DR event releases its messages; rd_kafka_flush counts them.
    rd_kafka_event_destroy(event);
  }
}

void KafkaSink::Impl::Report(const rd_kafka_message_t* m) {
  std::unique_ptr<DeliveryTag> tag(static_cast<DeliveryTag*>(m->_private));
  DeliveryReport report;
  if (tag != nullptr) report.tag = *tag;
  report.destination.topic = m->rkt != nullptr ? rd_kafka_topic_name(m->rkt) : "";
  report.destination.partition = m->partition;
  report.destination.offset = m->offset >= 0 ? m->offset : -1;
  report.latency_us = rd_kafka_message_latency(m);
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++delivered_;
  } else {
    ++failed_;
    const bool maybe_written =
        rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
    report.status = KafkaStatus(
        m->err, "Kafka sink: delivery to '" + report.destination.topic +
                    "' failed" + (maybe_written ? " (possibly written)" : ""));
  }
  try {
    on_delivery_(report);
  } catch (const std::exception& e) {
    Fail(Status::Internal(std::string("Kafka sink: on_delivery threw: ") +
                          e.what()));
  } catch (...) {
    Fail(Status::Internal("Kafka sink: on_delivery threw a non-exception"));
  }
}

void KafkaSink::Impl::OnError(rd_kafka_resp_err_t err, const char* reason) {
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    bool fenced = false;
    Status fatal = FatalErrorOf(producer_.get(), "Kafka sink: fatal producer error: ", &fenced);
    if (transactional() && !fenced) {
      spdlog::warn("{}; the producer is rebuilt at the end of the transaction",
                   fatal.message());
      rebuild_needed_.store(true);
      return;
    }
    Fail(fatal);
    return;
  }
  // librdkafka retries these (connection loss, all brokers down, ...);
  // messages that cannot be delivered in time get failed reports.
  spdlog::warn("Kafka sink: producer error: {} ({})", reason,
               rd_kafka_err2name(err));
}

void KafkaSink::Impl::Fail(Status status) {
  spdlog::error("{}", status.ToString());
  std::lock_guard<std::mutex> lock(status_mutex_);
  if (fatal_.ok()) fatal_ = std::move(status);
  has_failed_.store(true);
}

// KafkaSink

Result<std::unique_ptr<KafkaSink>> KafkaSink::Create(
    const KafkaSinkOptions& options, DeliveryCallback on_delivery) {
  NLPFLOW_RETURN_IF_ERROR(ValidateKafkaSinkOptions(options));
  if (!on_delivery) {
    return Status::InvalidArgument("Kafka sink: on_delivery must be set");
  }
  auto impl = std::make_unique<Impl>(options, std::move(on_delivery));
  NLPFLOW_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<KafkaSink>(new KafkaSink(std::move(impl)));
}

KafkaSink::KafkaSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KafkaSink::~KafkaSink() = default;  // Impl's destructor closes.

Status KafkaSink::Produce(std::string_view topic,
                          std::optional<std::string_view> key,
                          std::string_view value,
                          const std::vector<Header>& headers,
                          const DeliveryTag& tag) {
  return impl_->Produce(topic, key, value, headers, tag);
}

Status KafkaSink::Flush(int timeout_ms) { return impl_->Flush(timeout_ms); }

Status KafkaSink::Close(int timeout_ms) { return impl_->Close(timeout_ms); }

Status KafkaSink::status() const { return impl_->status(); }

bool KafkaSink::transactional() const { return impl_->transactional(); }

std::shared_lock<std::shared_mutex> KafkaSink::HoldProduce() {
  return impl_->HoldProduce();
}

void KafkaSink::Exclusive(const std::function<void()>& fn) { impl_->Exclusive(fn); }

Status KafkaSink::EndTransaction(
    const std::function<std::vector<TopicPartitionOffset>()>& positions,
    const rd_kafka_consumer_group_metadata_s* group_metadata, bool abort,
    const std::function<void(bool committed)>& after) {
  return impl_->EndTransaction(positions, group_metadata, abort, after);
}

KafkaSinkStats KafkaSink::stats() const { return impl_->stats(); }

}  // namespace nlpflow
