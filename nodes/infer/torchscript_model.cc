#include "nodes/infer/torchscript_model.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <filesystem>
#include <limits>

#include "nodes/infer/bert_encoder.h"
#include "nodes/infer/safetensors.h"  // ApplyThreadSettings

namespace nlpflow {

struct TorchScriptModel::Impl {
  // forward() is const in effect (no state is written), but Module::forward
  // is not a const method.
  mutable torch::jit::Module module;
};

TorchScriptModel::TorchScriptModel() = default;
TorchScriptModel::~TorchScriptModel() = default;

namespace {

// Runs forward on padded int64 tensors; the output checked as the header says.
Result<at::Tensor> Forward(torch::jit::Module& module, int inputs, const TokenBatch& b,
                           const std::string& path) {
  auto as_tensor = [&](const std::vector<int64_t>& v) {
    return at::from_blob(const_cast<int64_t*>(v.data()), {b.batch, b.seq_len}, at::kLong);
  };
  std::vector<c10::IValue> args = {as_tensor(b.input_ids), as_tensor(b.attention_mask)};
  std::vector<int64_t> zeros;
  if (inputs == 3) {
    if (b.token_type_ids.empty()) zeros.assign(b.input_ids.size(), 0);
    args.emplace_back(as_tensor(b.token_type_ids.empty() ? zeros : b.token_type_ids));
  }
  const c10::IValue out = module.forward(args);
  if (!out.isTensor()) {
    return Status::InvalidArgument(path + ": forward must return a tensor, returned " +
                                   out.tagKind());
  }
  at::Tensor t = out.toTensor();
  if (t.dim() < 1 || t.size(0) != b.batch || !t.is_floating_point()) {
    return Status::InvalidArgument(path + ": forward must return a float tensor [batch, ...]; "
                                   "for a batch of " + std::to_string(b.batch) + " it returned " +
                                   std::string(c10::toString(t.scalar_type())) + " " +
                                   ShapeToString(t.sizes().vec()));
  }
  return t.to(at::kFloat).contiguous();
}

}  // namespace

Result<std::unique_ptr<TorchScriptModel>> TorchScriptModel::Load(
    const TorchScriptOptions& options) {
  if (options.path.empty()) return Status::InvalidArgument("model path: must not be empty");
  if (options.intra_op_threads < 1) {
    return Status::InvalidArgument("model intra_op_threads: must be at least 1, got " +
                                   std::to_string(options.intra_op_threads));
  }
  const std::string& path = options.path;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound("TorchScript file '" + path + "' does not exist");
  }
  std::unique_ptr<TorchScriptModel> model(new TorchScriptModel());
  model->path_ = path;
  model->vocab_size_ = options.vocab_size;
  model->max_positions_ = options.max_positions;
  model->impl_ = std::make_unique<Impl>();
  ApplyThreadSettings(options.intra_op_threads);
  try {
    model->impl_->module = torch::jit::load(path, c10::kCPU);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path + ": not a loadable TorchScript module: " +
                                   std::string(e.what()).substr(0, 300));
  }
  model->impl_->module.eval();

  // The signature, from forward's schema: self, then 2 or 3 tensors.
  const auto method = model->impl_->module.find_method("forward");
  if (!method) return Status::InvalidArgument(path + ": the module has no forward method");
  const c10::FunctionSchema& schema = method->function().getSchema();
  std::string signature;
  bool all_tensors = true;
  for (size_t i = 1; i < schema.arguments().size(); ++i) {
    const auto& a = schema.arguments()[i];
    signature += (signature.empty() ? "" : ", ") + a.name() + ": " + a.type()->str();
    all_tensors = all_tensors && a.type()->kind() == c10::TypeKind::TensorType;
  }
  const size_t n = schema.arguments().size() - 1;
  if (n < 2 || n > 3 || !all_tensors) {
    return Status::InvalidArgument(
        path + ": forward(" + signature +
        ") does not match (input_ids: Tensor, attention_mask: Tensor[, token_type_ids: Tensor])");
  }
  model->inputs_ = static_cast<int>(n);

  // Warm-up: also proves that the module runs and returns what Run expects.
  model->task_ = options.task;
  TokenBatch warm;
  warm.batch = 1;
  warm.seq_len = 2;
  warm.input_ids = {0, 0};
  warm.attention_mask = {1, 1};
  at::Tensor out;
  try {
    c10::InferenceMode inference_mode;
    NLPFLOW_ASSIGN_OR_RETURN(out, Forward(model->impl_->module, model->inputs_, warm, path));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path + ": forward failed on a 1 x 2 warm-up batch: " +
                                   std::string(e.what()).substr(0, 300));
  }
  if (options.task != ModelTask::kEmbedding) {
    const int64_t rank = options.task == ModelTask::kSequenceClassification ? 2 : 3;
    if (out.dim() != rank || (rank == 3 && out.size(1) != warm.seq_len)) {
      return Status::InvalidArgument(
          path + ": for " + ModelTaskName(options.task) + " forward must return " +
          (rank == 2 ? "[batch, labels]" : "[batch, seq_len, labels]") +
          " logits; for a 1 x 2 batch it returned " + ShapeToString(out.sizes().vec()));
    }
    const int64_t n = out.size(rank - 1);
    if (!options.labels.empty() && static_cast<int64_t>(options.labels.size()) != n) {
      return Status::InvalidArgument(path + ": model.labels names " +
                                     std::to_string(options.labels.size()) +
                                     " labels but the module returns " + std::to_string(n));
    }
    std::vector<std::string> names = options.labels;
    for (int64_t i = static_cast<int64_t>(names.size()); i < n; ++i) {
      names.push_back("LABEL_" + std::to_string(i));
    }
    model->labels_ = std::make_shared<const std::vector<std::string>>(std::move(names));
  }
  return model;
}

Result<std::vector<ModelOutput>> TorchScriptModel::Run(const TokenBatch& b) const {
  NLPFLOW_RETURN_IF_ERROR(ValidateTokenBatch(
      b, max_positions_ > 0 ? max_positions_ : std::numeric_limits<int64_t>::max(),
      vocab_size_ > 0 ? vocab_size_ : std::numeric_limits<int64_t>::max(),
      std::numeric_limits<int64_t>::max()));
  try {
    at::init_num_threads();
    c10::InferenceMode inference_mode;
    NLPFLOW_ASSIGN_OR_RETURN(at::Tensor out, Forward(impl_->module, inputs_, b, path_));
    const int64_t per_row = out.numel() / b.batch;
    std::vector<ModelOutput> rows;
    rows.reserve(static_cast<size_t>(b.batch));
    const float* data = out.data_ptr<float>();
    const int64_t n = static_cast<int64_t>(labels_->size());
    if (task_ == ModelTask::kSequenceClassification) {
      if (out.dim() != 2 || out.size(1) != n) {
        return Status::Internal(path_ + ": forward returned " + ShapeToString(out.sizes().vec()) +
                                ", not [batch, " + std::to_string(n) + "] logits");
      }
      const at::Tensor scores = (n == 1 ? at::sigmoid(out) : at::softmax(out, -1)).contiguous();
      for (int64_t r = 0; r < b.batch; ++r) {
        ClassificationOutput c;
        c.logits.assign(data + r * n, data + (r + 1) * n);
        c.scores.assign(scores.data_ptr<float>() + r * n, scores.data_ptr<float>() + (r + 1) * n);
        c.labels = labels_;
        rows.emplace_back(std::move(c));
      }
      return rows;
    }
    if (task_ == ModelTask::kTokenClassification) {
      if (out.dim() != 3 || out.size(1) != b.seq_len || out.size(2) != n) {
        return Status::Internal(path_ + ": forward returned " + ShapeToString(out.sizes().vec()) +
                                ", not [batch, " + std::to_string(b.seq_len) + ", " +
                                std::to_string(n) + "] token logits");
      }
      for (int64_t r = 0; r < b.batch; ++r) {
        int64_t len = 0;
        while (len < b.seq_len && b.attention_mask[r * b.seq_len + len] == 1) ++len;
        TokenClassificationOutput t;
        t.num_labels = n;
        t.logits.assign(data + r * per_row, data + r * per_row + len * n);
        t.labels = labels_;
        rows.emplace_back(std::move(t));
      }
      return rows;
    }
    for (int64_t r = 0; r < b.batch; ++r) {
      EmbeddingOutput e;
      e.values.assign(data + r * per_row, data + (r + 1) * per_row);
      rows.emplace_back(std::move(e));
    }
    return rows;
  } catch (const std::exception& e) {
    return Status::Internal(path_ + ": TorchScript: " + std::string(e.what()).substr(0, 500));
  }
}

}  // namespace nlpflow
