// Running a list of texts through the serve graph (decode -> tokenize ->
// batch -> infer -> encode, the serve graph's nodes) and collecting, per
// text, what the offline commands need: token ids, the model's output, the
// end-to-end latency. The source is a vector; the sink keeps results in
// memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/config.h"
#include "pipeline/model_stack.h"

namespace nlpflow {

struct OfflineRow {
  std::vector<int32_t> ids;
  std::vector<float> output;  // the embedding (empty for other tasks)
  int64_t latency_us = 0;  // handed to the graph -> published
  bool failed = false;
  std::string failure_reason;
};

struct OfflineRun {
  std::vector<OfflineRow> rows;  // in input order
  double wall_s = 0;             // first Put to last result
  double records_per_s = 0;
  int64_t p50_latency_us = 0, p99_latency_us = 0;
};

// Puts every text into the graph (as input.format text, whatever the
// config says), at once (`rate_per_s` 0: bounded only by
// pipeline.max_in_flight) or paced at `rate_per_s` records per second, and
// waits for all results. A text the graph rejects is a failed row, not an
// error.
Result<OfflineRun> RunOfflineGraph(const Config& config, const ModelStack& stack,
                                   const std::vector<std::string>& texts, double rate_per_s = 0);

// Texts of a file: one per line; a line that is a JSON object with a string
// "text" gives that field. Empty lines are skipped. `labels` (if not null)
// receives the JSON "label" (0/1; -1 when absent). `limit` > 0 keeps the
// first `limit` texts. NOT_FOUND naming the file when it cannot be read.
Result<std::vector<std::string>> ReadTexts(const std::string& path, int64_t limit = 0,
                                           std::vector<int>* labels = nullptr);

}  // namespace nlpflow
