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
#include "nodes/infer/checkpoint_weights.h"
#include "nodes/infer/encoder_family.h"

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
  // Sequence classification only: the family's Linear on the first token
  // (BERT's pooler, RoBERTa's classifier.dense, DistilBERT's pre_classifier)
  // and its activation: "tanh", "relu" or "gelu".
  at::Tensor pre_weight, pre_bias;
  std::string pre_act;
  at::Tensor weight, bias;  // classifier: [labels, hidden], [labels]
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
  const EncoderFamily& family = *FindEncoderFamily(config.model_type);  // checked by config
  const std::string sequence = family.architecture_prefix + "ForSequenceClassification";
  const std::string token = family.architecture_prefix + "ForTokenClassification";
  if (architecture == sequence) {
    model->task_ = ModelTask::kSequenceClassification;
  } else if (architecture == token) {
    model->task_ = ModelTask::kTokenClassification;
  } else {
    return Status::InvalidArgument(config_path + ": architectures[0] is '" + architecture +
                                   "'; supported for model_type " + config.model_type + ": " +
                                   sequence + ", " + token);
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

  model->max_positions_ = config.max_positions();
  model->vocab_size_ = config.vocab_size;
  model->type_vocab_size_ = config.accepted_type_ids();
  const int64_t h = config.hidden_size;
  const std::string weights_path = dir.string();
  try {
    // As EmbeddingModel's "auto": OpenBLAS when the process has it.
    LinearBackend backend = ApplyThreadSettings(options.intra_op_threads)
                                ? LinearBackend::kBlas
                                : LinearBackend::kOnednn;
    if (options.precision == "int8") {
      at::globalContext().setQEngine(at::QEngine::ONEDNN);
      backend = LinearBackend::kInt8Dynamic;
    }
    NLPFLOW_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWeights> weights,
                             CheckpointWeights::OpenDir(weights_path));
    NLPFLOW_ASSIGN_OR_RETURN(model->encoder_, BertEncoder::Load(config, *weights, backend));
    model->head_ = std::make_unique<Head>();
    std::string out = family.token_out;
    if (model->task_ == ModelTask::kSequenceClassification) {
      out = family.sequence_out;
      model->head_->pre_act = family.sequence_pre_act;
      NLPFLOW_ASSIGN_OR_RETURN(model->head_->pre_weight,
                               weights->Read(family.sequence_pre + ".weight", {h, h}));
      NLPFLOW_ASSIGN_OR_RETURN(model->head_->pre_bias,
                               weights->Read(family.sequence_pre + ".bias", {h}));
    }
    NLPFLOW_ASSIGN_OR_RETURN(model->head_->weight,
                             weights->Read(out + ".weight", {num_labels, h}));
    NLPFLOW_ASSIGN_OR_RETURN(model->head_->bias, weights->Read(out + ".bias", {num_labels}));
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
      at::Tensor pooled = at::linear(cls, head_->pre_weight, head_->pre_bias);
      if (head_->pre_act == "tanh") {
        pooled = at::tanh(pooled);
      } else if (head_->pre_act == "relu") {
        pooled = at::relu(pooled);
      } else {
        pooled = at::gelu(pooled);  // ELECTRA's head: exact gelu
      }
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
