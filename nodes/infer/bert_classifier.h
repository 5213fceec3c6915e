// Classification heads on an encoder of any family of encoder_family.h,
// loaded from Hugging Face <Family>ForSequenceClassification /
// <Family>ForTokenClassification checkpoints (BertFor..., DistilBertFor...,
// RobertaFor..., XLMRobertaFor..., MPNetFor..., ElectraFor...; config.json
// and the weights, as save_pretrained writes them).
//
// Sequence classification: the family's head on the first token (BERT:
// tanh(pooler); RoBERTa, XLM-R, MPNet: tanh(classifier.dense); ELECTRA:
// gelu(classifier.dense); DistilBERT: relu(pre_classifier)) then the
// classifier Linear: logits per row, and scores as Hugging Face's
// text-classification pipeline computes them (softmax; a sigmoid per label for
// problem_type multi_label_classification and for one-label models); label
// names from config.json's id2label. Token classification: the classifier
// Linear on every real token: the logits of each token (the aggregation step,
// nodes/infer/token_aggregation.h, maps them back to the text).
//
// This header deliberately includes no LibTorch header.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodes/infer/model.h"

namespace nlpflow {

class BertEncoder;

struct ClassifierOptions {
  // Model folder: config.json (architectures, id2label, the BERT sizes) and
  // model.safetensors.
  std::string path = "";
  // As ModelOptions::intra_op_threads.
  int intra_op_threads = 1;
  // As ModelOptions::precision: "fp32" or "int8" (encoder Linear layers only;
  // the pooler and the classifier stay fp32).
  std::string precision = "fp32";
};

class BertClassifier : public Model {
 public:
  // The task comes from config.json's "architectures": <Family>ForSequence-
  // Classification or <Family>ForTokenClassification for the model_type's
  // family (INVALID_ARGUMENT naming the file and both names otherwise). Errors as EmbeddingModel::Load, naming file and tensor.
  static Result<std::unique_ptr<BertClassifier>> Load(const ClassifierOptions& options);

  BertClassifier(const BertClassifier&) = delete;
  BertClassifier& operator=(const BertClassifier&) = delete;
  ~BertClassifier() override;

  ModelTask task() const override { return task_; }
  // ClassificationOutput or TokenClassificationOutput per row.
  Result<std::vector<ModelOutput>> Run(const TokenBatch& batch) const override;
  const std::vector<std::string>& labels() const override { return *labels_; }
  int64_t max_positions() const override { return max_positions_; }

 private:
  struct Head;
  BertClassifier();

  ModelTask task_ = ModelTask::kSequenceClassification;
  bool sigmoid_ = false;  // scores: sigmoid per label instead of softmax
  std::unique_ptr<BertEncoder> encoder_;
  std::unique_ptr<Head> head_;
  LabelNames labels_;
  int64_t max_positions_ = 0, vocab_size_ = 0, type_vocab_size_ = 0;
};

}  // namespace nlpflow
