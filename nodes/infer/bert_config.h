// The parts of a Hugging Face BERT config.json that the encoder needs.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace nlpflow {

// Sizes and options of a BERT-like encoder (any family of encoder_family.h),
// the same fields for every family: DistilBERT's own keys (dim, n_layers,
// n_heads, hidden_dim, activation) are read into these.
struct BertConfig {
  // config.json's model_type ("bert" when absent): selects the weight names
  // and differences of encoder_family.h.
  std::string model_type = "bert";
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  // False for families without token type embeddings (DistilBERT, MPNet):
  // token type ids are then ignored, as transformers ignores them.
  bool token_types = true;
  // Position ids start here: 0 for BERT, pad_token_id + 1 for RoBERTa,
  // XLM-RoBERTa and MPNet (whose position ids count the non-padding tokens
  // after padding_idx; a real token equal to pad_token_id gets padding_idx, as
  // transformers' create_position_ids_from_input_ids does). pad_token_id is
  // kept for that.
  int64_t position_offset = 0;
  int64_t pad_token_id = 0;
  // MPNet: buckets of the relative-position attention bias (32), shared by all
  // layers; 0 for the others.
  int64_t relative_attention_num_buckets = 0;
  // ELECTRA: width of the embeddings, projected to hidden_size when they
  // differ. hidden_size for the others.
  int64_t embedding_size = 0;
  double layer_norm_eps = 1e-12;
  // "gelu" (exact, erf), "gelu_new" / "gelu_pytorch_tanh" (tanh approximation),
  // "relu" or "silu" ("swish").
  std::string hidden_act = "gelu";

  // Physically pruned models (nlpflow prune), from config.json's
  // "nlpflow_intermediate_sizes" and "nlpflow_attention_heads": one entry per
  // layer, each at least 1. Empty: intermediate_size and num_attention_heads
  // in every layer. head_dim() stays hidden_size / num_attention_heads, so a
  // layer with fewer heads has narrower query/key/value projections.
  std::vector<int64_t> layer_intermediate_sizes;
  std::vector<int64_t> layer_attention_heads;

  // Quantization the folder asks for (nlpflow quantize), from config.json's
  // "nlpflow_quantization": {"mode": "dynamic_int8" | "static_int8",
  // "activation_ranges": {"<layer>.<linear>": {"input": [lo, hi], "output":
  // [lo, hi], "rows": [lo, hi]}}} with <linear> one of qkv, attention_out,
  // intermediate, output. "input" is the quantization range of the Linear's
  // (smoothed) input; "rows" (optional) the bounds beyond which a row is
  // computed in fp32 instead. Empty mode: none. static_int8 needs "input" and
  // "output" for every Linear layer.
  std::string quantization;
  struct Range {
    float lo = 0, hi = 0;
  };
  struct LinearRanges {
    Range input, output;
    bool has_rows = false;
    Range rows;
  };
  std::map<std::string, LinearRanges> activation_ranges;
  // static_int8: bits of the input codes, 7 (weights 8 bits) or 8 (weights 7
  // bits); config.json's nlpflow_quantization.activation_bits, 7 when absent.
  int activation_bits = 7;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // The longest row the position table allows (512 for RoBERTa's 514).
  int64_t max_positions() const { return max_position_embeddings - position_offset; }
  // The type ids a batch may carry: type_vocab_size, or any when the family
  // has no token types (for ValidateTokenBatch).
  int64_t accepted_type_ids() const { return token_types ? type_vocab_size : INT64_MAX; }
  int64_t intermediate_size_of(int64_t layer) const {
    return layer_intermediate_sizes.empty() ? intermediate_size
                                            : layer_intermediate_sizes[layer];
  }
  int64_t attention_heads_of(int64_t layer) const {
    return layer_attention_heads.empty() ? num_attention_heads : layer_attention_heads[layer];
  }
};

// Reads `path` (a config.json). The sizes are required; the others take the
// Hugging Face defaults above when absent. NOT_FOUND if the file is missing,
// INVALID_ARGUMENT naming the key for a bad or unsupported value (for example
// model_type "t5": "<path>: model_type 't5' is not supported; supported:
// bert, distilbert, ...", position_embedding_type "relative_key",
// DistilBERT's sinusoidal_pos_embds, or hidden_size not divisible by
// num_attention_heads).
Result<BertConfig> LoadBertConfig(const std::string& path);

// Parses config.json text; `path` is only used in messages.
Result<BertConfig> ParseBertConfig(const std::string& json_text, const std::string& path);

}  // namespace nlpflow
