#include "nodes/infer/bert_classifier.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nodes/infer/bert_config.h"
#include "nodes/infer/bert_encoder.h"
#include "nodes/infer/safetensors.h"
#include "nodes/infer/tensor_reader.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;

}  // namespace

const char* ModelTaskName(ModelTask task) {
  switch (task) {
    case ModelTask::kEmbedding:
      return "embedding";
    case ModelTask::kSequenceClassification:
      return "sequence-classification";
    case ModelTask::kTokenClassification:
      return "token-classification";
  }
  return "?";
}

struct BertClassifier::Head {
  at::Tensor pooler_weight, pooler_bias;  // sequence classification only
  at::Tensor weight, bias;                // classifier: [labels, hidden], [labels]
};

BertClassifier::BertClassifier() = default;
BertClassifier::~BertClassifier() = default;

Result<std::unique_ptr<BertClassifier>> BertClassifier::Load(const ClassifierOptions& options) {
  if (options.path.empty()) return Status::InvalidArgument("model path: must not be empty");
  if (options.precision != "fp32" && options.precision != "int8") {
    return Status::InvalidArgument("model precision: '" + options.precision +
                                   "' is not one of fp32, int8");
  }
  if (options.intra_op_threads < 1) {
    return Status::InvalidArgument("model intra_op_threads: must be at least 1, got " +
                                   std::to_string(options.intra_op_threads));
  }
  const fs::path dir(options.path);
  const std::string config_path = (dir / "config.json").string();
  NLPFLOW_ASSIGN_OR_RETURN(BertConfig config, LoadBertConfig(config_path));

  std::unique_ptr<BertClassifier> model(new BertClassifier());
  nlohmann::json j;
  {
    std::ifstream in(config_path, std::ios::binary);
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      return Status::InvalidArgument(config_path + ": not valid JSON: " + e.what());
    }
  }
  std::string architecture;
  if (j.contains("architectures") && j["architectures"].is_array() &&
      !j["architectures"].empty() && j["architectures"][0].is_string()) {
    architecture = j["architectures"][0].get<std::string>();
  }
  if (architecture == "BertForSequenceClassification") {
    model->task_ = ModelTask::kSequenceClassification;
  } else if (architecture == "BertForTokenClassification") {
    model->task_ = ModelTask::kTokenClassification;
  } else {
    return Status::InvalidArgument(config_path + ": architectures[0] is '" + architecture +
                                   "'; supported: BertForSequenceClassification, "
                                   "BertForTokenClassification");
  }
  const bool multi_label = j.value("problem_type", nlohmann::json()).is_string() &&
                           j["problem_type"] == "multi_label_classification";

  // Labels: id2label (keys are decimal strings), else num_labels, else 2
  // (Hugging Face's default), named LABEL_<id> as transformers does.
  int64_t num_labels = j.value("num_labels", int64_t{0});
  std::map<int64_t, std::string> id2label;
  if (j.contains("id2label") && j["id2label"].is_object()) {
    for (const auto& [key, value] : j["id2label"].items()) {
      int64_t id = -1;
      try {
        id = std::stoll(key);
      } catch (const std::exception&) {
      }
      if (id < 0 || !value.is_string()) {
        return Status::InvalidArgument(config_path + ": id2label entry '" + key +
                                       "' must map a label id to a name");
      }
      id2label[id] = value.get<std::string>();
    }
    num_labels = static_cast<int64_t>(id2label.size());
  }
  if (num_labels <= 0) num_labels = 2;
  // As the text-classification pipeline's default function_to_apply.
  model->sigmoid_ = multi_label || num_labels == 1;
  std::vector<std::string> labels;
  for (int64_t i = 0; i < num_labels; ++i) {
    const auto it = id2label.find(i);
    if (!id2label.empty() && it == id2label.end()) {
      return Status::InvalidArgument(config_path + ": id2label has no label " +
                                     std::to_string(i) + " (ids must be 0.." +
                                     std::to_string(num_labels - 1) + ")");
    }
    labels.push_back(it != id2label.end() ? it->second : "LABEL_" + std::to_string(i));
  }
  model->labels_ = std::make_shared<const std::vector<std::string>>(std::move(labels));

  model->max_positions_ = config.max_position_embeddings;
  model->vocab_size_ = config.vocab_size;
  model->type_vocab_size_ = config.type_vocab_size;
  const int64_t h = config.hidden_size;
  const std::string weights_path = (dir / "model.safetensors").string();
  try {
    // As EmbeddingModel's "auto": OpenBLAS when the process has it.
    LinearBackend backend = ApplyThreadSettings(options.intra_op_threads)
                                ? LinearBackend::kBlas
                                : LinearBackend::kOnednn;
    if (options.precision == "int8") {
      at::globalContext().setQEngine(at::QEngine::ONEDNN);
      backend = LinearBackend::kInt8Dynamic;
    }
    NLPFLOW_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> weights,
                             SafetensorsFile::Open(weights_path));
    NLPFLOW_ASSIGN_OR_RETURN(model->encoder_, BertEncoder::Load(config, *weights, backend));
    model->head_ = std::make_unique<Head>();
    if (model->task_ == ModelTask::kSequenceClassification) {
      NLPFLOW_ASSIGN_OR_RETURN(model->head_->pooler_weight,
                               ReadFloatTensor(*weights, "bert.pooler.dense.weight", {h, h}));
      NLPFLOW_ASSIGN_OR_RETURN(model->head_->pooler_bias,
                               ReadFloatTensor(*weights, "bert.pooler.dense.bias", {h}));
    }
    NLPFLOW_ASSIGN_OR_RETURN(model->head_->weight,
                             ReadFloatTensor(*weights, "classifier.weight", {num_labels, h}));
    NLPFLOW_ASSIGN_OR_RETURN(model->head_->bias,
                             ReadFloatTensor(*weights, "classifier.bias", {num_labels}));
  } catch (const std::exception& e) {
    return Status::Internal("loading " + weights_path + ": LibTorch: " + e.what());
  }
  spdlog::info("infer: loaded {} ({}, {} labels, precision {})", options.path,
               ModelTaskName(model->task_), num_labels, options.precision);
  return model;
}

Result<std::vector<ModelOutput>> BertClassifier::Run(const TokenBatch& b) const {
  NLPFLOW_RETURN_IF_ERROR(ValidateTokenBatch(b, max_positions_, vocab_size_, type_vocab_size_));
  const PackedTokens tokens = PackTokenBatch(b);
  try {
    at::init_num_threads();
    c10::InferenceMode inference_mode;
    const at::Tensor hidden = encoder_->Forward(tokens);  // [tokens, hidden]
    std::vector<ModelOutput> out;
    out.reserve(static_cast<size_t>(b.batch));

    if (task_ == ModelTask::kSequenceClassification) {
      std::vector<int64_t> first(static_cast<size_t>(b.batch));  // each row's [CLS]
      for (int64_t r = 0, offset = 0; r < b.batch; offset += tokens.lengths[r], ++r) {
        first[r] = offset;
      }
      const at::Tensor cls =
          hidden.index_select(0, at::from_blob(first.data(), {b.batch}, at::kLong));
      const at::Tensor pooled = at::tanh(at::linear(cls, head_->pooler_weight, head_->pooler_bias));
      const at::Tensor logits = at::linear(pooled, head_->weight, head_->bias).contiguous();
      const at::Tensor probs =
          (sigmoid_ ? at::sigmoid(logits) : at::softmax(logits, -1)).contiguous();
      const int64_t n = logits.size(1);
      for (int64_t r = 0; r < b.batch; ++r) {
        ClassificationOutput row;
        const float* l = logits.data_ptr<float>() + r * n;
        const float* p = probs.data_ptr<float>() + r * n;
        row.logits.assign(l, l + n);
        row.scores.assign(p, p + n);
        row.labels = labels_;
        out.emplace_back(std::move(row));
      }
      return out;
    }

    const at::Tensor logits = at::linear(hidden, head_->weight, head_->bias).contiguous();
    const int64_t n = logits.size(1);
    const float* data = logits.data_ptr<float>();
    for (int64_t r = 0, k = 0; r < b.batch; k += tokens.lengths[r], ++r) {
      TokenClassificationOutput row;
      row.num_labels = n;
      row.logits.assign(data + k * n, data + (k + tokens.lengths[r]) * n);
      row.labels = labels_;
      out.emplace_back(std::move(row));
    }
    return out;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("classifier: LibTorch: ") + e.what());
  }
}

}  // namespace nlpflow
