// A trainable copy of a BERT encoder with mean pooling and L2 normalization
// (the sentence-embedding model that nodes/infer runs), for the offline
// graphs: distillation, pruning, calibration.
//
// The forward pass is written with ATen ops on tensors that may require
// gradients, so autograd trains it; on the same weights it computes what
// EmbeddingModel computes in fp32 (tests/nodes/compress checks 1e-5). Unlike
// the runtime it takes a padded [batch, seq] batch: the Linear layers run
// on the real tokens only (packed), attention on the padded layout with a
// mask.
//
// INTERNAL to nodes/compress: this header includes ATen; the public headers
// of nodes/compress do not.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodes/infer/bert_config.h"

namespace nlpflow {

struct StudentLinear {
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out]
};

struct StudentLayer {
  StudentLinear query, key, value, attention_out, intermediate, output;
  at::Tensor attention_norm_weight, attention_norm_bias;
  at::Tensor output_norm_weight, output_norm_bias;
  int64_t heads = 0;
};

// Linear layer names as the runtime's int8 code and config.json's
// activation ranges name them.
enum class LinearSite { kQkv, kAttentionOut, kIntermediate, kOutput };
const char* LinearSiteName(LinearSite site);

// Called during Forward for each Linear layer with its input and its output
// without the bias, both [real tokens, features] (for qkv: query, key and
// value outputs side by side, as the runtime fuses them).
using LinearObserver = std::function<void(int64_t layer, LinearSite site,
                                          const at::Tensor& input,
                                          const at::Tensor& output_without_bias)>;

class StudentBert {
 public:
  // config.json + model.safetensors of `dir` (names with or without "bert.").
  // Errors name the file and the tensor, as the runtime's loader.
  static Result<StudentBert> Load(const std::string& dir);

  // ids, mask: [batch, seq] int64, right-padded (mask 1s then 0s).
  // Returns the mean-pooled, L2-normalized embeddings [batch, hidden].
  at::Tensor Forward(const at::Tensor& ids, const at::Tensor& mask,
                     const LinearObserver& observer = nullptr) const;
  // As Forward, and `*tokens` gets the last layer's hidden states of the real
  // tokens, row after row: [real tokens, hidden].
  at::Tensor Forward(const at::Tensor& ids, const at::Tensor& mask, at::Tensor* tokens) const;

  // The tensors training updates: everything except the word embeddings
  // (23% of MiniLM's weights, touched sparsely; kept frozen).
  std::vector<at::Tensor> TrainableParameters() const;
  void SetRequiresGrad(bool requires_grad);

  // Keeps only `layers` (teacher layer indices, increasing).
  Status KeepLayers(const std::vector<int64_t>& layers);
  // Keeps FFN neurons `keep` (indices into the layer's intermediate
  // dimension) of `layer`: intermediate rows and output columns.
  void KeepFfnNeurons(int64_t layer, const at::Tensor& keep);
  // Keeps attention heads `keep` of `layer`: query/key/value rows and
  // attention_out columns.
  void KeepHeads(int64_t layer, const std::vector<int64_t>& keep);

  // What a model folder holds besides the encoder (a BertFor* model: its
  // encoder under "bert.", the head's tensors beside it).
  struct SaveLayout {
    // Put before every encoder tensor's name.
    std::string prefix;
    // Written under their own names, after the encoder's.
    std::vector<std::pair<std::string, at::Tensor>> extra_tensors;
    // Copy modules.json, 1_Pooling/ and the other sentence-transformers
    // files (false: only the tokenizer's).
    bool sentence_transformers_files = true;
  };

  // Writes `dir` (created if needed): model.safetensors, config.json (the
  // source's, with the sizes updated and `extra_config` merged in) and the
  // tokenizer and (as `layout` says) sentence-transformers files copied from
  // `source_dir`. `extra_config` is JSON text of an object (may be "{}").
  Status Save(const std::string& dir, const std::string& source_dir,
              const std::string& extra_config = "{}") const;
  Status Save(const std::string& dir, const std::string& source_dir,
              const std::string& extra_config, const SaveLayout& layout) const;

  const BertConfig& config() const { return config_; }
  std::vector<StudentLayer>& layers() { return layers_; }
  const std::vector<StudentLayer>& layers() const { return layers_; }
  // The LayerNorm whose output `layer`'s qkv reads (the previous layer's
  // output norm, or the embeddings' for layer 0).
  std::pair<at::Tensor, at::Tensor> QkvInputNorm(int64_t layer) const;

 private:
  at::Tensor ForwardImpl(const at::Tensor& ids, const at::Tensor& mask,
                         const LinearObserver& observer, at::Tensor* tokens) const;

  BertConfig config_;
  at::Tensor word_embeddings_, position_embeddings_, token_type_embeddings_;
  at::Tensor embedding_norm_weight_, embedding_norm_bias_;
  std::vector<StudentLayer> layers_;
};

// Pads token-id lists (each with at least one id) into [n, longest] ids and
// mask tensors; pad id 0.
std::pair<at::Tensor, at::Tensor> PadIds(const std::vector<const std::vector<int32_t>*>& rows);

}  // namespace nlpflow
