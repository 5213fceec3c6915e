#include "nodes/compress/classifier_trainer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "nodes/compress/student_bert.h"
#include "nodes/compress/train_loop.h"
#include "nodes/infer/bert_encoder.h"  // ApplyThreadSettings
#include "nodes/infer/safetensors.h"
#include "nodes/infer/tensor_reader.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;

// BertForSequenceClassification's head over the encoder's [CLS] state.
struct Head {
  at::Tensor pooler_weight, pooler_bias;  // [hidden, hidden], [hidden]
  at::Tensor weight, bias;                // [labels, hidden], [labels]

  std::vector<at::Tensor> Parameters() const {
    return {pooler_weight, pooler_bias, weight, bias};
  }
};

// N(0, stddev) from a seeded generator: the same head for the same seed on
// every machine (LibTorch's own generator would do too, but its sequence is
// an implementation detail).
at::Tensor Normal(std::vector<int64_t> shape, double stddev, std::mt19937_64* rng) {
  at::Tensor t = at::empty(shape, at::kFloat);
  std::normal_distribution<float> normal(0.0f, static_cast<float>(stddev));
  float* p = t.data_ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = normal(*rng);
  return t;
}

// config.json's initializer_range (transformers' default 0.02).
Result<double> InitializerRange(const std::string& dir) {
  const std::string path = (fs::path(dir) / "config.json").string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    return j.value("initializer_range", 0.02);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(path + ": not valid JSON: " + e.what());
  }
}

// The pooler of the encoder's folder when it has one (BertModel keeps it as
// pooler.dense.*, a BertFor* model as bert.pooler.dense.*), else a fresh one
// as transformers initializes it. Then a fresh classifier.
Result<Head> MakeHead(const std::string& dir, int64_t hidden, int64_t labels,
                      std::mt19937_64* rng) {
  NLPFLOW_ASSIGN_OR_RETURN(double init, InitializerRange(dir));
  NLPFLOW_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                           SafetensorsFile::Open((fs::path(dir) / "model.safetensors").string()));
  Head head;
  for (const std::string prefix : {"", "bert."}) {
    if (file->Find(prefix + "pooler.dense.weight") == nullptr) continue;
    NLPFLOW_ASSIGN_OR_RETURN(head.pooler_weight,
                             ReadFloatTensor(*file, prefix + "pooler.dense.weight", {hidden, hidden}));
    NLPFLOW_ASSIGN_OR_RETURN(head.pooler_bias,
                             ReadFloatTensor(*file, prefix + "pooler.dense.bias", {hidden}));
    break;
  }
  if (!head.pooler_weight.defined()) {
    head.pooler_weight = Normal({hidden, hidden}, init, rng);
    head.pooler_bias = at::zeros({hidden}, at::kFloat);
  }
  head.weight = Normal({labels, hidden}, init, rng);
  head.bias = at::zeros({labels}, at::kFloat);
  return head;
}

// Logits [rows, labels] of a padded batch. `dropout` > 0 only in training.
at::Tensor Logits(const StudentBert& encoder, const Head& head, const at::Tensor& ids,
                  const at::Tensor& mask, double dropout) {
  at::Tensor tokens;  // the real tokens' last states, row after row
  encoder.Forward(ids, mask, &tokens);
  // Each row's [CLS] is its first real token: the packed index is the sum
  // of the lengths of the rows before it.
  const at::Tensor lengths = mask.sum(1);
  const at::Tensor first = lengths.cumsum(0) - lengths;
  const at::Tensor cls = tokens.index_select(0, first);
  at::Tensor pooled = at::tanh(at::linear(cls, head.pooler_weight, head.pooler_bias));
  if (dropout > 0) pooled = at::dropout(pooled, dropout, /*train=*/true);
  return at::linear(pooled, head.weight, head.bias);
}

ClassifierMetrics Metrics(const std::vector<int64_t>& truth, const std::vector<int64_t>& predicted,
                          double loss_sum, int64_t labels) {
  ClassifierMetrics m;
  m.texts = static_cast<int64_t>(truth.size());
  m.loss = loss_sum / static_cast<double>(std::max<int64_t>(1, m.texts));
  int64_t correct = 0;
  std::vector<int64_t> tp(labels), fp(labels), fn(labels);
  for (size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] == predicted[i]) {
      ++correct;
      ++tp[truth[i]];
    } else {
      ++fp[predicted[i]];
      ++fn[truth[i]];
    }
  }
  m.accuracy = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(1, m.texts));
  double sum = 0;
  for (int64_t l = 0; l < labels; ++l) {
    const int64_t denominator = 2 * tp[l] + fp[l] + fn[l];
    m.label_f1.push_back(denominator == 0 ? 0.0 : 2.0 * tp[l] / denominator);
    sum += m.label_f1.back();
  }
  m.macro_f1 = sum / static_cast<double>(labels);
  return m;
}

// The model on `examples` in order, batch after batch, without gradients.
struct Evaluation {
  ClassifierMetrics metrics;
  std::vector<float> logits;
  std::vector<int64_t> predicted;
};
Evaluation Evaluate(const StudentBert& encoder, const Head& head,
                    const std::vector<ClassifierExample>& examples, int64_t batch_size,
                    int64_t labels) {
  c10::NoGradGuard no_grad;
  Evaluation e;
  std::vector<int64_t> truth;
  double loss_sum = 0;
  for (size_t b = 0; b < examples.size(); b += batch_size) {
    std::vector<const std::vector<int32_t>*> rows;
    std::vector<int64_t> y;
    for (size_t i = b; i < std::min(examples.size(), b + batch_size); ++i) {
      rows.push_back(&examples[i].ids);
      y.push_back(examples[i].label);
    }
    auto [ids, mask] = PadIds(rows);
    const at::Tensor logits = Logits(encoder, head, ids, mask, 0).contiguous();
    const at::Tensor target = at::tensor(y, at::kLong);
    loss_sum += at::cross_entropy_loss(logits, target, {}, at::Reduction::Sum).item<double>();
    const at::Tensor best = logits.argmax(1).contiguous();
    e.logits.insert(e.logits.end(), logits.data_ptr<float>(),
                    logits.data_ptr<float>() + logits.numel());
    e.predicted.insert(e.predicted.end(), best.data_ptr<int64_t>(),
                       best.data_ptr<int64_t>() + best.numel());
    truth.insert(truth.end(), y.begin(), y.end());
  }
  e.metrics = Metrics(truth, e.predicted, loss_sum, labels);
  return e;
}

Status Check(const FinetuneOptions& o, const std::vector<ClassifierExample>& train,
             const std::vector<ClassifierExample>& eval) {
  const int64_t k = static_cast<int64_t>(o.labels.size());
  if (k < 2) {
    return Status::InvalidArgument("finetune: a classifier needs at least 2 labels, got " +
                                   std::to_string(k));
  }
  if (train.empty()) return Status::InvalidArgument("finetune: no training texts");
  if (o.epochs < 1 || o.batch_size < 1 || !(o.learning_rate > 0)) {
    return Status::InvalidArgument(
        "finetune: epochs, batch size and learning rate must be positive");
  }
  if (!(o.dropout >= 0 && o.dropout < 1)) {
    return Status::InvalidArgument("finetune: dropout must be in [0, 1)");
  }
  for (const auto* set : {&train, &eval}) {
    for (size_t i = 0; i < set->size(); ++i) {
      const ClassifierExample& e = (*set)[i];
      if (e.label < 0 || e.label >= k) {
        return Status::InvalidArgument(std::string("finetune: ") +
                                       (set == &train ? "training" : "eval") + " example " +
                                       std::to_string(i) + " has label id " +
                                       std::to_string(e.label) + "; ids are 0.." +
                                       std::to_string(k - 1));
      }
      if (e.ids.empty()) {
        return Status::InvalidArgument(std::string("finetune: ") +
                                       (set == &train ? "training" : "eval") + " example " +
                                       std::to_string(i) + " has no tokens");
      }
    }
  }
  bool two_classes = false;
  for (const auto& e : train) two_classes = two_classes || e.label != train[0].label;
  if (!two_classes) {
    return Status::InvalidArgument("finetune: every training example has label '" +
                                   o.labels[train[0].label] +
                                   "'; a classifier needs at least two classes to learn from");
  }
  return Status::Ok();
}

}  // namespace

Result<FinetuneReport> FinetuneClassifier(const FinetuneOptions& o,
                                          const std::vector<ClassifierExample>& train,
                                          const std::vector<ClassifierExample>& eval) {
  NLPFLOW_RETURN_IF_ERROR(Check(o, train, eval));
  if (o.threads < 1) return Status::InvalidArgument("finetune: threads must be at least 1");
  ApplyThreadSettings(o.threads);
  const int64_t k = static_cast<int64_t>(o.labels.size());
  NLPFLOW_ASSIGN_OR_RETURN(StudentBert encoder, StudentBert::Load(o.encoder_dir));
  std::mt19937_64 rng(o.seed);
  Head head;
  try {
    NLPFLOW_ASSIGN_OR_RETURN(head, MakeHead(o.encoder_dir, encoder.config().hidden_size, k, &rng));
  } catch (const std::exception& e) {
    return Status::Internal("finetune: " + o.encoder_dir + ": LibTorch: " + e.what());
  }

  const int64_t n = static_cast<int64_t>(train.size());
  const int64_t steps = (n + o.batch_size - 1) / o.batch_size * o.epochs;
  const WarmupLinearSchedule schedule(o.learning_rate, steps, o.warmup_fraction);
  std::vector<int64_t> lengths;
  for (const auto& e : train) lengths.push_back(static_cast<int64_t>(e.ids.size()));

  FinetuneReport report;
  report.train.steps = steps;
  std::vector<double> losses;
  const auto start = std::chrono::steady_clock::now();
  try {
    at::manual_seed(o.seed);  // dropout masks
    encoder.SetRequiresGrad(true);
    std::vector<at::Tensor> params = encoder.TrainableParameters();
    for (at::Tensor& t : head.Parameters()) {
      t.set_requires_grad(true);
      params.push_back(t);
    }
    AdamW optimizer(params, o.weight_decay);
    int64_t step = 0;
    for (int epoch = 1; epoch <= o.epochs; ++epoch) {
      const std::vector<std::vector<int64_t>> batches = EpochBatches(lengths, o.batch_size, &rng);
      double epoch_loss = 0;
      for (const std::vector<int64_t>& batch : batches) {
        std::vector<const std::vector<int32_t>*> rows;
        std::vector<int64_t> y;
        for (int64_t e : batch) {
          rows.push_back(&train[e].ids);
          y.push_back(train[e].label);
        }
        auto [ids, mask] = PadIds(rows);
        const at::Tensor loss =
            at::cross_entropy_loss(Logits(encoder, head, ids, mask, o.dropout),
                                   at::tensor(y, at::kLong));
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
          p.elapsed_s =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          p.eta_s = p.elapsed_s / step * (steps - step);
          o.progress(p);
        }
      }
      report.train.epoch_losses.push_back(epoch_loss / static_cast<double>(batches.size()));
      ClassifierMetrics metrics;
      if (!eval.empty()) {
        Evaluation e = Evaluate(encoder, head, eval, o.batch_size, k);
        metrics = e.metrics;
        report.epoch_eval.push_back(e.metrics);
        if (epoch == o.epochs) {
          report.eval_logits = std::move(e.logits);
          report.eval_predicted = std::move(e.predicted);
        }
      }
      if (o.epoch_done) o.epoch_done(epoch, report.train.epoch_losses.back(), metrics);
    }
    encoder.SetRequiresGrad(false);
    for (at::Tensor& t : head.Parameters()) t.set_requires_grad(false);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("finetune: LibTorch: ") + e.what());
  }
  report.train.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const size_t tenth = std::max<size_t>(1, losses.size() / 10);
  report.train.first_loss =
      std::accumulate(losses.begin(), losses.begin() + tenth, 0.0) / static_cast<double>(tenth);
  report.train.last_loss =
      std::accumulate(losses.end() - tenth, losses.end(), 0.0) / static_cast<double>(tenth);

  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (int64_t i = 0; i < k; ++i) {
    id2label[std::to_string(i)] = o.labels[i];
    label2id[o.labels[i]] = i;
  }
  const nlohmann::json extra = {{"architectures", {"BertForSequenceClassification"}},
                                {"id2label", id2label},
                                {"label2id", label2id},
                                {"num_labels", k},
                                {"problem_type", "single_label_classification"}};
  StudentBert::SaveLayout layout;
  layout.prefix = "bert.";
  layout.extra_tensors = {{"bert.pooler.dense.weight", head.pooler_weight},
                          {"bert.pooler.dense.bias", head.pooler_bias},
                          {"classifier.weight", head.weight},
                          {"classifier.bias", head.bias}};
  layout.sentence_transformers_files = false;
  NLPFLOW_RETURN_IF_ERROR(encoder.Save(o.out_dir, o.encoder_dir, extra.dump(), layout));
  return report;
}

}  // namespace nlpflow
