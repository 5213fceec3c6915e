// Sentence embeddings from an encoder checkpoint, with LibTorch.
//
// Loads a Hugging Face / sentence-transformers model folder directly
// (config.json + model.safetensors, sharded safetensors or pytorch_model.bin;
// no Python, no export step) of any family of encoder_family.h (BERT,
// DistilBERT, RoBERTa, XLM-RoBERTa, MPNet, ELECTRA), runs the encoder on a padded batch of token ids, pools the token vectors into one
// vector per row and optionally L2-normalizes it. For all-MiniLM-L6-v2 the
// result matches sentence-transformers' encode() to fp32 rounding.
//
// This header deliberately includes no LibTorch header.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodes/infer/model.h"
#include "nodes/infer/token_batch.h"

namespace nlpflow {

class BertEncoder;

struct ModelOptions {
  // Model folder: config.json and the weights (model.safetensors,
  // model.safetensors.index.json and its shards, or pytorch_model.bin; F32,
  // F16 or BF16, converted to float32 at load); optionally the
  // sentence-transformers files modules.json, 1_Pooling/config.json and
  // sentence_bert_config.json. The folder name becomes the model's name().
  std::string path = "";

  // How token vectors become the sentence vector: "mean" (average over the
  // real tokens), "cls" (the first token) or "max" (per-dimension maximum over
  // the real tokens). Empty: what the folder's sentence-transformers Pooling
  // config says (mean for all-MiniLM-L6-v2), or "mean" if it has none.
  std::string pooling = "";

  // L2-normalize the pooled vector, as sentence-transformers does for models
  // with a Normalize module (all-MiniLM-L6-v2 has one). Cosine similarity of
  // normalized vectors is a plain dot product.
  bool normalize = true;

  // LibTorch intra-op threads; OpenBLAS's own pool (if the process uses
  // OpenBLAS) is set to the same so that the two do not oversubscribe the
  // cores. Both are process-wide settings: Load() applies them, and the last
  // model loaded wins. With several model instances running in parallel,
  // keep this at 1 and scale with instances instead.
  int intra_op_threads = 1;
  // Single-record latency (linear "program" only): a batch that runs while no
  // other batch of this model does uses this many threads (the cores of the
  // idle instances); k batches at once use this / k each, at least 1. 0: off,
  // every batch uses intra_op_threads. E.g. 2 on 2 cores with 2 instances.
  int lone_batch_threads = 0;

  // How the fp32 encoder runs: "auto" or "program" (the oneDNN program of
  // nodes/infer/encoder_program.h: packed weights, fused post-ops and
  // attention), or the ATen paths it replaced, kept for comparison: "onednn"
  // (at::mkldnn_linear) and "blas" (the process's libblas.so.3).
  // Same results to fp32 rounding (nodes/infer/README.md).
  std::string linear = "auto";

  // "fp32", or "int8": the Linear layers get int8 weights, quantized per
  // output channel at load, and int8 activations quantized per call
  // (dynamic quantization, oneDNN's quantized engine; `linear` is then
  // ignored). Attention, LayerNorm, embeddings and pooling stay fp32.
  // Cosine to fp32 0.995 on average on all-MiniLM-L6-v2, 0.98 for the
  // shortest texts (nodes/infer/README.md has the measured accuracy and speed).
  std::string precision = "fp32";
  // A model folder written by `nlpflow quantize` carries its own precision in
  // config.json ("nlpflow_quantization": dynamic_int8, or static_int8 with
  // calibrated activation ranges); with precision "fp32" (the default) the
  // folder's precision is used, so such a folder needs no other setting.
  // precision "int8" runs every folder as dynamic int8.
};

// OK, or INVALID_ARGUMENT naming the first bad field.
Status ValidateModelOptions(const ModelOptions& options);

class EmbeddingModel : public Model {
 public:
  // Reads and checks the model folder. NOT_FOUND naming the path when the
  // folder or a required file is missing; DATA_LOSS naming the file (and the
  // tensor) when model.safetensors is truncated or corrupt; INVALID_ARGUMENT
  // or NOT_FOUND naming the tensor and both shapes when the weights do not
  // match config.json.
  static Result<std::unique_ptr<EmbeddingModel>> Load(const ModelOptions& options);

  EmbeddingModel(const EmbeddingModel&) = delete;
  EmbeddingModel& operator=(const EmbeddingModel&) = delete;
  ~EmbeddingModel() override;

  // Returns batch * dim() floats, row-major, one vector per row.
  // INVALID_ARGUMENT for a malformed batch (sizes, mask not right-padded, a row
  // without real tokens, a row longer than max_positions(), an id out of the
  // vocabulary); INTERNAL if LibTorch fails.
  // Nothing is computed on padding: the padding is dropped before the encoder,
  // so a row's vector does not depend on how much it is padded, and differs
  // between batches only by fp32 rounding in the GEMMs.
  // Thread-safe: any number of threads may call Embed() at once. They share
  // the weights, which are read-only after Load(); each call has its own
  // activations and runs under c10::InferenceMode.
  Result<std::vector<float>> Embed(const TokenBatch& batch) const;

  // Model: Embed, one EmbeddingOutput per row.
  ModelTask task() const override { return ModelTask::kEmbedding; }
  Result<std::vector<ModelOutput>> Run(const TokenBatch& batch) const override;
  const std::vector<std::string>& labels() const override { return no_labels_; }

  // Size of one embedding (384 for all-MiniLM-L6-v2).
  int64_t dim() const { return dim_; }
  // Longest row the encoder accepts (max_position_embeddings, 512; for
  // RoBERTa-like position ids, max_position_embeddings - pad_token_id - 1).
  int64_t max_positions() const override { return max_positions_; }
  // The length sentence-transformers truncates to (sentence_bert_config.json's
  // max_seq_length, 256 for all-MiniLM-L6-v2; max_positions() if absent).
  // Tokenizers should truncate to this to match sentence-transformers.
  int64_t max_seq_length() const override { return max_seq_length_; }
  // The model folder's name, e.g. "all-MiniLM-L6-v2".
  const std::string& name() const { return name_; }
  // The pooling in effect: "mean", "cls" or "max".
  const std::string& pooling() const { return pooling_; }
  // The Linear backend in effect: "onednn", "blas", "int8" (dynamic) or
  // "int8-static".
  const std::string& linear() const { return linear_; }
  // "fp32", "int8" (dynamic) or "int8-static".
  const std::string& precision() const { return precision_; }
  // One line per Linear layer with the dtype and quantization scheme of the
  // weights that run, e.g. "0 qkv QInt8 per_channel_affine [1152, 384]".
  std::vector<std::string> DescribeLinears() const;

 private:
  EmbeddingModel() = default;

  std::unique_ptr<BertEncoder> encoder_;
  std::string name_;
  std::string pooling_;
  std::string linear_;
  std::string precision_;
  bool normalize_ = true;
  int64_t dim_ = 0;
  int64_t max_positions_ = 0;
  int64_t max_seq_length_ = 0;
  int64_t vocab_size_ = 0;
  int64_t type_vocab_size_ = 0;
  const std::vector<std::string> no_labels_;
};

}  // namespace nlpflow
