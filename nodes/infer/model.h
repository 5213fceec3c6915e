// The interface every model runtime offers to the infer step (batch_runner):
// a padded TokenBatch in, one typed output per row (common/model_output.h).
// The graphs hold a Model*, never a concrete runtime, so that a runtime (the
// native BERT embedding model and classifiers, TorchScript, a test fake) is
// chosen at load time only.
//
// This header deliberately includes no LibTorch header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/model_output.h"
#include "common/status.h"
#include "nodes/infer/token_batch.h"

namespace nlpflow {

enum class ModelTask { kEmbedding, kSequenceClassification, kTokenClassification };

// "embedding", "sequence-classification" or "token-classification".
const char* ModelTaskName(ModelTask task);

class Model {
 public:
  virtual ~Model() = default;
  // Which alternative of ModelOutput Run returns: EmbeddingOutput,
  // ClassificationOutput or TokenClassificationOutput (logits only; entities
  // are left to the aggregation step).
  virtual ModelTask task() const = 0;
  // One output per row of `batch`, in row order. INVALID_ARGUMENT for a
  // malformed batch (ValidateTokenBatch), INTERNAL if the runtime fails.
  // Thread-safe: any number of threads may call Run at once.
  virtual Result<std::vector<ModelOutput>> Run(const TokenBatch& batch) const = 0;
  // Label names by id; empty for embedding models.
  virtual const std::vector<std::string>& labels() const = 0;
  // The longest row Run accepts, special tokens included; 0 if the runtime
  // does not know (then the tokenizer's own truncation applies).
  virtual int64_t max_positions() const = 0;
  // The length to truncate to by default: what the model was trained with
  // when the folder says so (sentence-transformers' max_seq_length), else
  // max_positions().
  virtual int64_t max_seq_length() const { return max_positions(); }
};

}  // namespace nlpflow
