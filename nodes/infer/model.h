// The interface every model runtime offers to the infer step (batch_runner):
// a padded TokenBatch in, one output per row. The embedding, sequence-
// classification and token-classification runtimes differ only in what a
// row's output holds.
//
// This header deliberately includes no LibTorch header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodes/infer/embedding_model.h"  // TokenBatch

namespace nlpflow {

enum class ModelTask { kEmbedding, kSequenceClassification, kTokenClassification };

// "embedding", "sequence-classification" or "token-classification".
const char* ModelTaskName(ModelTask task);

// One real token's label (token classification).
struct TokenLabel {
  int64_t position = 0;  // index in the row, 0 = [CLS]
  // Character offsets [begin, end) into the row's text, copied from
  // TokenBatch::offsets; -1 when the batch has none. [CLS]/[SEP] have the
  // tokenizer's (0, 0).
  int64_t begin = -1, end = -1;
  int64_t label_id = 0;
  std::string label;          // id2label[label_id], or "LABEL_<id>"
  float score = 0;            // softmax probability of label_id
  std::vector<float> logits;  // one per label
};

struct RowOutput {
  // kEmbedding: the sentence vector. kSequenceClassification: the logits,
  // one per label. kTokenClassification: empty.
  std::vector<float> values;
  // kSequenceClassification: softmax of the logits (sigmoid per label for
  // problem_type multi_label_classification); the best label and its
  // probability.
  std::vector<float> probabilities;
  int64_t label_id = -1;
  std::string label;
  float score = 0;
  // kTokenClassification: one per real token of the row, in order.
  std::vector<TokenLabel> tokens;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual ModelTask task() const = 0;
  // One RowOutput per row of `batch`. INVALID_ARGUMENT for a malformed batch
  // (ValidateTokenBatch), INTERNAL if LibTorch fails. Thread-safe.
  virtual Result<std::vector<RowOutput>> Run(const TokenBatch& batch) const = 0;
  // Label names by id; empty for embedding models.
  virtual const std::vector<std::string>& labels() const = 0;
};

}  // namespace nlpflow
