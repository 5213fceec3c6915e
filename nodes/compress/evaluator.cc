#include "nodes/compress/evaluator.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

namespace nlpflow {

Result<BinaryMetrics> ComputeBinaryMetrics(const std::vector<int>& truth,
                                           const std::vector<int>& predicted) {
  if (truth.empty() || truth.size() != predicted.size()) {
    return Status::InvalidArgument("metrics: " + std::to_string(truth.size()) + " labels and " +
                                   std::to_string(predicted.size()) +
                                   " predictions (need the same, at least one)");
  }
  BinaryMetrics m;
  for (size_t i = 0; i < truth.size(); ++i) {
    if ((truth[i] != 0 && truth[i] != 1) || (predicted[i] != 0 && predicted[i] != 1)) {
      return Status::InvalidArgument("metrics: labels must be 0 or 1 (row " + std::to_string(i) +
                                     ")");
    }
    if (truth[i] == 1) {
      (predicted[i] == 1 ? m.true_positives : m.false_negatives)++;
    } else {
      (predicted[i] == 1 ? m.false_positives : m.true_negatives)++;
    }
  }
  const double tp = static_cast<double>(m.true_positives);
  m.accuracy = (tp + static_cast<double>(m.true_negatives)) / static_cast<double>(truth.size());
  const int64_t predicted_positive = m.true_positives + m.false_positives;
  const int64_t positive = m.true_positives + m.false_negatives;
  m.precision = predicted_positive == 0 ? 0 : tp / static_cast<double>(predicted_positive);
  m.recall = positive == 0 ? 0 : tp / static_cast<double>(positive);
  m.f1 = m.precision + m.recall == 0 ? 0 : 2 * m.precision * m.recall / (m.precision + m.recall);
  return m;
}

Result<CosineStats> CompareEmbeddings(const std::vector<float>& a, const std::vector<float>& b,
                                      int64_t dim) {
  if (dim <= 0 || a.empty() || a.size() != b.size() || a.size() % dim != 0) {
    return Status::InvalidArgument("cosine: embeddings of different sizes (" +
                                   std::to_string(a.size()) + " and " + std::to_string(b.size()) +
                                   " values, dim " + std::to_string(dim) + ")");
  }
  const int64_t n = static_cast<int64_t>(a.size()) / dim;
  std::vector<double> cos(n);
  for (int64_t i = 0; i < n; ++i) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t j = 0; j < dim; ++j) {
      const double x = a[i * dim + j], y = b[i * dim + j];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    cos[i] = ab / std::max(std::sqrt(aa * bb), 1e-12);
  }
  CosineStats s;
  for (double c : cos) s.mean += c;
  s.mean /= static_cast<double>(n);
  std::sort(cos.begin(), cos.end());
  s.min = cos.front();
  s.p05 = cos[static_cast<size_t>(0.05 * static_cast<double>(n - 1))];
  return s;
}

Result<LogisticRegression> LogisticRegression::Train(const std::vector<float>& x, int64_t dim,
                                                     const std::vector<int>& labels,
                                                     const Options& o) {
  if (dim <= 0 || labels.empty() || x.size() != labels.size() * static_cast<size_t>(dim)) {
    return Status::InvalidArgument("logistic regression: " + std::to_string(labels.size()) +
                                   " labels for " + std::to_string(x.size()) +
                                   " feature values of dim " + std::to_string(dim));
  }
  const int64_t n = static_cast<int64_t>(labels.size());
  LogisticRegression lr;
  lr.dim_ = dim;
  try {
    c10::NoGradGuard no_grad;
    const at::Tensor X = at::from_blob(const_cast<float*>(x.data()), {n, dim}, at::kFloat);
    std::vector<float> yv(labels.begin(), labels.end());
    const at::Tensor y = at::from_blob(yv.data(), {n}, at::kFloat).clone();
    const at::Tensor mean = X.mean(0);
    const at::Tensor inv_std = X.std(0, /*unbiased=*/false).clamp_min(1e-6).reciprocal();
    const at::Tensor Z = (X - mean) * inv_std;
    at::Tensor w = at::zeros({dim}, at::kFloat);
    at::Tensor b = at::zeros({}, at::kFloat);
    for (int it = 0; it < o.iterations; ++it) {
      const at::Tensor err = at::sigmoid(at::mv(Z, w) + b) - y;  // d loss / d logit
      const at::Tensor gw = at::mv(Z.t(), err) / static_cast<double>(n) + w * o.l2;
      w = w - gw * o.learning_rate;
      b = b - err.mean() * o.learning_rate;
    }
    lr.final_loss_ =
        at::binary_cross_entropy_with_logits(at::mv(Z, w) + b, y).item<double>();
    auto to_vec = [](const at::Tensor& t) {
      const at::Tensor c = t.contiguous();
      return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    };
    lr.mean_ = to_vec(mean);
    lr.inv_std_ = to_vec(inv_std);
    lr.weights_ = to_vec(w);
    lr.bias_ = b.item<float>();
  } catch (const std::exception& e) {
    return Status::Internal(std::string("logistic regression: LibTorch: ") + e.what());
  }
  return lr;
}

Result<std::vector<float>> LogisticRegression::PredictProbability(
    const std::vector<float>& x) const {
  if (x.size() % static_cast<size_t>(dim_) != 0) {
    return Status::InvalidArgument("logistic regression: " + std::to_string(x.size()) +
                                   " values are not rows of dim " + std::to_string(dim_));
  }
  const size_t n = x.size() / static_cast<size_t>(dim_);
  std::vector<float> p(n);
  for (size_t i = 0; i < n; ++i) {
    double z = bias_;
    for (int64_t j = 0; j < dim_; ++j) {
      z += (x[i * dim_ + j] - mean_[j]) * inv_std_[j] * weights_[j];
    }
    p[i] = static_cast<float>(1.0 / (1.0 + std::exp(-z)));
  }
  return p;
}

Result<std::vector<int>> LogisticRegression::Predict(const std::vector<float>& x) const {
  NLPFLOW_ASSIGN_OR_RETURN(std::vector<float> p, PredictProbability(x));
  std::vector<int> out(p.size());
  for (size_t i = 0; i < p.size(); ++i) out[i] = p[i] >= 0.5f ? 1 : 0;
  return out;
}

Result<HeadScores> ScoreHead(const LogisticRegression& head, const std::vector<int>& truth,
                             const std::vector<float>& variant, const std::vector<float>& teacher) {
  HeadScores scores;
  for (auto [x, out, name] : {std::tuple(&variant, &scores.variant, "variant"),
                              std::tuple(&teacher, &scores.teacher, "teacher")}) {
    auto predicted = head.Predict(*x);
    if (!predicted.ok()) return predicted.status().WithContext(std::string(name) + " embeddings");
    auto metrics = ComputeBinaryMetrics(truth, *predicted);
    if (!metrics.ok()) return metrics.status().WithContext(std::string(name) + " embeddings");
    *out = *metrics;
  }
  return scores;
}

}  // namespace nlpflow
