// The parts of a Hugging Face BERT config.json that the encoder needs.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace nlpflow {

struct BertConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  // "gelu" (exact, erf), "gelu_new" / "gelu_pytorch_tanh" (tanh approximation)
  // or "relu".
  std::string hidden_act = "gelu";

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

// Reads `path` (a config.json). The sizes are required; the others take the
// Hugging Face defaults above when absent. NOT_FOUND if the file is missing,
// INVALID_ARGUMENT naming the key for a bad or unsupported value (for example
// model_type "roberta", position_embedding_type "relative_key", or
// hidden_size not divisible by num_attention_heads).
Result<BertConfig> LoadBertConfig(const std::string& path);

// Parses config.json text; `path` is only used in messages.
Result<BertConfig> ParseBertConfig(const std::string& json_text, const std::string& path);

}  // namespace nlpflow
