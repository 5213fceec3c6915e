// The BERT encoder forward pass written with ATen ops.
//
// INTERNAL to nodes/infer: this header includes ATen and must only be included
// from nodes/infer/*.cc. Public headers (embedding_model.h) stay LibTorch-free
// because a translation unit that includes LibTorch takes tens of seconds to
// compile.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "nodes/infer/bert_config.h"
#include "nodes/infer/safetensors.h"

namespace nlpflow {

// The real tokens of a right-padded batch, row after row: the padding is
// dropped before the encoder, which computes nothing on it. The dense layers
// (almost all of the FLOPs) run on all tokens at once; attention runs per run
// of consecutive rows of equal length, which needs no mask.
struct PackedTokens {
  int64_t rows = 0;
  std::vector<int64_t> lengths;  // per row, each >= 1
  // Per real token, in row order:
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;
  std::vector<int64_t> positions;  // index inside its row
  int64_t tokens() const { return static_cast<int64_t>(ids.size()); }
};

class BertEncoder {
 public:
  // Copies the weights out of `file` (names with or without a "bert." prefix)
  // and checks every shape against `config`. NOT_FOUND for a missing tensor,
  // INVALID_ARGUMENT for a shape mismatch; both name the tensor.
  // onednn_linear: keep Linear weights as oneDNN tensors and run the Linear
  // layers through oneDNN instead of the generic BLAS.
  static Result<std::unique_ptr<BertEncoder>> Load(const BertConfig& config,
                                                   const SafetensorsFile& file,
                                                   bool onednn_linear);

  // Last hidden states of the real tokens: [tokens.tokens(), hidden], float.
  // REQUIRES: ids < vocab_size, type_ids < type_vocab_size, positions <
  // max_position_embeddings (the caller validates). Throws c10::Error on
  // failure inside ATen. Thread-safe: reads the weights only.
  at::Tensor Forward(const PackedTokens& tokens) const;

  const BertConfig& config() const { return config_; }

 private:
  struct Linear {
    at::Tensor weight;  // [out, in]; oneDNN layout when onednn_linear
    at::Tensor bias;    // [out]
  };
  struct LayerNorm {
    at::Tensor weight, bias;
  };
  struct Layer {
    Linear qkv;  // query, key and value fused: [3 * hidden, hidden]
    Linear attention_out;
    LayerNorm attention_norm;
    Linear intermediate;
    Linear output;
    LayerNorm output_norm;
  };

  BertEncoder(BertConfig config, bool onednn_linear)
      : config_(std::move(config)), onednn_linear_(onednn_linear) {}

  at::Tensor ApplyLinear(const at::Tensor& x, const Linear& linear) const;
  at::Tensor ApplyLayerNorm(const at::Tensor& x, const LayerNorm& norm) const;
  at::Tensor Activation(const at::Tensor& x) const;
  // qkv: [tokens, 3 * hidden] -> context [tokens, hidden].
  at::Tensor SelfAttention(const at::Tensor& qkv, const PackedTokens& tokens) const;
  // Attention of `rows` unpadded rows of `len` tokens each:
  // qkv [rows * len, 3 * hidden] -> context [rows * len, hidden].
  at::Tensor Attend(const at::Tensor& qkv, int64_t rows, int64_t len) const;

  const BertConfig config_;
  const bool onednn_linear_;
  at::Tensor word_embeddings_, position_embeddings_, token_type_embeddings_;
  LayerNorm embedding_norm_;
  std::vector<Layer> layers_;
};

}  // namespace nlpflow
