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
  std::string value = std::move(record->encoded);
  Emit(std::move(record), output_topic_, std::move(value), std::move(headers));
}

void KafkaResultSink::PublishDeadLetter(RecordPtr record, std::string encoded) {
  std::vector<Header> headers = record->headers;
  headers.push_back({kHeaderDlqStage, StageName(record->failed_stage)});
  headers.push_back({kHeaderDlqReason, record->failure_reason});
  Emit(std::move(record), dead_letter_topic_, std::move(encoded), std::move(headers));
}

bool KafkaResultSink::ProduceOne(const Pending& p) {
  const Record& r = *p.record;
  Status st = producer_->Produce(*p.topic, KeyOf(r), p.value, p.headers,
                                 DeliveryTag{r.coords, r.sequence});
  if (!st.ok()) on_error_(st.WithContext("producing to " + *p.topic));
  return st.ok();
}

void KafkaResultSink::DropStaleLocked() {
  const uint64_t generation = tracker_->fence_generation();
  if (generation == seen_fence_generation_) return;
  seen_fence_generation_ = generation;
  for (auto part = waiting_.begin(); part != waiting_.end();) {
    for (auto it = part->second.begin(); it != part->second.end();) {
      const Record& r = *it->second.record;
      if (tracker_->IsCurrent(r.coords.topic, r.coords.partition, r.sequence)) {
        ++it;
        continue;
      }
      tracker_->Release(r.coords.topic, r.coords.partition, r.coords.offset, r.sequence);
      it = part->second.erase(it);
    }
    part = part->second.empty() ? waiting_.erase(part) : std::next(part);
  }
}

void KafkaResultSink::Emit(RecordPtr record, const std::string& topic, std::string value,
                           std::vector<Header> headers) {
  // Nothing ends a transaction or fences a partition while this is held.
  auto hold = producer_->HoldProduce();
  const Coordinates& c = record->coords;
  if (!tracker_->IsCurrent(c.topic, c.partition, record->sequence)) {
    tracker_->Release(c.topic, c.partition, c.offset, record->sequence);
    return;
  }
  Pending pending{std::move(record), &topic, std::move(value), std::move(headers)};
  if (!ordered_) {
    ProduceOne(pending);
    return;
  }
  std::lock_guard<std::mutex> lock(order_mutex_);
  DropStaleLocked();
  const PartitionKey key(pending.record->coords.topic, pending.record->coords.partition);
  auto& waiting = waiting_[key];
  waiting[pending.record->coords.offset] = std::move(pending);
  // Produce every result of the partition whose predecessors are produced.
  while (!waiting.empty()) {
    std::optional<int64_t> next = tracker_->OldestUnfinished(key.first, key.second);
    if (!next) break;
    auto it = waiting.find(*next);
    if (it == waiting.end()) break;
    Pending p = std::move(it->second);
    waiting.erase(it);
    // Not produced: never done, so never committed (the pipeline stops).
    if (!ProduceOne(p)) break;
    const Record& r = *p.record;
    (void)tracker_->MarkDone(r.coords.topic, r.coords.partition, r.coords.offset, r.sequence);
  }
  if (waiting.empty()) waiting_.erase(key);
}

}  // namespace nlpflow
