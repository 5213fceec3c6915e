// A TorchScript module as a model runtime, for architectures nlpflow does not
// load itself. The module (torch.jit.script or torch.jit.trace, saved with
// .save()) must take (input_ids, attention_mask[, token_type_ids]): int64
// tensors [batch, seq_len], right-padded; and return one float tensor whose
// first dimension is the batch. What it holds is the task's:
//   embedding:               [batch, dim]; row r's output is row r, flattened
//   sequence-classification: [batch, labels] logits; scores are their softmax
//                            (a sigmoid for one label, as Hugging Face does)
//   token-classification:    [batch, seq_len, labels] logits; row r's real
//                            tokens' rows
// nodes/infer/export_torchscript.py exports a Hugging Face encoder this way.
//
// This header deliberately includes no LibTorch header.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodes/infer/model.h"

namespace nlpflow {

struct TorchScriptOptions {
  // The .pt file.
  std::string path = "";
  // As ModelOptions::intra_op_threads.
  int intra_op_threads = 1;
  // Largest id the batches may hold + 1, and longest row; 0: not checked
  // (the module's own errors then surface as INTERNAL).
  int64_t vocab_size = 0;
  int64_t max_positions = 0;
  // What the output tensor is (see above).
  ModelTask task = ModelTask::kEmbedding;
  // Classifiers: label names by id; empty: LABEL_<id>, as many as the
  // module's output has. When given, the output must have as many.
  std::vector<std::string> labels;
};

class TorchScriptModel : public Model {
 public:
  // NOT_FOUND naming the file if it is missing; INVALID_ARGUMENT naming the
  // file if it is not a TorchScript archive, if forward does not take 2 or 3
  // tensors, or if a warm-up run on a 1 x 2 batch (ids 0) fails or does not
  // return a float tensor with the batch as its first dimension, of the rank
  // the task needs and as many labels as `labels` names.
  static Result<std::unique_ptr<TorchScriptModel>> Load(const TorchScriptOptions& options);

  TorchScriptModel(const TorchScriptModel&) = delete;
  TorchScriptModel& operator=(const TorchScriptModel&) = delete;
  ~TorchScriptModel() override;

  ModelTask task() const override { return task_; }
  // The task's output per row. Thread-safe (the module is only read).
  Result<std::vector<ModelOutput>> Run(const TokenBatch& batch) const override;
  const std::vector<std::string>& labels() const override { return *labels_; }
  int64_t max_positions() const override { return max_positions_; }
  // 2 or 3: whether forward takes token_type_ids.
  int inputs() const { return inputs_; }

 private:
  struct Impl;
  TorchScriptModel();

  std::unique_ptr<Impl> impl_;
  std::string path_;
  int inputs_ = 2;
  int64_t vocab_size_ = 0, max_positions_ = 0;
  ModelTask task_ = ModelTask::kEmbedding;
  LabelNames labels_ = std::make_shared<const std::vector<std::string>>();
};

}  // namespace nlpflow
