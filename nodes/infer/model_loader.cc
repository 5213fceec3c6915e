#include "nodes/infer/model_loader.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nodes/infer/bert_classifier.h"
#include "nodes/infer/torchscript_model.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<ModelTask> TaskNamed(const std::string& task) {
  if (task == "embedding") return ModelTask::kEmbedding;
  if (task == "sequence-classification") return ModelTask::kSequenceClassification;
  if (task == "token-classification") return ModelTask::kTokenClassification;
  return Status::InvalidArgument("model task '" + task +
                                 "' is not one of auto, embedding, sequence-classification, "
                                 "token-classification");
}

}  // namespace

Result<ModelTask> ResolveTask(const std::string& folder, const std::string& task) {
  if (task != "auto") return TaskNamed(task);
  const std::string path = (fs::path(folder) / "config.json").string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(path + ": not valid JSON: " + e.what());
  }
  if (j.is_object() && j.contains("architectures") && j["architectures"].is_array()) {
    for (const auto& a : j["architectures"]) {
      if (!a.is_string()) continue;
      const std::string name = a.get<std::string>();
      if (EndsWith(name, "ForSequenceClassification")) return ModelTask::kSequenceClassification;
      if (EndsWith(name, "ForTokenClassification")) return ModelTask::kTokenClassification;
    }
  }
  return ModelTask::kEmbedding;
}

Result<LoadedModel> LoadModel(const ModelLoadOptions& o) {
  LoadedModel loaded;
  if (o.runtime == "torchscript") {
    NLPFLOW_ASSIGN_OR_RETURN(ModelTask task,
                             o.task == "auto" ? Result<ModelTask>(ModelTask::kEmbedding)
                                              : TaskNamed(o.task));
    TorchScriptOptions t;
    t.path = o.path;
    t.intra_op_threads = o.intra_op_threads;
    t.vocab_size = o.vocab_size;
    t.task = task;
    t.labels = o.labels;
    NLPFLOW_ASSIGN_OR_RETURN(loaded.model, TorchScriptModel::Load(t));
    loaded.weights_path = o.path;
    return loaded;
  }
  if (o.runtime != "native") {
    return Status::InvalidArgument("model runtime '" + o.runtime + "' is not one of native, torchscript");
  }
  NLPFLOW_ASSIGN_OR_RETURN(ModelTask task, ResolveTask(o.path, o.task));
  // The weights file the model loads (CheckpointWeights::OpenDir's order; for
  // sharded checkpoints the index): what the model version fingerprints.
  loaded.weights_path = (fs::path(o.path) / "model.safetensors").string();
  for (const char* name : {"model.safetensors", "model.safetensors.index.json",
                           "pytorch_model.bin", "pytorch_model.bin.index.json"}) {
    if (fs::exists(fs::path(o.path) / name)) {
      loaded.weights_path = (fs::path(o.path) / name).string();
      break;
    }
  }
  if (task == ModelTask::kEmbedding) {
    ModelOptions mo;
    mo.path = o.path;
    mo.pooling = o.pooling;
    mo.normalize = o.normalize;
    mo.precision = o.precision;
    mo.intra_op_threads = o.intra_op_threads;
    NLPFLOW_ASSIGN_OR_RETURN(std::unique_ptr<EmbeddingModel> m, EmbeddingModel::Load(mo));
    loaded.embedding = m.get();
    loaded.model = std::move(m);
    return loaded;
  }
  ClassifierOptions co;
  co.path = o.path;
  co.intra_op_threads = o.intra_op_threads;
  co.precision = o.precision;
  NLPFLOW_ASSIGN_OR_RETURN(std::unique_ptr<BertClassifier> m, BertClassifier::Load(co));
  if (m->task() != task) {
    return Status::InvalidArgument(
        (fs::path(o.path) / "config.json").string() + ": model.task is " + ModelTaskName(task) +
        " but the checkpoint's architectures make it " + ModelTaskName(m->task()));
  }
  loaded.model = std::move(m);
  return loaded;
}

}  // namespace nlpflow
