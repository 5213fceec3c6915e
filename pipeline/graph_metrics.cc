#include "pipeline/graph_metrics.h"

#include <algorithm>
#include <string>

namespace nlpflow {

int64_t GraphCounts::dead_total() const {
  int64_t total = 0;
  for (int64_t d : dead) total += d;
  return total;
}

GraphCounts GraphCounters::Read() const {
  GraphCounts c;
  for (int i = 0; i < kNumStages; ++i) c.dead[i] = dead_[i].load();
  c.out = out_.load();
  c.in = in_.load();
  return c;
}

GraphCounts GraphCounters::Snapshot() const {
  GraphCounts a = Read();
  for (int i = 0; i < 1000; ++i) {
    GraphCounts b = Read();
    if (a == b) return a;
    a = b;
  }
  return a;
}

std::vector<double> LatencyBucketsSeconds() {
  // Literals, not products: 1e-5 * 10 is not the double nearest 1e-4.
  return {1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 0.001, 0.0025, 0.005, 0.01,
          0.025,  0.05,   0.1,  0.25, 0.5,    1,    2.5,   5,      10};
}

GraphMetrics GraphMetrics::Register(MetricsRegistry* registry) {
  GraphMetrics m;
  const char* queue_help =
      "Seconds a record waited before a stage (for batch: until its batch closed)";
  const char* compute_help =
      "Seconds a stage worked on a record (for sink: produce to broker acknowledgement)";
  for (Stage s : {Stage::kDecode, Stage::kTokenize, Stage::kBatch, Stage::kInfer,
                  Stage::kEncode}) {
    m.queue_seconds[static_cast<int>(s)] =
        registry->AddHistogram("nlpflow_stage_queue_seconds", queue_help,
                               LatencyBucketsSeconds(), {{"stage", StageName(s)}});
  }
  for (Stage s : {Stage::kDecode, Stage::kTokenize, Stage::kInfer, Stage::kEncode,
                  Stage::kSink}) {
    m.compute_seconds[static_cast<int>(s)] =
        registry->AddHistogram("nlpflow_stage_compute_seconds", compute_help,
                               LatencyBucketsSeconds(), {{"stage", StageName(s)}});
  }
  m.record_seconds = registry->AddHistogram(
      "nlpflow_record_seconds",
      "Seconds a result spent in the graph: arrived from the source to encoded (the sum of the "
      "stages' queue and compute before the sink)",
      LatencyBucketsSeconds());
  m.batch_size = registry->AddHistogram("nlpflow_batch_size", "Records per batch run by the model",
                                        ExponentialBuckets(1, 2, 13));
  const char* tokens_help =
      "Tokens per batch: real (sum of the records' lengths) and padded (records times the "
      "longest length); padding ratio = 1 - real_sum / padded_sum";
  m.batch_real_tokens = registry->AddHistogram("nlpflow_batch_tokens", tokens_help,
                                               ExponentialBuckets(16, 2, 17), {{"kind", "real"}});
  m.batch_padded_tokens = registry->AddHistogram(
      "nlpflow_batch_tokens", tokens_help, ExponentialBuckets(16, 2, 17), {{"kind", "padded"}});
  return m;
}

namespace {

void ObserveSpan(Histogram* h, int64_t from_us, int64_t to_us) {
  // A stamp of 0 means the stage was not reached (or not stamped): no sample.
  if (h == nullptr || from_us == 0 || to_us == 0) return;
  h->Observe(static_cast<double>(std::max<int64_t>(0, to_us - from_us)) * 1e-6);
}

Histogram* At(const std::array<Histogram*, kNumStages>& a, Stage s) {
  return a[static_cast<int>(s)];
}

}  // namespace

void GraphMetrics::ObserveResult(const StageTimes& t) const {
  ObserveSpan(At(queue_seconds, Stage::kDecode), t.arrived_us, t.decode_started_us);
  ObserveSpan(At(compute_seconds, Stage::kDecode), t.decode_started_us, t.decoded_us);
  ObserveSpan(At(queue_seconds, Stage::kTokenize), t.decoded_us, t.tokenize_started_us);
  ObserveSpan(At(compute_seconds, Stage::kTokenize), t.tokenize_started_us, t.tokenized_us);
  ObserveSpan(At(queue_seconds, Stage::kBatch), t.tokenized_us, t.batched_us);
  ObserveSpan(At(queue_seconds, Stage::kInfer), t.batched_us, t.infer_started_us);
  ObserveSpan(At(compute_seconds, Stage::kInfer), t.infer_started_us, t.inferred_us);
  ObserveSpan(At(queue_seconds, Stage::kEncode), t.inferred_us, t.encode_started_us);
  ObserveSpan(At(compute_seconds, Stage::kEncode), t.encode_started_us, t.encoded_us);
  ObserveSpan(record_seconds, t.arrived_us, t.encoded_us);
}

void GraphMetrics::ObserveBatch(const Batch& batch) const {
  if (batch_size == nullptr) return;
  size_t longest = 0, real = 0;
  for (const auto& r : batch.records) {
    longest = std::max(longest, r->encoding.ids.size());
    real += r->encoding.ids.size();
  }
  batch_size->Observe(static_cast<double>(batch.records.size()));
  batch_real_tokens->Observe(static_cast<double>(real));
  batch_padded_tokens->Observe(static_cast<double>(longest * batch.records.size()));
}

void GraphMetrics::ObserveDelivery(int64_t latency_us) const {
  Histogram* h = At(compute_seconds, Stage::kSink);
  if (h == nullptr || latency_us < 0) return;
  h->Observe(static_cast<double>(latency_us) * 1e-6);
}

}  // namespace nlpflow
