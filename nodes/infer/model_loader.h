// Which runtime serves a model, and for which task: the one place that turns
// a model path and a task name into a Model.
//
// Native folders (Hugging Face layout): the task comes from config.json's
// "architectures" when it is "auto": a name ending in
// ForSequenceClassification is sequence classification, one ending in
// ForTokenClassification token classification, anything else an embedding
// model. The architecture's prefix is the family (Bert...); a family the
// runtimes do not know is an error naming the file. A new family is an
// addition to the runtimes' loaders (bert_config.h describes the weights),
// not a change here.
//
// This header deliberately includes no LibTorch header.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodes/infer/embedding_model.h"
#include "nodes/infer/model.h"

namespace nlpflow {

struct ModelLoadOptions {
  // "native": a Hugging Face folder; "torchscript": a .pt file.
  std::string runtime = "native";
  std::string path;
  // "auto", "embedding", "sequence-classification" or "token-classification".
  std::string task = "auto";
  // Embedding models (ModelOptions).
  std::string pooling;
  bool normalize = true;
  // Every native runtime: "fp32" or "int8".
  std::string precision = "fp32";
  int intra_op_threads = 1;
  // TorchScript classifiers: label names by id (TorchScriptOptions::labels).
  std::vector<std::string> labels;
  // TorchScript: the tokenizer's vocabulary size, to check ids against (0: unchecked).
  int64_t vocab_size = 0;
};

struct LoadedModel {
  std::unique_ptr<Model> model;
  // `model` when it is the native sentence-embedding runtime, else null.
  const EmbeddingModel* embedding = nullptr;
  // The weights file (for a version fingerprint).
  std::string weights_path;
};

// The task `task` names, or (for "auto") what the folder's config.json says.
// INVALID_ARGUMENT for an unknown name; errors reading config.json name it.
Result<ModelTask> ResolveTask(const std::string& folder, const std::string& task);

// Loads the model. Errors name the file (and the key or tensor).
Result<LoadedModel> LoadModel(const ModelLoadOptions& options);

}  // namespace nlpflow
