#include "connectors/kafka/kafka_source.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "connectors/kafka/backpressure.h"
#include "connectors/kafka/kafka_status.h"
#include "connectors/kafka/rdkafka_util.h"
#include "connectors/kafka/transaction_coordinator.h"

namespace nlpflow {

using kafka_internal::BuildConf;
using kafka_internal::CheckCluster;
using kafka_internal::ErrorPtr;
using kafka_internal::HandlePtr;
using kafka_internal::NewHandle;
using kafka_internal::PartitionListPtr;
using kafka_internal::Describe;
using kafka_internal::PartitionName;
using kafka_internal::ToList;
using kafka_internal::ToPartitions;

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

class KafkaSource::Impl {
 public:
  Impl(const KafkaSourceOptions& options, std::shared_ptr<OffsetTracker> tracker,
       RecordCallback on_record, KafkaSink* sink)
      : options_(options),
        tracker_(std::move(tracker)),
        on_record_(std::move(on_record)),
        sink_(sink),
        transactional_(sink != nullptr && sink->transactional()),
        backpressure_(options.max_in_flight,
                      static_cast<int64_t>(options.max_in_flight) * options.resume_at_percent / 100),
        coordinator_(transactional_
                         ? std::make_unique<TransactionCoordinator>(sink, tracker_.get())
                         : nullptr) {}

  ~Impl() { Stop(0); }

  Status Init();
  Status Start();
  Status Stop(int drain_timeout_ms);

  Status status() const {
    std::lock_guard<std::mutex> lock(status_mutex_);
    return fatal_;
  }

  std::vector<PartitionPosition> positions() const {
    std::lock_guard<std::mutex> lock(positions_mutex_);
    return positions_;
  }

  KafkaSourceStats stats() const {
    KafkaSourceStats s;
    s.records = records_.load();
    s.dropped_duplicates = dropped_duplicates_.load();
    s.pauses = pauses_.load();
    s.paused = paused_now_.load();
    s.commits = commits_.load();
    s.commit_failures = commit_failures_.load();
    s.aborted_transactions = aborted_transactions_.load();
    s.assigned_partitions = assigned_partitions_.load();
    s.joined_group = joined_group_.load();
    return s;
  }

 private:
  // librdkafka callbacks; all run on the poll thread (inside
  // rd_kafka_consumer_poll or rd_kafka_consumer_close).
  static void RebalanceCb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions,
                          void* opaque) {
    static_cast<Impl*>(opaque)->OnRebalance(err, partitions);
  }
  static void CommitCb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t* offsets, void* opaque) {
    static_cast<Impl*>(opaque)->OnCommitResult(err, offsets);
  }
  static void ErrorCb(rd_kafka_t* rk, int err, const char* reason,
                      void* opaque) {
    static_cast<Impl*>(opaque)->OnError(static_cast<rd_kafka_resp_err_t>(err),
                                        reason);
  }

  void PollLoop();
  void HandleMessage(const rd_kafka_message_t* message);
  void UpdateBackpressure();
  void SetAssignmentPaused(bool pause);
  void UpdatePositions();
  void CommitAsync();
  rd_kafka_resp_err_t CommitSync(
      const std::vector<TopicPartitionOffset>& offsets);
  Status FinalCommit();
  void OnRebalance(rd_kafka_resp_err_t err,
                   rd_kafka_topic_partition_list_t* partitions);
  void OnCommitResult(rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t* offsets);
  void OnError(rd_kafka_resp_err_t err, const char* reason);
  // Exactly-once: ends the open transaction (see KafkaSource). `release`
  // names partitions to forget once it committed (a revoke); `abort` aborts
  // it. On an abort every partition is forgotten and the assigned ones that
  // are kept are rewound. Returns the transaction's status (Cancelled for an
  // abort); a fatal one also fails the source.
  Status EndTransaction(const std::vector<TopicPartition>& release, bool abort);
  // Seeks `targets` (their rewind positions) back.
  void Rewind(const std::map<TopicPartition, int64_t>& targets);
  // Waits up to revoke_timeout_ms until no record of `partitions` is in the
  // graph unwritten.
  void WaitForRevoked(const std::vector<TopicPartition>& partitions);
  void UpdateAssignment(const rd_kafka_topic_partition_list_t* partitions,
                        bool add);
  void Fail(Status status);

  const KafkaSourceOptions options_;
  const std::shared_ptr<OffsetTracker> tracker_;
  const RecordCallback on_record_;
  KafkaSink* const sink_;  // may be null
  const bool transactional_;
  Backpressure backpressure_;

  HandlePtr consumer_;  // used by the poll thread only once Start ran

  std::mutex lifecycle_mutex_;
  bool started_ = false;   // GUARDED_BY(lifecycle_mutex_)
  bool stopped_ = false;   // GUARDED_BY(lifecycle_mutex_)
  Status stop_status_;     // GUARDED_BY(lifecycle_mutex_)
  std::thread thread_;
  std::atomic<std::thread::id> poll_thread_id_{};

  // Set by Stop, read by the poll thread.
  std::atomic<bool> stop_requested_{false};
  std::atomic<int> drain_timeout_ms_{0};

  mutable std::mutex status_mutex_;
  Status fatal_;  // GUARDED_BY(status_mutex_)
  std::atomic<bool> failed_{false};

  // Poll-thread state.
  // From partition.assignment.strategy (librdkafka refuses to mix protocols).
  bool cooperative_ = false;
  // Our own copy of the assignment, kept in OnRebalance. Asking librdkafka
  // (rd_kafka_assignment) is a request to its group thread that can block
  // forever around a close (see OnRebalance).
  std::set<TopicPartition> assignment_;
  // Exactly-once: ends transactions and knows where an abort rewinds to;
  // null otherwise.
  const std::unique_ptr<TransactionCoordinator> coordinator_;
  bool draining_ = false;
  uint64_t next_sequence_ = 0;
  Status final_commit_status_;  // read by Stop after joining

  std::atomic<uint64_t> records_{0};
  std::atomic<uint64_t> dropped_duplicates_{0};
  std::atomic<uint64_t> pauses_{0};
  std::atomic<bool> paused_now_{false};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> commit_failures_{0};
  std::atomic<uint64_t> aborted_transactions_{0};
  std::atomic<int32_t> assigned_partitions_{0};
  std::atomic<bool> joined_group_{false};

  mutable std::mutex positions_mutex_;
  std::vector<PartitionPosition> positions_;  // GUARDED_BY(positions_mutex_)
};

Status KafkaSource::Impl::Init() {
  Result<kafka_internal::ConfPtr> conf = BuildConf(ConsumerProperties(options_));
  if (!conf.ok()) return conf.status().WithContext("Kafka consumer config");
  char strategy[256] = "";
  size_t strategy_size = sizeof(strategy);
  if (rd_kafka_conf_get(conf->get(), "partition.assignment.strategy", strategy,
                        &strategy_size) == RD_KAFKA_CONF_OK) {
    cooperative_ = std::strstr(strategy, "cooperative") != nullptr;
  }
  rd_kafka_conf_set_opaque(conf->get(), this);
  rd_kafka_conf_set_rebalance_cb(conf->get(), &RebalanceCb);
  rd_kafka_conf_set_offset_commit_cb(conf->get(), &CommitCb);
  rd_kafka_conf_set_error_cb(conf->get(), &ErrorCb);
  Result<HandlePtr> handle = NewHandle(RD_KAFKA_CONSUMER, std::move(*conf));
  if (!handle.ok()) return handle.status().WithContext("Kafka consumer");
  consumer_ = std::move(handle).value();
  // Route the main queue (errors, logs, rebalances) into the consumer queue:
  // one rd_kafka_consumer_poll serves everything, on the poll thread.
  rd_kafka_poll_set_consumer(consumer_.get());
  if (options_.connect_timeout_ms > 0) {
    NLPFLOW_RETURN_IF_ERROR(CheckCluster(consumer_.get(),
                                         options_.bootstrap_servers,
                                         options_.connect_timeout_ms,
                                         options_.topics));
  }
  return Status::Ok();
}

Status KafkaSource::Impl::Start() {
  std::lock_guard<std::mutex> lock(lifecycle_mutex_);
  if (started_ || stopped_) {
    return Status::FailedPrecondition("Kafka source was already started");
  }
  PartitionListPtr topics(rd_kafka_topic_partition_list_new(
      static_cast<int>(options_.topics.size())));
  for (const std::string& topic : options_.topics) {
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(),
                                      RD_KAFKA_PARTITION_UA);
  }
  NLPFLOW_RETURN_IF_ERROR(KafkaStatus(
      rd_kafka_subscribe(consumer_.get(), topics.get()), "Kafka subscribe"));
  started_ = true;
  thread_ = std::thread(&Impl::PollLoop, this);
  spdlog::info("Kafka source: group '{}' subscribed to {} topic(s) on {}",
               options_.group_id, options_.topics.size(),
               options_.bootstrap_servers);
  return Status::Ok();
}

Status KafkaSource::Impl::Stop(int drain_timeout_ms) {
  if (std::this_thread::get_id() == poll_thread_id_.load()) {
    return Status::FailedPrecondition(
        "KafkaSource::Stop called from the poll thread (on_record)");
  }
  std::lock_guard<std::mutex> lock(lifecycle_mutex_);
  if (stopped_) return stop_status_;
  stopped_ = true;
  if (thread_.joinable()) {
    drain_timeout_ms_.store(drain_timeout_ms);
    stop_requested_.store(true);
    thread_.join();
  } else if (consumer_ != nullptr) {
    // Never started: nothing was consumed, nothing to commit.
    rd_kafka_consumer_close(consumer_.get());
  }
  consumer_.reset();
  Status fatal = status();
  stop_status_ = fatal.ok() ? final_commit_status_ : fatal;
  return stop_status_;
}

void KafkaSource::Impl::PollLoop() {
  poll_thread_id_.store(std::this_thread::get_id());
  rd_kafka_t* rk = consumer_.get();
  const auto commit_interval =
      std::chrono::milliseconds(options_.commit_interval_ms);
  Clock::time_point next_commit = Clock::now() + commit_interval;
  Clock::time_point drain_deadline;

  while (!failed_.load()) {
    if (stop_requested_.load() && !draining_) {
      // Nothing more is handed over from here on; pausing makes librdkafka
      // drop what it fetched ahead and stop fetching.
      draining_ = true;
      if (!backpressure_.paused()) SetAssignmentPaused(true);
      drain_deadline =
          Clock::now() + std::chrono::milliseconds(drain_timeout_ms_.load());
    }
    if (draining_ &&
        (tracker_->in_flight() == 0 || Clock::now() >= drain_deadline)) {
      break;
    }
    if (!draining_) UpdateBackpressure();

    rd_kafka_message_t* message =
        rd_kafka_consumer_poll(rk, options_.poll_timeout_ms);
    if (message != nullptr) {
      HandleMessage(message);
      rd_kafka_message_destroy(message);
    }
    if (Clock::now() >= next_commit) {
      if (transactional_) {
        (void)EndTransaction({}, /*abort=*/false);
      } else {
        CommitAsync();
      }
      UpdatePositions();
      next_commit = Clock::now() + commit_interval;
    }
  }

  if (draining_ && tracker_->in_flight() > 0) {
    spdlog::warn(
        "Kafka source: stopping with {} record(s) in flight; they will be read "
        "again by the next owner of their partitions",
        tracker_->in_flight());
  }
  // Also after a fatal error: nothing is handed over from here on.
  if (!draining_) {
    draining_ = true;
    if (!backpressure_.paused()) SetAssignmentPaused(true);
  }
  final_commit_status_ = FinalCommit();
  // Leaves the group. With the eager protocol this runs the revoke callback
  // (commit again, which is cheap, and forget); it waits for the group
  // coordinator to answer.
  rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("Kafka source: {}",
                 KafkaStatus(err, "consumer close").message());
  }
  spdlog::info("Kafka source: stopped after {} record(s)", records_.load());
}

void KafkaSource::Impl::HandleMessage(const rd_kafka_message_t* m) {
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
    std::string where = m->rkt != nullptr
                            ? " on " + PartitionName(rd_kafka_topic_name(m->rkt),
                                                     m->partition)
                            : "";
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
      OnError(m->err, rd_kafka_message_errstr(m));
      return;
    }
    // Everything else (unknown topic, broker gone, offset reset) is retried
    // by librdkafka; it is worth a warning, not a stop.
    spdlog::warn("Kafka source: consumer error{}: {} ({})", where,
                 rd_kafka_message_errstr(m), rd_kafka_err2name(m->err));
    return;
  }
  if (draining_) return;  // not tracked, so not committed: read again later

  const char* topic = rd_kafka_topic_name(m->rkt);
  if (backpressure_.TakeFirst(TopicPartition{topic, m->partition}) && backpressure_.paused()) {
    // Assigned while backpressure held: pause it now that its fetch runs,
    // and have it start again at this message after the resume.
    PartitionListPtr list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), topic, m->partition)->offset = m->offset;
    rd_kafka_pause_partitions(consumer_.get(), list.get());
    Status sought = KafkaStatus(
        ErrorPtr(rd_kafka_seek_partitions(consumer_.get(), list.get(), 5000)).get(),
        "Kafka source: seek back of a partition assigned under backpressure");
    if (!sought.ok()) Fail(sought);
    return;
  }
  Status tracked = tracker_->Track(topic, m->partition, m->offset);
  if (!tracked.ok()) {
    ++dropped_duplicates_;
    spdlog::warn("Kafka source: dropping a re-delivered record: {}",
                 tracked.message());
    return;
  }

  auto record = std::make_shared<Record>();
  record->sequence = next_sequence_++;
  record->coords.topic = topic;
  record->coords.partition = m->partition;
  record->coords.offset = m->offset;
  if (m->key != nullptr) {
    record->key.emplace(static_cast<const char*>(m->key), m->key_len);
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value,
                                               &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      // A null header value arrives as an empty string.
      record->headers.push_back(
          {name, value != nullptr
                     ? std::string(static_cast<const char*>(value), size)
                     : std::string()});
    }
  }
  rd_kafka_timestamp_type_t ts_type;
  int64_t ts = rd_kafka_message_timestamp(m, &ts_type);
  record->timestamp_ms = ts_type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts;
  if (m->payload != nullptr) {
    record->payload.assign(static_cast<const char*>(m->payload), m->len);
  }
  record->times.arrived_us = NowMicros();
  ++records_;

  try {
    on_record_(std::move(record));
  } catch (const std::exception& e) {
    Fail(Status::Internal(std::string("Kafka source: on_record threw: ") +
                          e.what()));
  } catch (...) {
    Fail(Status::Internal("Kafka source: on_record threw a non-exception"));
  }
}

void KafkaSource::Impl::UpdateBackpressure() {
  int64_t in_flight = tracker_->in_flight();
  // A long pause is worth a line: the graph (or the broker's acknowledgements)
  // is not keeping up, or records are stuck.
  if (backpressure_.ReportDue(Clock::now())) {
    const KafkaSinkStats sink = sink_ != nullptr ? sink_->stats() : KafkaSinkStats();
    spdlog::warn("Kafka source: paused by backpressure for 10 s or more: {} record(s) in flight "
                 "(bound {}, resuming at {}); producer: {} produced, {} acknowledged, {} failed",
                 in_flight, backpressure_.max_in_flight(), backpressure_.resume_at(),
                 sink.produced, sink.delivered, sink.failed);
  }
  switch (backpressure_.Update(in_flight)) {
    case Backpressure::Change::kPause:
      SetAssignmentPaused(true);
      ++pauses_;
      spdlog::debug("Kafka source: paused at {} records in flight", in_flight);
      break;
    case Backpressure::Change::kResume:
      SetAssignmentPaused(false);
      spdlog::debug("Kafka source: resumed at {} records in flight", in_flight);
      break;
    case Backpressure::Change::kNone:
      break;
  }
}

void KafkaSource::Impl::SetAssignmentPaused(bool pause) {
  if (!assignment_.empty()) {
    PartitionListPtr list = ToList(assignment_);
    rd_kafka_resp_err_t err =
        pause ? rd_kafka_pause_partitions(consumer_.get(), list.get())
              : rd_kafka_resume_partitions(consumer_.get(), list.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // Only fails for partitions no longer assigned, which fetch nothing.
      spdlog::warn("Kafka source: {}",
                   KafkaStatus(err, pause ? "pause" : "resume").message());
    }
  }
  // Partitions assigned later are paused by HandleMessage while the pause
  // holds (see OnRebalance).
  backpressure_.SetPaused(pause);
  paused_now_.store(pause);
}

// rd_kafka_position and rd_kafka_get_watermark_offsets read the client's
// local per-partition state; neither is a request to the group thread (see
// OnRebalance) nor to a broker.
void KafkaSource::Impl::UpdatePositions() {
  std::vector<PartitionPosition> out;
  if (!assignment_.empty()) {
    PartitionListPtr list = ToList(assignment_);
    rd_kafka_position(consumer_.get(), list.get());
    for (int i = 0; i < list->cnt; ++i) {
      const rd_kafka_topic_partition_t& p = list->elems[i];
      PartitionPosition pp;
      pp.topic = p.topic;
      pp.partition = p.partition;
      pp.position = p.offset >= 0 ? p.offset : -1;
      int64_t low = -1, high = -1;
      if (rd_kafka_get_watermark_offsets(consumer_.get(), p.topic, p.partition, &low,
                                         &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          high >= 0) {
        pp.low_watermark = low;
        pp.high_watermark = high;
      }
      out.push_back(std::move(pp));
    }
  }
  std::lock_guard<std::mutex> lock(positions_mutex_);
  positions_ = std::move(out);
}

void KafkaSource::Impl::CommitAsync() {
  std::vector<TopicPartitionOffset> offsets = tracker_->TakeCommittable();
  if (offsets.empty()) return;
  PartitionListPtr list = ToList(offsets);
  // The result arrives in OnCommitResult on this thread.
  rd_kafka_resp_err_t err = rd_kafka_commit(consumer_.get(), list.get(), 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++commit_failures_;
    tracker_->RestoreCommittable(offsets);
    spdlog::warn("Kafka source: {}",
                 KafkaStatus(err, "offset commit").message());
  }
}

rd_kafka_resp_err_t KafkaSource::Impl::CommitSync(
    const std::vector<TopicPartitionOffset>& offsets) {
  if (offsets.empty()) return RD_KAFKA_RESP_ERR_NO_ERROR;
  PartitionListPtr list = ToList(offsets);
  // Counted in OnCommitResult, which librdkafka calls for this commit too.
  rd_kafka_resp_err_t err = rd_kafka_commit(consumer_.get(), list.get(), 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return err;
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return list->elems[i].err;
    }
  }
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

Status KafkaSource::Impl::FinalCommit() {
  if (transactional_) {
    if (failed_.load()) return Status::Ok();  // the failure is reported
    Status st = EndTransaction({}, /*abort=*/false);
    return st.code() == StatusCode::kCancelled ? Status::Ok() : st;
  }
  rd_kafka_resp_err_t err = CommitSync(tracker_->CommitPositions());
  // A commit that races with a rebalance (another member joining or leaving
  // as we stop) is rejected until the rebalance completes; polling lets it
  // complete. The partitions are paused, so no records come meanwhile.
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(options_.stop_commit_timeout_ms);
  while (err != RD_KAFKA_RESP_ERR_NO_ERROR && IsRetriableCommitError(err) &&
         !failed_.load() && Clock::now() < deadline) {
    spdlog::debug("Kafka source: final commit: {}; retrying",
                  rd_kafka_err2name(err));
    rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer_.get(), 100);
    if (message != nullptr) {
      HandleMessage(message);  // dropped: draining
      rd_kafka_message_destroy(message);
    }
    // A revoke meanwhile forgets partitions: ask again.
    err = CommitSync(tracker_->CommitPositions());
  }
  Status status = KafkaStatus(err, "Kafka source: final offset commit");
  if (!status.ok()) spdlog::warn("{}", status.message());
  return status;
}

// librdkafka 2.0.2: once the application's (un)assign call lets a closing
// consumer's group thread terminate, that thread purges its request queue
// without replying, and a request enqueued just before blocks its caller
// forever. rd_kafka_rebalance_protocol() and rd_kafka_assignment() are such
// requests (librdkafka issue #4041), so this callback makes no request to the
// group thread besides the commit and the (un)assign it must make, and none
// after the (un)assign.
void KafkaSource::Impl::OnRebalance(
    rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions) {
  rd_kafka_t* rk = consumer_.get();

  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    spdlog::info("Kafka source: assigned {} partition(s) ({}): {}",
                 partitions->cnt, cooperative_ ? "cooperative" : "eager",
                 Describe(partitions));
    UpdateAssignment(partitions, /*add=*/true);
    Status assigned =
        cooperative_
            ? KafkaStatus(ErrorPtr(rd_kafka_incremental_assign(rk, partitions))
                              .get(),
                          "incremental assign")
            : KafkaStatus(rd_kafka_assign(rk, partitions), "assign");
    if (!assigned.ok()) {
      Fail(assigned.WithContext("Kafka source"));
      return;
    }
    // The group's answer came, possibly with no partitions (more members
    // than partitions): this member is in the group.
    joined_group_.store(true);
    // librdkafka keeps a partition's pause flag across a revoke (or loss)
    // and a new assignment of the same partition. Seen: partitions paused by
    // backpressure were lost, backpressure ended while nothing was assigned
    // (so the resume named no partition), the same partitions came back still
    // paused and never fetched again. So a new assignment starts resumed...
    if (partitions->cnt > 0) rd_kafka_resume_partitions(rk, partitions);
    // ...and, while backpressure holds, each new partition is paused when
    // its first message arrives and seeked back to it (HandleMessage), not
    // here, before its fetch has started. While draining, their messages are
    // dropped anyway.
    backpressure_.Assigned(ToPartitions(partitions));
    return;
  }

  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    std::vector<TopicPartition> revoked = ToPartitions(partitions);
    if (rd_kafka_assignment_lost(rk)) {  // a flag read, not a request
      // Another member owns them already; a commit would be rejected, and
      // nothing more may be written for them.
      spdlog::warn("Kafka source: lost {} partition(s) without a clean "
                   "revoke: {}; their done offsets are not committed",
                   partitions->cnt, Describe(partitions));
      if (transactional_) {
        (void)EndTransaction(revoked, /*abort=*/true);
      } else if (sink_ != nullptr) {
        sink_->Exclusive([&] { tracker_->Forget(revoked, next_sequence_); });
      } else {
        tracker_->Forget(revoked, next_sequence_);
      }
    } else {
      spdlog::info("Kafka source: revoked {} partition(s): {}",
                   partitions->cnt, Describe(partitions));
      WaitForRevoked(revoked);
      if (transactional_) {
        (void)EndTransaction(revoked, /*abort=*/false);
      } else {
        if (sink_ != nullptr) {
          // From here on no result of theirs is produced; what was produced
          // is written before they go.
          sink_->Exclusive([&] { tracker_->Fence(revoked, next_sequence_); });
          Status flushed = sink_->Flush(options_.revoke_timeout_ms);
          if (!flushed.ok()) spdlog::warn("Kafka source: on revoke: {}", flushed.message());
        }
        // Cannot be retried here (a poll inside the callback is not allowed):
        // if it fails, the new owner re-reads from the last committed offset.
        Status committed =
            KafkaStatus(CommitSync(tracker_->CommitPositions(revoked)),
                        "offset commit of revoked partitions");
        if (!committed.ok()) spdlog::warn("Kafka source: {}", committed.message());
        tracker_->Forget(revoked, next_sequence_);
      }
    }
    for (const TopicPartition& tp : revoked) {
      if (coordinator_) coordinator_->Forget(tp);
      backpressure_.Revoked(tp);
    }
    UpdateAssignment(partitions, /*add=*/false);
  } else {
    spdlog::error("Kafka source: {}", KafkaStatus(err, "rebalance").message());
    UpdateAssignment(partitions, /*add=*/false);
  }
  Status unassigned =
      cooperative_
          ? KafkaStatus(
                ErrorPtr(rd_kafka_incremental_unassign(rk, partitions)).get(),
                "incremental unassign")
          : KafkaStatus(rd_kafka_assign(rk, nullptr), "unassign");
  if (!unassigned.ok()) Fail(unassigned.WithContext("Kafka source"));
}

void KafkaSource::Impl::WaitForRevoked(const std::vector<TopicPartition>& partitions) {
  // Stopping: Stop's drain already waited for the graph (its own bound).
  if (sink_ == nullptr || draining_) return;
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(options_.revoke_timeout_ms);
  int64_t left = tracker_->Unfinished(partitions);
  while (left > 0 && Clock::now() < deadline && !failed_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    left = tracker_->Unfinished(partitions);
  }
  if (left > 0) {
    spdlog::warn("Kafka source: {} record(s) of the revoked partitions not written "
                 "within {} ms; they are dropped and read again by the next owner",
                 left, options_.revoke_timeout_ms);
  }
}

Status KafkaSource::Impl::EndTransaction(const std::vector<TopicPartition>& release,
                                         bool abort) {
  TransactionCoordinator::Outcome outcome =
      coordinator_->End(consumer_.get(), release, abort, assignment_, next_sequence_);
  const Status& st = outcome.status;
  if (st.code() == StatusCode::kCancelled) {
    ++aborted_transactions_;
    spdlog::warn("Kafka source: {}; rewinding {} partition(s) to their committed offsets",
                 st.message(), outcome.rewind.size());
    Rewind(outcome.rewind);
  } else if (!st.ok()) {
    Fail(st);
  } else {
    ++commits_;
  }
  return st;
}

void KafkaSource::Impl::Rewind(const std::map<TopicPartition, int64_t>& targets) {
  if (targets.empty()) return;
  PartitionListPtr list = ToList(targets);
  // A seek also discards what librdkafka fetched ahead from the old position.
  Status st = KafkaStatus(
      ErrorPtr(rd_kafka_seek_partitions(consumer_.get(), list.get(), 10000)).get(),
      "Kafka source: seek after an aborted transaction");
  for (int i = 0; st.ok() && i < list->cnt; ++i) {
    st = KafkaStatus(list->elems[i].err, "Kafka source: seek of " +
                                             PartitionName(list->elems[i].topic,
                                                           list->elems[i].partition));
  }
  // Reading on from a position after uncommitted, unpublished records would
  // lose them: stop instead (a restart reads from the committed offsets).
  if (!st.ok()) Fail(st);
}

void KafkaSource::Impl::OnCommitResult(
    rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets) {
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;  // nothing to commit
  std::vector<TopicPartitionOffset> failed;
  rd_kafka_resp_err_t first_err = err;
  if (offsets != nullptr) {
    for (int i = 0; i < offsets->cnt; ++i) {
      const rd_kafka_topic_partition_t& p = offsets->elems[i];
      rd_kafka_resp_err_t e = p.err != RD_KAFKA_RESP_ERR_NO_ERROR ? p.err : err;
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        failed.push_back({p.topic, p.partition, p.offset});
        if (first_err == RD_KAFKA_RESP_ERR_NO_ERROR) first_err = e;
      }
    }
  }
  if (first_err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++commits_;
    return;
  }
  ++commit_failures_;
  tracker_->RestoreCommittable(failed);
  spdlog::warn("Kafka source: {}",
               KafkaStatus(first_err, "offset commit of " +
                                          std::to_string(failed.size()) +
                                          " partition(s) failed; will retry")
                   .message());
}

void KafkaSource::Impl::OnError(rd_kafka_resp_err_t err, const char* reason) {
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char detail[512];
    rd_kafka_resp_err_t cause =
        rd_kafka_fatal_error(consumer_.get(), detail, sizeof(detail));
    Fail(KafkaStatus(cause, std::string("Kafka source: fatal consumer error: ") +
                                detail));
    return;
  }
  // librdkafka retries these (connection loss, all brokers down, ...).
  spdlog::warn("Kafka source: consumer error: {} ({})", reason,
               rd_kafka_err2name(err));
}

void KafkaSource::Impl::UpdateAssignment(
    const rd_kafka_topic_partition_list_t* partitions, bool add) {
  // Eager rebalances hand out and take back the whole assignment at once;
  // cooperative ones a part of it. Either way the lists name exactly the
  // partitions that come or go.
  for (const TopicPartition& tp : ToPartitions(partitions)) {
    if (add) {
      assignment_.insert(tp);
    } else {
      assignment_.erase(tp);
    }
  }
  if (!cooperative_ && !add) assignment_.clear();
  assigned_partitions_.store(static_cast<int32_t>(assignment_.size()));
}

void KafkaSource::Impl::Fail(Status status) {
  spdlog::error("{}", status.ToString());
  std::lock_guard<std::mutex> lock(status_mutex_);
  if (fatal_.ok()) fatal_ = std::move(status);
  failed_.store(true);
}

// KafkaSource

Result<std::unique_ptr<KafkaSource>> KafkaSource::Create(
    const KafkaSourceOptions& options, std::shared_ptr<OffsetTracker> tracker,
    RecordCallback on_record, KafkaSink* sink) {
  NLPFLOW_RETURN_IF_ERROR(ValidateKafkaSourceOptions(options));
  if (tracker == nullptr) {
    return Status::InvalidArgument("Kafka source: tracker must not be null");
  }
  if (!on_record) {
    return Status::InvalidArgument("Kafka source: on_record must be set");
  }
  auto impl = std::make_unique<Impl>(options, std::move(tracker),
                                     std::move(on_record), sink);
  NLPFLOW_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<KafkaSource>(new KafkaSource(std::move(impl)));
}

KafkaSource::KafkaSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KafkaSource::~KafkaSource() = default;  // Impl's destructor stops.

Status KafkaSource::Start() { return impl_->Start(); }

Status KafkaSource::Stop(int drain_timeout_ms) {
  return impl_->Stop(drain_timeout_ms);
}

Status KafkaSource::status() const { return impl_->status(); }

KafkaSourceStats KafkaSource::stats() const { return impl_->stats(); }

std::vector<PartitionPosition> KafkaSource::positions() const {
  return impl_->positions();
}

}  // namespace nlpflow
