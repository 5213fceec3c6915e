#include "nodes/infer/batch_runner.h"

#include <algorithm>
#include <string>

namespace nlpflow {

TokenBatch MakeTokenBatch(const Batch& batch, int32_t pad_id) {
  TokenBatch t;
  t.batch = static_cast<int64_t>(batch.records.size());
  for (const auto& r : batch.records) {
    t.seq_len = std::max<int64_t>(t.seq_len, static_cast<int64_t>(r->encoding.ids.size()));
  }
  const size_t n = static_cast<size_t>(t.batch * t.seq_len);
  t.input_ids.assign(n, pad_id);
  t.attention_mask.assign(n, 0);
  t.token_type_ids.assign(n, 0);
  for (int64_t i = 0; i < t.batch; ++i) {
    const Encoding& e = batch.records[i]->encoding;
    const size_t row = static_cast<size_t>(i * t.seq_len);
    for (size_t j = 0; j < e.ids.size(); ++j) {
      t.input_ids[row + j] = e.ids[j];
      t.attention_mask[row + j] = 1;
      if (j < e.type_ids.size()) t.token_type_ids[row + j] = e.type_ids[j];
    }
  }
  return t;
}

void RunBatch(const Model& model, int32_t pad_id, Batch* batch) {
  if (batch->records.empty()) return;
  const TokenBatch tokens = MakeTokenBatch(*batch, pad_id);
  Result<std::vector<ModelOutput>> out = model.Run(tokens);
  const int64_t now = NowMicros();
  if (out.ok() && out->size() != batch->records.size()) {
    out = Status::Internal("model returned " + std::to_string(out->size()) + " outputs for " +
                           std::to_string(batch->records.size()) + " rows");
  }
  if (!out.ok()) {
    for (auto& r : batch->records) {
      r->Fail(Stage::kInfer, out.status().ToString());
      r->times.inferred_us = now;
    }
    return;
  }
  for (size_t i = 0; i < batch->records.size(); ++i) {
    Record& r = *batch->records[i];
    r.output = std::move((*out)[i]);
    r.times.inferred_us = now;
  }
}

}  // namespace nlpflow
