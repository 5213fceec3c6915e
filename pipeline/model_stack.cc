#include "pipeline/model_stack.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "common/record.h"
#include "nodes/infer/batch_runner.h"
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


Result<ModelStack> LoadModelStack(const Config& config) {
  const std::string& model_dir = config.model.path;
  if (!fs::is_directory(model_dir)) {
    return Status::NotFound("model.path " + model_dir +
                            " is not a folder (run scripts/setup to fetch the model)");
  }
  const std::string tokenizer_dir =
      config.tokenizer.path.empty() ? model_dir : config.tokenizer.path;

  ModelStack stack;
  auto tokenizer = WordPieceTokenizer::FromModelDir(tokenizer_dir);
  if (!tokenizer.ok()) return tokenizer.status().WithContext("tokenizer");

  ModelOptions mo;
  mo.path = model_dir;
  mo.pooling = config.model.pooling;
  mo.normalize = config.model.normalize;
  mo.precision = config.model.precision;
  mo.intra_op_threads = config.model.threads;
  auto model = EmbeddingModel::Load(mo);
  if (!model.ok()) return model.status().WithContext("model");
  stack.embedding_model = model->get();
  stack.model = std::move(model).value();

  // The tokenizer file's own truncation (128 in all-MiniLM-L6-v2's
  // tokenizer.json) is not what the model was trained and evaluated with;
  // sentence-transformers truncates at max_seq_length.
  int64_t max_length = config.tokenizer.max_length;
  if (max_length == 0) max_length = stack.model->max_seq_length();
  if (max_length <= 0 || max_length > stack.model->max_positions()) {
    max_length = stack.model->max_positions();
  }
  (*tokenizer)->set_max_length(static_cast<int>(max_length));
  stack.tokenizer = std::move(tokenizer).value();

  stack.name = config.model.name.empty() ? fs::path(model_dir).filename().string()
                                         : config.model.name;
  if (stack.name.empty()) stack.name = fs::path(model_dir).parent_path().filename().string();
  if (!config.model.version.empty()) {
    stack.version = config.model.version;
  } else {
    auto fp = WeightsFingerprint((fs::path(model_dir) / "model.safetensors").string());
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
