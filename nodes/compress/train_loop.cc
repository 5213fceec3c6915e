#include "nodes/compress/train_loop.h"

#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace nlpflow {

AdamW::AdamW(std::vector<at::Tensor> params, double weight_decay)
    : params_(std::move(params)), weight_decay_(weight_decay) {
  for (const at::Tensor& p : params_) {
    m_.push_back(at::zeros_like(p));
    v_.push_back(at::zeros_like(p));
    decay_.push_back(p.dim() >= 2);  // matrices only: not biases, LayerNorms
  }
}

void AdamW::Step(double lr) {
  ++t_;
  const double c1 = 1 - std::pow(kBeta1, t_), c2 = 1 - std::pow(kBeta2, t_);
  c10::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    const at::Tensor g = p.grad();
    if (!g.defined()) continue;
    m_[i].mul_(kBeta1).add_(g, 1 - kBeta1);
    v_[i].mul_(kBeta2).addcmul_(g, g, 1 - kBeta2);
    if (decay_[i]) p.mul_(1 - lr * weight_decay_);
    const at::Tensor denom = (v_[i] / c2).sqrt_().add_(kEps);
    p.addcdiv_(m_[i], denom, -lr / c1);
    p.mutable_grad().zero_();
  }
}

WarmupLinearSchedule::WarmupLinearSchedule(double peak, int64_t steps, double warmup_fraction)
    : peak_(peak), steps_(steps), warmup_(static_cast<int64_t>(warmup_fraction * steps)) {}

double WarmupLinearSchedule::At(int64_t step) const {
  if (step < warmup_) return peak_ * (step + 1) / warmup_;
  return peak_ * static_cast<double>(steps_ - step) / std::max<int64_t>(1, steps_ - warmup_);
}

std::vector<std::vector<int64_t>> EpochBatches(const std::vector<int64_t>& lengths,
                                               int64_t batch_size, std::mt19937_64* rng) {
  const int64_t n = static_cast<int64_t>(lengths.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), *rng);
  const int64_t window = 16LL * batch_size;
  for (int64_t w = 0; w < n; w += window) {
    std::sort(order.begin() + w, order.begin() + std::min(n, w + window),
              [&](int64_t a, int64_t b) { return lengths[a] < lengths[b]; });
  }
  std::vector<int64_t> starts;
  for (int64_t b = 0; b < n; b += batch_size) starts.push_back(b);
  std::shuffle(starts.begin(), starts.end(), *rng);
  std::vector<std::vector<int64_t>> batches;
  for (int64_t b : starts) {
    batches.emplace_back(order.begin() + b, order.begin() + std::min(n, b + batch_size));
  }
  return batches;
}

}  // namespace nlpflow
