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
  model->multi_label_ = j.value("problem_type", nlohmann::json()).is_string() &&
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
  for (int64_t i = 0; i < num_labels; ++i) {
    const auto it = id2label.find(i);
    if (!id2label.empty() && it == id2label.end()) {
      return Status::InvalidArgument(config_path + ": id2label has no label " +
                                     std::to_string(i) + " (ids must be 0.." +
                                     std::to_string(num_labels - 1) + ")");
    }
    model->labels_.push_back(it != id2label.end() ? it->second
                                                  : "LABEL_" + std::to_string(i));
  }

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

Result<std::vector<RowOutput>> BertClassifier::Run(const TokenBatch& b) const {
  NLPFLOW_RETURN_IF_ERROR(ValidateTokenBatch(b, max_positions_, vocab_size_, type_vocab_size_));
  if (!b.offsets.empty() && b.offsets.size() != static_cast<size_t>(2 * b.batch * b.seq_len)) {
    return Status::InvalidArgument("token batch: offsets must be empty or 2 per position (" +
                                   std::to_string(2 * b.batch * b.seq_len) + "), got " +
                                   std::to_string(b.offsets.size()));
  }
  const PackedTokens tokens = PackTokenBatch(b);
  try {
    at::init_num_threads();
    c10::InferenceMode inference_mode;
    const at::Tensor hidden = encoder_->Forward(tokens);  // [tokens, hidden]
    std::vector<RowOutput> out(static_cast<size_t>(b.batch));
    auto label_of = [this](int64_t id) { return labels_[static_cast<size_t>(id)]; };

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
          (multi_label_ ? at::sigmoid(logits) : at::softmax(logits, -1)).contiguous();
      const int64_t n = logits.size(1);
      for (int64_t r = 0; r < b.batch; ++r) {
        RowOutput& row = out[r];
        const float* l = logits.data_ptr<float>() + r * n;
        const float* p = probs.data_ptr<float>() + r * n;
        row.values.assign(l, l + n);
        row.probabilities.assign(p, p + n);
        row.label_id = std::max_element(l, l + n) - l;
        row.label = label_of(row.label_id);
        row.score = p[row.label_id];
      }
      return out;
    }

    const at::Tensor logits = at::linear(hidden, head_->weight, head_->bias).contiguous();
    const at::Tensor probs = at::softmax(logits, -1).contiguous();
    const int64_t n = logits.size(1);
    int64_t k = 0;  // packed token index
    for (int64_t r = 0; r < b.batch; ++r) {
      RowOutput& row = out[r];
      for (int64_t t = 0; t < tokens.lengths[r]; ++t, ++k) {
        const float* l = logits.data_ptr<float>() + k * n;
        const float* p = probs.data_ptr<float>() + k * n;
        TokenLabel label;
        label.position = t;
        if (!b.offsets.empty()) {
          label.begin = b.offsets[2 * (r * b.seq_len + t)];
          label.end = b.offsets[2 * (r * b.seq_len + t) + 1];
        }
        label.label_id = std::max_element(l, l + n) - l;
        label.label = label_of(label.label_id);
        label.score = p[label.label_id];
        label.logits.assign(l, l + n);
        row.tokens.push_back(std::move(label));
      }
    }
    return out;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("classifier: LibTorch: ") + e.what());
  }
}

}  // namespace nlpflow
