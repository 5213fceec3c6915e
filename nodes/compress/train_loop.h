// The pieces every training run of nodes/compress shares (distillation,
// pruning recovery, classifier fine-tuning): AdamW, the learning-rate
// schedule and the order of the batches.
//
// INTERNAL to nodes/compress: this header includes ATen.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <random>
#include <vector>

namespace nlpflow {

// AdamW (Loshchilov & Hutter): Adam moments, and the weight decay applied
// to the weights directly rather than through the gradient. Matrices decay;
// vectors (biases, LayerNorms) do not.
class AdamW {
 public:
  AdamW(std::vector<at::Tensor> params, double weight_decay);
  // One update of every parameter that has a gradient, then zeroes the
  // gradients.
  void Step(double lr);

 private:
  static constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
  std::vector<at::Tensor> params_, m_, v_;
  std::vector<bool> decay_;
  double weight_decay_;
  int64_t t_ = 0;
};

// Linear warm-up from 0 over warmup_fraction of `steps`, then linear decay
// to 0 at the last step.
class WarmupLinearSchedule {
 public:
  WarmupLinearSchedule(double peak, int64_t steps, double warmup_fraction);
  double At(int64_t step) const;  // step: 0-based

 private:
  double peak_;
  int64_t steps_, warmup_;
};

// One epoch's batches (example indices): shuffled, then sorted by length
// within windows of 16 batches so that batches carry little padding but
// still vary from epoch to epoch, and the batches themselves shuffled.
std::vector<std::vector<int64_t>> EpochBatches(const std::vector<int64_t>& lengths,
                                               int64_t batch_size, std::mt19937_64* rng);

}  // namespace nlpflow
