// What `nlpflow eval` computes from embeddings: fidelity to the teacher
// (cosine), a task metric (a logistic-regression head trained on the
// teacher's embeddings, applied unchanged to a variant's), and the binary
// classification metrics.
//
// Embeddings are row-major [n, dim] float vectors. This header deliberately
// includes no LibTorch header.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace nlpflow {

struct BinaryMetrics {
  int64_t true_positives = 0, false_positives = 0, true_negatives = 0, false_negatives = 0;
  double accuracy = 0;
  double precision = 0;  // 0 when nothing was predicted positive
  double recall = 0;     // 0 when nothing is positive
  double f1 = 0;         // 0 when precision + recall is 0
};

// `truth` and `predicted` hold 0 or 1, same length (INVALID_ARGUMENT
// otherwise, or when empty).
Result<BinaryMetrics> ComputeBinaryMetrics(const std::vector<int>& truth,
                                           const std::vector<int>& predicted);

struct CosineStats {
  double mean = 0, min = 0, p05 = 0;  // p05: 5th percentile
};
// Cosine similarity of row i of `a` and row i of `b`, summarized.
Result<CosineStats> CompareEmbeddings(const std::vector<float>& a, const std::vector<float>& b,
                                      int64_t dim);

// Binary logistic regression on standardized features (the training data's
// per-feature mean and standard deviation are part of the model and applied
// unchanged to whatever it is used on), full-batch gradient descent on the
// mean log-loss plus l2 / 2 * |w|^2.
class LogisticRegression {
 public:
  struct Options {
    int iterations = 500;
    double learning_rate = 0.5;
    double l2 = 1e-3;
  };
  static Result<LogisticRegression> Train(const std::vector<float>& x, int64_t dim,
                                          const std::vector<int>& labels,
                                          const Options& options);
  // P(label 1) per row.
  Result<std::vector<float>> PredictProbability(const std::vector<float>& x) const;
  // 1 where P >= 0.5.
  Result<std::vector<int>> Predict(const std::vector<float>& x) const;
  int64_t dim() const { return dim_; }
  // Training log-loss after the last iteration.
  double final_loss() const { return final_loss_; }

 private:
  int64_t dim_ = 0;
  std::vector<float> mean_, inv_std_, weights_;
  float bias_ = 0;
  double final_loss_ = 0;
};

// The head's metrics on a variant's embeddings and on the teacher's of the
// same texts (`truth` their labels). Rows of `variant` and `teacher` are the
// head's dim wide; an error says which of the two embeddings it came from.
struct HeadScores {
  BinaryMetrics variant;
  BinaryMetrics teacher;
};
Result<HeadScores> ScoreHead(const LogisticRegression& head, const std::vector<int>& truth,
                             const std::vector<float>& variant, const std::vector<float>& teacher);

}  // namespace nlpflow
