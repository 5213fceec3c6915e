// infer, the per-batch step: pads a batch's token ids into one tensor batch,
// runs the model and gives every record its output.
#pragma once

#include "common/record.h"
#include "nodes/infer/embedding_model.h"

namespace nlpflow {

// Builds a TokenBatch padded to the longest record of the batch (not to a
// fixed length: padding is wasted work), runs model.Embed and moves each row
// into its record's output; sets times.inferred_us. If the model fails, every
// record of the batch is marked failed at Stage::kInfer with the model's error.
void RunBatch(const EmbeddingModel& model, Batch* batch);

// The padded batch RunBatch feeds to the model (exposed for tests).
TokenBatch MakeTokenBatch(const Batch& batch, int32_t pad_id);

}  // namespace nlpflow
