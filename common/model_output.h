// What a model makes of one record: an embedding, a classification or token
// labels (ModelOutput, a std::variant of the three). Written by the infer step
// (Model::Run, nodes/infer/model.h), completed for token labels by the
// aggregation step (nodes/infer/token_aggregation.h), read by encode.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace nlpflow {

// Label names by label id, shared by every output of one model (the model owns
// one copy; outputs hold a reference so that they stay readable after the
// model is gone).
using LabelNames = std::shared_ptr<const std::vector<std::string>>;

// A sentence vector (task embedding).
struct EmbeddingOutput {
  std::vector<float> values;
};

// One row's labels (task sequence-classification).
struct ClassificationOutput {
  std::vector<float> logits;  // one per label id, raw
  // One per label id: softmax of the logits; a sigmoid per label for
  // multi-label models and for models with one label (cross-encoders,
  // regression), as Hugging Face's text-classification pipeline does.
  std::vector<float> scores;
  LabelNames labels;  // names by id; size() == logits.size()
};

// One entity of a token-classification result. With aggregation "none" one
// per token that is not labelled "O" (`entity` is the token's label, `index`
// its position in the encoding); otherwise one per group of tokens
// (`entity` is the group's label without its B-/I- prefix, `index` is -1).
struct TokenEntity {
  std::string entity;
  float score = 0;
  std::string word;  // the tokens decoded back to text
  int64_t index = -1;
  // [start, end) into the record's text: in Unicode code points (as Hugging
  // Face reports them) and in UTF-8 bytes.
  int64_t start = 0, end = 0;
  int64_t byte_start = 0, byte_end = 0;
};

// Task token-classification: the model writes the logits of every token of
// the encoding (special tokens included); aggregation then fills `entities`.
struct TokenClassificationOutput {
  int64_t num_labels = 0;
  std::vector<float> logits;  // [tokens, num_labels], row-major
  LabelNames labels;
  bool grouped = true;  // entities are groups (aggregation other than "none")
  std::vector<TokenEntity> entities;
};

// monostate: not yet inferred (or the record failed).
using ModelOutput =
    std::variant<std::monostate, EmbeddingOutput, ClassificationOutput, TokenClassificationOutput>;

}  // namespace nlpflow
