#include "nodes/infer/embedding_model.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "nodes/infer/bert_config.h"
#include "nodes/infer/bert_encoder.h"
#include "nodes/infer/checkpoint_weights.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;

Result<nlohmann::json> ReadJsonFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path.string() + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(path.string() + ": not valid JSON: " + e.what());
  }
}

// The sentence-transformers Pooling module's folder: named in modules.json,
// conventionally "1_Pooling". Empty when the model folder has none.
Result<std::optional<fs::path>> FindPoolingConfig(const fs::path& dir) {
  fs::path pooling_dir = dir / "1_Pooling";
  if (fs::exists(dir / "modules.json")) {
    NLPFLOW_ASSIGN_OR_RETURN(nlohmann::json modules, ReadJsonFile(dir / "modules.json"));
    if (modules.is_array()) {
      for (const auto& m : modules) {
        const std::string type = m.value("type", "");
        if (type.ends_with("Pooling")) {
          pooling_dir = dir / m.value("path", "");
        }
      }
    }
  }
  if (!fs::exists(pooling_dir / "config.json")) return std::optional<fs::path>();
  return std::optional<fs::path>(pooling_dir / "config.json");
}

Result<std::string> PoolingFromConfig(const fs::path& path) {
  NLPFLOW_ASSIGN_OR_RETURN(nlohmann::json j, ReadJsonFile(path));
  if (!j.is_object()) return Status::InvalidArgument(path.string() + ": not a JSON object");
  std::vector<std::string> modes;
  for (const auto& [key, value] : j.items()) {
    if (key.starts_with("pooling_mode_") && value.is_boolean() && value.get<bool>()) {
      modes.push_back(key);
    }
  }
  if (modes.size() == 1) {
    if (modes[0] == "pooling_mode_mean_tokens") return std::string("mean");
    if (modes[0] == "pooling_mode_cls_token") return std::string("cls");
    if (modes[0] == "pooling_mode_max_tokens") return std::string("max");
  }
  std::string listed;
  for (const auto& m : modes) listed += (listed.empty() ? "" : ", ") + m;
  return Status::InvalidArgument(
      path.string() + ": pooling [" + listed +
      "] is not supported; supported: exactly one of pooling_mode_mean_tokens, "
      "pooling_mode_cls_token, pooling_mode_max_tokens (or set the pooling option)");
}

// sentence_bert_config.json's max_seq_length, if present.
Result<std::optional<int64_t>> MaxSeqLengthFromConfig(const fs::path& dir) {
  const fs::path path = dir / "sentence_bert_config.json";
  if (!fs::exists(path)) return std::optional<int64_t>();
  NLPFLOW_ASSIGN_OR_RETURN(nlohmann::json j, ReadJsonFile(path));
  const auto it = j.find("max_seq_length");
  if (it == j.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer() || it->get<int64_t>() <= 0) {
    return Status::InvalidArgument(path.string() +
                                   ": 'max_seq_length' must be a positive integer, got " +
                                   it->dump());
  }
  return std::optional<int64_t>(it->get<int64_t>());
}

}  // namespace

// LibTorch's intra-op pool and OpenBLAS's pool are separate: with both at 2 on
// a 2-core machine, a BLAS call inside a parallel region runs 4 threads on 2
// cores, and the encoder ran slower than with 1 thread (shared/FACTS.md).
// OpenBLAS is reached through dlsym so that nlpflow does not link it: the
// process's libblas.so.3 may be OpenBLAS, the reference BLAS or another one.
// Returns whether it is OpenBLAS.
bool ApplyThreadSettings(int threads) {
  at::set_num_threads(threads);
  using SetThreadsFn = void (*)(int);
  auto* set_blas_threads =
      reinterpret_cast<SetThreadsFn>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set_blas_threads != nullptr) {
    set_blas_threads(threads);
    spdlog::info("infer: LibTorch and OpenBLAS threads set to {}", threads);
    return true;
  }
  spdlog::info(
      "infer: LibTorch threads set to {}; openblas_set_num_threads not found, so the "
      "process's BLAS is not OpenBLAS and its threads are left as they are",
      threads);
  return false;
}

Status ValidateModelOptions(const ModelOptions& o) {
  if (o.path.empty()) return Status::InvalidArgument("model path: must not be empty");
  if (!o.pooling.empty() && o.pooling != "mean" && o.pooling != "cls" && o.pooling != "max") {
    return Status::InvalidArgument("model pooling: '" + o.pooling +
                                   "' is not one of mean, cls, max (or empty for the "
                                   "model folder's own)");
  }
  if (o.linear != "auto" && o.linear != "program" && o.linear != "onednn" &&
      o.linear != "blas") {
    return Status::InvalidArgument("model linear: '" + o.linear +
                                   "' is not one of auto, program, onednn, blas");
  }
  if (o.precision != "fp32" && o.precision != "int8") {
    return Status::InvalidArgument("model precision: '" + o.precision +
                                   "' is not one of fp32, int8");
  }
  if (o.lone_batch_threads < 0) {
    return Status::InvalidArgument("model lone_batch_threads: must be at least 0, got " +
                                   std::to_string(o.lone_batch_threads));
  }
  if (o.intra_op_threads < 1) {
    return Status::InvalidArgument("model intra_op_threads: must be at least 1, got " +
                                   std::to_string(o.intra_op_threads));
  }
  return Status::Ok();
}

EmbeddingModel::~EmbeddingModel() = default;

Result<std::unique_ptr<EmbeddingModel>> EmbeddingModel::Load(const ModelOptions& options) {
  NLPFLOW_RETURN_IF_ERROR(ValidateModelOptions(options));
  const fs::path dir(options.path);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound("model folder '" + options.path + "' does not exist");
  }
  NLPFLOW_ASSIGN_OR_RETURN(BertConfig config, LoadBertConfig((dir / "config.json").string()));

  std::unique_ptr<EmbeddingModel> model(new EmbeddingModel());
  model->pooling_ = options.pooling;
  if (model->pooling_.empty()) {
    NLPFLOW_ASSIGN_OR_RETURN(std::optional<fs::path> pooling_config, FindPoolingConfig(dir));
    model->pooling_ = "mean";
    if (pooling_config) {
      NLPFLOW_ASSIGN_OR_RETURN(model->pooling_, PoolingFromConfig(*pooling_config));
    }
  }
  NLPFLOW_ASSIGN_OR_RETURN(std::optional<int64_t> max_seq_length, MaxSeqLengthFromConfig(dir));

  fs::path normal = fs::absolute(dir).lexically_normal();  // "a/b/", "a/b/." -> b
  if (!normal.has_filename()) normal = normal.parent_path();
  model->name_ = normal.filename().string();
  model->normalize_ = options.normalize;
  model->dim_ = config.hidden_size;
  model->max_positions_ = config.max_positions();
  model->max_seq_length_ =
      std::min(max_seq_length.value_or(config.max_positions()), config.max_positions());
  model->vocab_size_ = config.vocab_size;
  model->type_vocab_size_ = config.accepted_type_ids();

  const std::string weights_path = dir.string();
  try {
    ApplyThreadSettings(options.intra_op_threads);
    // "auto": the oneDNN program (encoder_program.h), whatever the BLAS;
    // "onednn" and "blas" are the ATen paths it replaced, kept for comparison.
    model->linear_ = options.linear == "auto" ? "program" : options.linear;
    model->precision_ = options.precision;
    LinearBackend backend = model->linear_ == "program"  ? LinearBackend::kProgram
                            : model->linear_ == "onednn" ? LinearBackend::kOnednn
                                                         : LinearBackend::kBlas;
    // A folder written by `nlpflow quantize` says how it runs (config.json's
    // nlpflow_quantization); precision int8 still forces dynamic int8.
    if (options.precision == "int8" || config.quantization == "dynamic_int8") {
      // oneDNN, not QNNPACK: QNNPACK measured ~10x slower on this CPU
      // (shared/FACTS.md). Process-wide, like the thread settings.
      at::globalContext().setQEngine(at::QEngine::ONEDNN);
      backend = LinearBackend::kInt8Dynamic;
      model->linear_ = "int8";
      model->precision_ = "int8";
    } else if (config.quantization == "static_int8") {
      at::globalContext().setQEngine(at::QEngine::ONEDNN);
      backend = LinearBackend::kInt8Static;
      model->linear_ = "int8-static";
      model->precision_ = "int8-static";
    }
    // The mapping is released at the end of Load(): the encoder owns copies.
    NLPFLOW_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWeights> weights,
                             CheckpointWeights::OpenDir(dir.string()));
    NLPFLOW_ASSIGN_OR_RETURN(model->encoder_,
                             BertEncoder::Load(config, *weights, backend));
    model->encoder_->SetLoneBatchThreads(options.lone_batch_threads);
  } catch (const std::exception& e) {
    return Status::Internal("loading " + weights_path + ": LibTorch: " + e.what());
  }
  spdlog::info(
      "infer: loaded {} ({} layers, hidden {}, pooling {}, normalize {}, precision {}, linear {})",
      model->name_, config.num_hidden_layers, config.hidden_size, model->pooling_,
      model->normalize_, model->precision_, model->linear_);
  return model;
}

std::vector<std::string> EmbeddingModel::DescribeLinears() const {
  return encoder_->DescribeLinears();
}

Result<std::vector<float>> EmbeddingModel::Embed(const TokenBatch& b) const {
  NLPFLOW_RETURN_IF_ERROR(ValidateTokenBatch(b, max_positions_, vocab_size_, type_vocab_size_));
  const PackedTokens tokens = PackTokenBatch(b);

  try {
    // Threads other than Load()'s pick up the intra-op thread count here
    // (LibTorch applies it per thread, lazily).
    at::init_num_threads();
    c10::InferenceMode inference_mode;
    const at::Tensor hidden = encoder_->Forward(tokens);  // [tokens, dim]

    std::vector<at::Tensor> pooled;
    pooled.reserve(b.batch);
    int64_t offset = 0;
    for (int64_t r = 0; r < b.batch; ++r) {
      const at::Tensor row = hidden.narrow(0, offset, tokens.lengths[r]);
      offset += tokens.lengths[r];
      if (pooling_ == "cls") {
        pooled.push_back(row[0]);
      } else if (pooling_ == "max") {
        pooled.push_back(std::get<0>(row.max(0)));
      } else {
        pooled.push_back(row.mean(0));
      }
    }
    at::Tensor out = at::stack(pooled);  // [batch, dim]
    if (normalize_) {
      // As torch.nn.functional.normalize(p=2, dim=1, eps=1e-12).
      out = out / out.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
    }
    out = out.contiguous();
    const float* data = out.data_ptr<float>();
    return std::vector<float>(data, data + out.numel());
  } catch (const std::exception& e) {
    return Status::Internal("model " + name_ + ": LibTorch: " + e.what());
  }
}

Result<std::vector<ModelOutput>> EmbeddingModel::Run(const TokenBatch& batch) const {
  NLPFLOW_ASSIGN_OR_RETURN(std::vector<float> flat, Embed(batch));
  std::vector<ModelOutput> out;
  out.reserve(static_cast<size_t>(batch.batch));
  for (int64_t r = 0; r < batch.batch; ++r) {
    EmbeddingOutput e;
    e.values.assign(flat.begin() + r * dim_, flat.begin() + (r + 1) * dim_);
    out.emplace_back(std::move(e));
  }
  return out;
}

}  // namespace nlpflow
