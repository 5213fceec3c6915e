// ResultSink over a KafkaSink: results to the output topic, dead letters to
// the dead-letter topic. The input's key is kept and its headers forwarded;
// timing headers are added (names below).
//
// Every message is produced while holding KafkaSink::HoldProduce(), after
// checking OffsetTracker::IsCurrent: a record whose partition left this
// instance (revoked, lost, or rewound after an aborted transaction) is
// dropped unwritten (OffsetTracker::Release), so no result is ever written
// for a partition after it was given up.
//
// At-least-once (not ordered): messages are produced as they come; the
// delivery reports, wired by the owner to OffsetTracker::MarkDone, tell the
// tracker when a record is done.
//
// Exactly-once (ordered): per input partition, messages are produced in
// input offset order: a result waits here until every earlier tracked record
// of its partition was produced, and is marked done in the tracker as soon as
// it is produced (the transaction's commit, not the delivery report, decides
// whether it counts). So at every moment the produced results of a partition
// are exactly its records below the tracker's commit position, which is what
// the transaction commits as the input offset. Waiting results count in the
// tracker's in_flight(), so they are bounded by the backpressure limit.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/result_sink.h"
#include "connectors/kafka/kafka_sink.h"
#include "connectors/kafka/offset_tracker.h"

namespace nlpflow {

// Header names added by nlpflow.
inline constexpr char kHeaderTotalUs[] = "nlpflow.total_us";    // arrival to encoded
inline constexpr char kHeaderInferUs[] = "nlpflow.infer_us";
inline constexpr char kHeaderQueueUs[] = "nlpflow.queue_us";    // waiting in the batcher
inline constexpr char kHeaderModel[] = "nlpflow.model";         // name:version
inline constexpr char kHeaderDlqStage[] = "nlpflow.dlq.stage";
inline constexpr char kHeaderDlqReason[] = "nlpflow.dlq.reason";

class KafkaResultSink : public ResultSink {
 public:
  // on_error is called (from a graph worker) when a message cannot even be
  // queued; the record's offset is then never marked done and the owner is
  // expected to stop the pipeline. All pointers must outlive the sink.
  KafkaResultSink(KafkaSink* producer, OffsetTracker* tracker, bool ordered,
                  std::string output_topic, std::string dead_letter_topic,
                  std::string model_header, std::function<void(const Status&)> on_error)
      : producer_(producer),
        tracker_(tracker),
        ordered_(ordered),
        output_topic_(std::move(output_topic)),
        dead_letter_topic_(std::move(dead_letter_topic)),
        model_header_(std::move(model_header)),
        on_error_(std::move(on_error)) {}

  void Publish(RecordPtr record) override;
  void PublishDeadLetter(RecordPtr record, std::string encoded) override;

 private:
  struct Pending {
    RecordPtr record;
    const std::string* topic;
    std::string value;
    std::vector<Header> headers;
  };
  using PartitionKey = std::pair<std::string, int32_t>;

  void Emit(RecordPtr record, const std::string& topic, std::string value,
            std::vector<Header> headers);
  bool ProduceOne(const Pending& p);  // false: failed, on_error called
  // REQUIRES: order_mutex_ held. Drops waiting records that became stale.
  void DropStaleLocked();

  KafkaSink* producer_;
  OffsetTracker* tracker_;
  const bool ordered_;
  const std::string output_topic_;
  const std::string dead_letter_topic_;
  const std::string model_header_;
  const std::function<void(const Status&)> on_error_;

  std::mutex order_mutex_;  // taken after the producer hold
  // Ordered mode: results waiting for an earlier offset of their partition.
  std::map<PartitionKey, std::map<int64_t, Pending>> waiting_;  // GUARDED_BY(order_mutex_)
  uint64_t seen_fence_generation_ = 0;                          // GUARDED_BY(order_mutex_)
};

}  // namespace nlpflow
