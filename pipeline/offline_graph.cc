#include "pipeline/offline_graph.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <variant>

#include "common/result_sink.h"
#include "nodes/batch/batcher.h"
#include "nodes/decode/decoder.h"
#include "nodes/encode/encoder.h"
#include "pipeline/serve_graph.h"
#include "pipeline/graph_options.h"

namespace nlpflow {
namespace {

// Keeps each record's ids, output and latency, by sequence number.
class CollectingSink : public ResultSink {
 public:
  explicit CollectingSink(size_t n) : rows_(n) {}
  void Publish(RecordPtr r) override { Keep(r); }
  void PublishDeadLetter(RecordPtr r, std::string) override { Keep(r); }
  std::vector<OfflineRow> Take() { return std::move(rows_); }
  int64_t last_us() const { return last_us_.load(); }

 private:
  void Keep(const RecordPtr& r) {
    const int64_t now = NowMicros();
    std::lock_guard<std::mutex> lock(mu_);
    OfflineRow& row = rows_[r->sequence];
    row.ids = std::move(r->encoding.ids);
    if (auto* e = std::get_if<EmbeddingOutput>(&r->output)) row.output = std::move(e->values);
    row.latency_us = now - r->times.arrived_us;
    row.failed = r->failed;
    row.failure_reason = r->failure_reason;
    last_us_.store(std::max(last_us_.load(), now));
  }
  std::mutex mu_;
  std::vector<OfflineRow> rows_;  // GUARDED_BY(mu_)
  std::atomic<int64_t> last_us_{0};
};

}  // namespace

Result<OfflineRun> RunOfflineGraph(const Config& config, const ModelStack& stack,
                                   const std::vector<std::string>& texts, double rate_per_s) {
  CollectingSink sink(texts.size());
  DecodeOptions decode = DecodeOptionsFrom(config);
  decode.format = InputFormat::kText;
  EncodeOptions encode = EncodeOptionsFrom(config, stack);
  encode.format = OutputFormat::kJson;
  NLPFLOW_ASSIGN_OR_RETURN(
      auto graph, ServeGraph::Create(GraphOptionsFrom(config), decode, stack.tokenizer.get(),
                                     BatcherOptionsFrom(config), stack.model.get(), encode,
                                     &sink));
  graph->Start();
  const int64_t start = NowMicros();
  for (size_t i = 0; i < texts.size(); ++i) {
    if (rate_per_s > 0) {
      const int64_t due = start + static_cast<int64_t>(static_cast<double>(i) * 1e6 / rate_per_s);
      const int64_t wait = due - NowMicros();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::microseconds(wait));
    }
    while (graph->in_graph() >= config.pipeline.max_in_flight) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    auto r = std::make_shared<Record>();
    r->sequence = i;
    r->coords = {"offline", 0, static_cast<int64_t>(i)};
    r->payload = texts[i];
    r->times.arrived_us = NowMicros();
    graph->Put(std::move(r));
  }
  NLPFLOW_RETURN_IF_ERROR(graph->Drain(/*timeout_ms=*/24LL * 3600 * 1000));
  OfflineRun run;
  run.wall_s = static_cast<double>(sink.last_us() - start) / 1e6;
  run.rows = sink.Take();
  run.records_per_s = run.wall_s > 0 ? static_cast<double>(texts.size()) / run.wall_s : 0;
  std::vector<int64_t> lat;
  for (const auto& r : run.rows) lat.push_back(r.latency_us);
  if (!lat.empty()) {
    std::sort(lat.begin(), lat.end());
    run.p50_latency_us = lat[lat.size() / 2];
    run.p99_latency_us = lat[std::min(lat.size() - 1, static_cast<size_t>(0.99 * lat.size()))];
  }
  return run;
}

Result<std::vector<std::string>> ReadTexts(const std::string& path, int64_t limit,
                                           std::vector<int>* labels) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + path);
  std::vector<std::string> texts;
  std::string line;
  while (std::getline(in, line) && (limit <= 0 || static_cast<int64_t>(texts.size()) < limit)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    int label = -1;
    if (line.front() == '{') {
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("text") && j["text"].is_string()) {
        line = j["text"].get<std::string>();
        if (j.contains("label") && j["label"].is_number_integer()) label = j["label"].get<int>();
      }
    }
    if (line.empty()) continue;
    texts.push_back(std::move(line));
    if (labels != nullptr) labels->push_back(label);
  }
  return texts;
}

}  // namespace nlpflow
