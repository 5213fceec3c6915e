#include "pipeline/kafka_result_sink.h"

#include "nodes/encode/encoder.h"

namespace nlpflow {

namespace {

std::optional<std::string_view> KeyOf(const Record& r) {
  if (!r.key) return std::nullopt;
  return std::string_view(*r.key);
}

}  // namespace

void KafkaResultSink::Publish(RecordPtr record) {
  std::vector<Header> headers = record->headers;
  const StageDurations d = DurationsOf(record->times);
  headers.push_back({kHeaderTotalUs, std::to_string(d.total_us)});
  headers.push_back({kHeaderQueueUs, std::to_string(d.queue_us)});
  headers.push_back({kHeaderInferUs, std::to_string(d.infer_us)});
  headers.push_back({kHeaderModel, model_header_});
  Status st = producer_->Produce(output_topic_, KeyOf(*record), record->encoded, headers,
                                 DeliveryTag{record->coords, record->sequence});
  if (!st.ok()) on_error_(st.WithContext("producing to " + output_topic_));
}

void KafkaResultSink::PublishDeadLetter(RecordPtr record, std::string encoded) {
  std::vector<Header> headers = record->headers;
  headers.push_back({kHeaderDlqStage, StageName(record->failed_stage)});
  headers.push_back({kHeaderDlqReason, record->failure_reason});
  Status st = producer_->Produce(dead_letter_topic_, KeyOf(*record), encoded, headers,
                                 DeliveryTag{record->coords, record->sequence});
  if (!st.ok()) on_error_(st.WithContext("producing to " + dead_letter_topic_));
}

}  // namespace nlpflow
