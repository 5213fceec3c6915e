// ResultSink over a KafkaSink: results to the output topic, dead letters to
// the dead-letter topic. The input's key is kept and its headers forwarded;
// timing headers are added (names below). Delivery reports come back through
// the KafkaSink's callback, which the owner wires to the offset tracker.
#pragma once

#include <functional>
#include <string>

#include "common/result_sink.h"
#include "connectors/kafka/kafka_sink.h"

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
  KafkaResultSink(KafkaSink* producer, std::string output_topic,
                  std::string dead_letter_topic, std::string model_header,
                  std::function<void(const Status&)> on_error)
      : producer_(producer),
        output_topic_(std::move(output_topic)),
        dead_letter_topic_(std::move(dead_letter_topic)),
        model_header_(std::move(model_header)),
        on_error_(std::move(on_error)) {}

  void Publish(RecordPtr record) override;
  void PublishDeadLetter(RecordPtr record, std::string encoded) override;

 private:
  KafkaSink* producer_;
  const std::string output_topic_;
  const std::string dead_letter_topic_;
  const std::string model_header_;
  const std::function<void(const Status&)> on_error_;
};

}  // namespace nlpflow
