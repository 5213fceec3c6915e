// infer, the per-batch step: pads a batch's token ids into one TokenBatch,
// runs the model and gives every record its typed output.
#pragma once

#include <cstdint>

#include "common/record.h"
#include "nodes/infer/model.h"
#include "nodes/infer/token_batch.h"

namespace nlpflow {

// Builds a TokenBatch padded with `pad_id` (the tokenizer's) to the longest
// record of the batch (not to a fixed length: padding is wasted work), runs
// model.Run and moves each row's output into its record; sets
// times.inferred_us. If the model fails, every record of the batch is marked
// failed at Stage::kInfer with the model's error.
void RunBatch(const Model& model, int32_t pad_id, Batch* batch);

// The padded batch RunBatch feeds to the model (exposed for tests).
TokenBatch MakeTokenBatch(const Batch& batch, int32_t pad_id);

}  // namespace nlpflow
