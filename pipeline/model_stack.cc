#include "pipeline/model_stack.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "common/record.h"
#include "nodes/infer/batch_runner.h"
#include "nodes/infer/model_loader.h"
#include "nodes/tokenize/wordpiece_tokenizer.h"

namespace nlpflow {
namespace fs = std::filesystem;

Result<std::string> WeightsFingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + path);
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  std::string head(std::min<uint64_t>(size, 64 * 1024), '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ull;
  };
  for (int i = 0; i < 8; ++i) mix(static_cast<unsigned char>(size >> (8 * i)));
  for (char c : head) mix(static_cast<unsigned char>(c));
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}


namespace {

// The tokenizer of a folder or a tokenizer.json file. A WordPiece folder
// loads as it always has (tokenizer.json, else vocab.txt with
// tokenizer_config.json's options); other kinds through LoadTokenizer.
Result<std::unique_ptr<Tokenizer>> LoadStackTokenizer(const std::string& path) {
  if (fs::is_directory(path) && !fs::exists(fs::path(path) / "tokenizer.json")) {
    NLPFLOW_ASSIGN_OR_RETURN(auto wordpiece, WordPieceTokenizer::FromModelDir(path));
    return std::unique_ptr<Tokenizer>(std::move(wordpiece));
  }
  NLPFLOW_ASSIGN_OR_RETURN(LoadedTokenizer loaded, LoadTokenizer(path));
  if (loaded.model_type == "WordPiece" && fs::is_directory(path)) {
    NLPFLOW_ASSIGN_OR_RETURN(auto wordpiece, WordPieceTokenizer::FromModelDir(path));
    return std::unique_ptr<Tokenizer>(std::move(wordpiece));
  }
  return std::move(loaded.tokenizer);
}

}  // namespace

Result<ModelStack> LoadModelStack(const Config& config) {
  const std::string& model_path = config.model.path;
  const bool torchscript = config.model.runtime == "torchscript";
  if (torchscript) {
    if (!fs::is_regular_file(model_path)) {
      return Status::NotFound("model.path " + model_path +
                              " is not a file (model.runtime torchscript loads a .pt file)");
    }
    if (config.tokenizer.path.empty()) {
      return Status::InvalidArgument("tokenizer.path: required with model.runtime torchscript "
                                     "(the folder or tokenizer.json of " + model_path + ")");
    }
  } else if (!fs::is_directory(model_path)) {
    return Status::NotFound("model.path " + model_path +
                            " is not a folder (run scripts/setup to fetch the model)");
  }
  const std::string& model_dir = model_path;
  const std::string tokenizer_path =
      config.tokenizer.path.empty() ? model_dir : config.tokenizer.path;

  ModelStack stack;
  auto tokenizer = LoadStackTokenizer(tokenizer_path);
  if (!tokenizer.ok()) return tokenizer.status().WithContext("tokenizer");

  ModelLoadOptions mo;
  mo.runtime = config.model.runtime;
  mo.path = model_path;
  mo.task = config.model.task;
  mo.pooling = config.model.pooling;
  mo.normalize = config.model.normalize;
  mo.precision = config.model.precision;
  mo.intra_op_threads = config.model.threads;
  mo.labels = config.model.labels;
  mo.vocab_size = static_cast<int64_t>((*tokenizer)->vocab_size());
  auto model = LoadModel(mo);
  if (!model.ok()) return model.status().WithContext("model");
  stack.embedding_model = model->embedding;
  stack.model = std::move(model->model);
  const std::string weights_path = model->weights_path;

  // The tokenizer file's own truncation (128 in all-MiniLM-L6-v2's
  // tokenizer.json) is not what the model was trained and evaluated with;
  // sentence-transformers truncates at max_seq_length.
  int64_t max_length = config.tokenizer.max_length;
  if (max_length == 0) max_length = stack.model->max_seq_length();
  if (stack.model->max_positions() > 0 &&
      (max_length <= 0 || max_length > stack.model->max_positions())) {
    max_length = stack.model->max_positions();
  }
  if (max_length > 0) (*tokenizer)->set_max_length(static_cast<int>(max_length));
  stack.tokenizer = std::move(tokenizer).value();

  stack.name = !config.model.name.empty() ? config.model.name
                : torchscript                 ? fs::path(model_dir).stem().string()
                                              : fs::path(model_dir).filename().string();
  if (stack.name.empty()) stack.name = fs::path(model_dir).parent_path().filename().string();
  if (!config.model.version.empty()) {
    stack.version = config.model.version;
  } else {
    auto fp = WeightsFingerprint(weights_path);
    stack.version = fp.ok() ? fp.value() : "unknown";
  }

  // Warm-up: one small batch through the whole model.
  Batch warm;
  auto r = std::make_shared<Record>();
  r->encoding = stack.tokenizer->Encode("warm up the model");
  warm.records.push_back(r);
  RunBatch(*stack.model, stack.tokenizer->pad_id(), &warm);
  if (r->failed) {
    return Status::Internal("model warm-up failed: " + r->failure_reason);
  }
  spdlog::info("model {} (version {}) loaded from {}: task {}, max_length {}", stack.name,
               stack.version, model_dir, ModelTaskName(stack.model->task()), max_length);
  return stack;
}

}  // namespace nlpflow
