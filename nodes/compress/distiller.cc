#include "nodes/compress/distiller.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <optional>
#include <random>

#include "nodes/compress/pruner.h"
#include "nodes/compress/student_bert.h"
#include "nodes/compress/train_loop.h"

namespace nlpflow {

std::vector<int64_t> StudentLayerIndices(int64_t teacher_layers, int64_t k) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < k; ++i) out.push_back((i + 1) * teacher_layers / k - 1);
  return out;
}

Result<TrainReport> TrainStudent(StudentBert* student, const std::vector<DistillExample>& examples,
                                 const TrainOptions& o, const std::string& source_dir) {
  if (examples.empty()) return Status::InvalidArgument("distill: no training texts");
  if (o.epochs < 1 || o.batch_size < 1 || !(o.learning_rate > 0)) {
    return Status::InvalidArgument("distill: epochs, batch size and learning rate must be positive");
  }
  const int64_t dim = student->config().hidden_size;
  for (const auto& e : examples) {
    if (static_cast<int64_t>(e.target.size()) != dim || e.ids.empty()) {
      return Status::InvalidArgument("distill: a teacher embedding has " +
                                     std::to_string(e.target.size()) +
                                     " values but the student's hidden size is " +
                                     std::to_string(dim));
    }
  }
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t per_epoch = (n + o.batch_size - 1) / o.batch_size;
  const int64_t steps = per_epoch * o.epochs;
  const WarmupLinearSchedule schedule(o.learning_rate, steps, o.warmup_fraction);

  const bool token_loss = o.teacher != nullptr && o.token_loss_weight > 0;
  auto normalize_rows = [](const at::Tensor& x) {
    return x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  };
  // Per example: the teacher's last-layer token states, L2-normalized per
  // token, computed the first time the example is in a batch.
  std::vector<at::Tensor> teacher_tokens(token_loss ? n : 0);
  // The states of `batch` (example indices), row after row.
  auto teacher_states = [&](const std::vector<int64_t>& batch) {
    std::vector<int64_t> missing;
    std::vector<const std::vector<int32_t>*> rows;
    for (int64_t e : batch) {
      if (teacher_tokens[e].defined()) continue;
      missing.push_back(e);
      rows.push_back(&examples[e].ids);
    }
    if (!missing.empty()) {
      c10::NoGradGuard no_grad;
      auto [ids, mask] = PadIds(rows);
      at::Tensor states;
      o.teacher->Forward(ids, mask, &states);
      states = normalize_rows(states);
      int64_t offset = 0;
      for (int64_t e : missing) {
        const int64_t len = static_cast<int64_t>(examples[e].ids.size());
        teacher_tokens[e] = states.narrow(0, offset, len).clone();
        offset += len;
      }
    }
    std::vector<at::Tensor> parts;
    for (int64_t e : batch) parts.push_back(teacher_tokens[e]);
    return at::cat(parts, 0);
  };

  TrainReport report;
  report.steps = steps;
  std::vector<double> losses;
  std::mt19937_64 rng(o.seed);
  std::vector<int64_t> lengths;
  for (const auto& e : examples) lengths.push_back(static_cast<int64_t>(e.ids.size()));
  const auto start = std::chrono::steady_clock::now();
  try {
    student->SetRequiresGrad(true);
    AdamW optimizer(student->TrainableParameters(), o.weight_decay);
    int64_t step = 0;
    for (int epoch = 1; epoch <= o.epochs; ++epoch) {
      const std::vector<std::vector<int64_t>> batches = EpochBatches(lengths, o.batch_size, &rng);
      double epoch_loss = 0;
      for (const std::vector<int64_t>& batch : batches) {
        std::vector<const std::vector<int32_t>*> rows;
        std::vector<float> target;
        for (int64_t e : batch) {
          rows.push_back(&examples[e].ids);
          target.insert(target.end(), examples[e].target.begin(), examples[e].target.end());
        }
        auto [ids, mask] = PadIds(rows);
        const at::Tensor t =
            at::from_blob(target.data(), {static_cast<int64_t>(rows.size()), dim}, at::kFloat);
        at::Tensor loss;
        if (token_loss) {
          at::Tensor student_tokens;
          const at::Tensor embeddings = student->Forward(ids, mask, &student_tokens);
          loss = at::mse_loss(embeddings, t) +
                 o.token_loss_weight *
                     at::mse_loss(normalize_rows(student_tokens), teacher_states(batch));
        } else {
          loss = at::mse_loss(student->Forward(ids, mask), t);
        }
        loss.backward();
        const double lr = schedule.At(step);
        optimizer.Step(lr);
        ++step;
        const double value = loss.item<double>();
        losses.push_back(value);
        epoch_loss += value;
        if (o.progress) {
          TrainProgress p;
          p.step = step;
          p.steps = steps;
          p.epoch = epoch;
          p.loss = value;
          p.learning_rate = lr;
          p.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          p.eta_s = p.elapsed_s / step * (steps - step);
          o.progress(p);
        }
      }
      report.epoch_losses.push_back(epoch_loss / static_cast<double>(batches.size()));
      if (!o.checkpoint_dir.empty()) {
        NLPFLOW_RETURN_IF_ERROR(student->Save(
            o.checkpoint_dir + "/epoch-" + std::to_string(epoch), source_dir));
      }
    }
    student->SetRequiresGrad(false);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("distill: LibTorch: ") + e.what());
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const size_t tenth = std::max<size_t>(1, losses.size() / 10);
  report.first_loss =
      std::accumulate(losses.begin(), losses.begin() + tenth, 0.0) / static_cast<double>(tenth);
  report.last_loss =
      std::accumulate(losses.end() - tenth, losses.end(), 0.0) / static_cast<double>(tenth);
  return report;
}

Result<TrainReport> Distill(const DistillOptions& o, const std::vector<DistillExample>& examples) {
  NLPFLOW_ASSIGN_OR_RETURN(StudentBert student, StudentBert::Load(o.teacher_dir));
  const int64_t teacher_layers = student.config().num_hidden_layers;
  if (o.layers < 1 || o.layers > teacher_layers) {
    return Status::InvalidArgument("distill: the student must have 1 to " +
                                   std::to_string(teacher_layers) +
                                   " layers (the teacher's), got " + std::to_string(o.layers));
  }
  if (o.ffn < 0) return Status::InvalidArgument("distill: --ffn must not be negative");
  if (examples.empty()) {
    return Status::InvalidArgument("distill: the corpus has no texts to train on");
  }
  NLPFLOW_RETURN_IF_ERROR(student.KeepLayers(StudentLayerIndices(teacher_layers, o.layers)));
  if (o.ffn > 0) {
    for (int64_t l = 0; l < o.layers; ++l) {
      if (o.ffn > student.config().intermediate_size_of(l)) {
        return Status::InvalidArgument("distill: --ffn " + std::to_string(o.ffn) +
                                       " is wider than the teacher's FFN (" +
                                       std::to_string(student.config().intermediate_size_of(l)) +
                                       ")");
      }
    }
    std::vector<std::vector<int32_t>> calibration;
    for (size_t i = 0; i < examples.size() && i < 256; ++i) calibration.push_back(examples[i].ids);
    NLPFLOW_ASSIGN_OR_RETURN(Importance importance, MeasureImportance(student, calibration));
    for (int64_t l = 0; l < o.layers; ++l) {
      const at::Tensor score = at::tensor(importance.ffn[l]);
      const at::Tensor keep = std::get<0>(std::get<1>(score.topk(o.ffn)).sort());
      student.KeepFfnNeurons(l, keep);
    }
  }
  TrainOptions train = o.train;
  std::optional<StudentBert> teacher;
  if (train.token_loss_weight > 0 && train.teacher == nullptr) {
    NLPFLOW_ASSIGN_OR_RETURN(teacher, StudentBert::Load(o.teacher_dir));
    train.teacher = &*teacher;
  }
  NLPFLOW_ASSIGN_OR_RETURN(TrainReport report,
                           TrainStudent(&student, examples, train, o.teacher_dir));
  NLPFLOW_RETURN_IF_ERROR(student.Save(o.out_dir, o.teacher_dir));
  return report;
}

}  // namespace nlpflow
