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
using kafka_internal::HandlePtr;
using kafka_internal::NewHandle;
using kafka_internal::QueuePtr;

namespace {

// How long Close waits for the reports of purged messages. They are made
// locally, so this is only a guard against a stuck delivery callback.
constexpr int kPurgeReportTimeoutMs = 5000;

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

  KafkaSinkStats stats() const {
    return KafkaSinkStats{produced_.load(), delivered_.load(), failed_.load()};
  }

 private:
  void DeliveryLoop();
  void Report(const rd_kafka_message_t* message);
  void OnError(rd_kafka_resp_err_t err, const char* reason);
  void Fail(Status status);
  Status FlushHandle(int timeout_ms);
  bool OnDeliveryThread() const {
    return std::this_thread::get_id() == delivery_thread_id_.load();
  }

  const KafkaSinkOptions options_;
  const DeliveryCallback on_delivery_;

  // Produce and Flush hold it shared while they use the producer; Close takes
  // it exclusively to wait them out and before destroying the producer.
  std::shared_mutex handle_mutex_;
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
};

Status KafkaSink::Impl::Init() {
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
  if (options_.connect_timeout_ms > 0) {
    NLPFLOW_RETURN_IF_ERROR(CheckCluster(producer_.get(),
                                         options_.bootstrap_servers,
                                         options_.connect_timeout_ms));
  }
  delivery_thread_ = std::thread(&Impl::DeliveryLoop, this);
  return Status::Ok();
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
    if (err == RD_KAFKA_RESP_ERR__FATAL) return status();
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
  stop_delivery_.store(true);
  rd_kafka_queue_yield(queue_.get());
  if (delivery_thread_.joinable()) delivery_thread_.join();

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
    char detail[512];
    rd_kafka_resp_err_t cause =
        rd_kafka_fatal_error(producer_.get(), detail, sizeof(detail));
    Fail(KafkaStatus(cause, std::string("Kafka sink: fatal producer error: ") +
                                detail));
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

KafkaSinkStats KafkaSink::stats() const { return impl_->stats(); }

}  // namespace nlpflow
