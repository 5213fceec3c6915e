// Loading what the graphs need from the config: tokenizer and model, checked
// up front so that a missing or broken file stops start-up with one line.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "nodes/infer/embedding_model.h"
#include "nodes/infer/model.h"
#include "nodes/tokenize/tokenizer.h"
#include "pipeline/config.h"

namespace nlpflow {

// The graphs use tokenizer and model through their interfaces only.
struct ModelStack {
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Model> model;
  // `model` itself when it is the native sentence-embedding runtime (the
  // compression commands need its pooling and Embed); else null.
  const EmbeddingModel* embedding_model = nullptr;
  std::string name;     // published with results
  std::string version;  // published with results
};

// Loads the tokenizer and the model named by config.tokenizer/config.model,
// sets the truncation length, and runs one warm-up batch so the first real
// record does not pay for lazy initialization.
Result<ModelStack> LoadModelStack(const Config& config);

// A short hex fingerprint of a weights file: FNV-1a over its size and its
// first 64 KiB (the safetensors header, which lists every tensor's name,
// shape and offsets). Stable across copies; changes when the weights do in
// any way that matters in practice.
Result<std::string> WeightsFingerprint(const std::string& path);

}  // namespace nlpflow
