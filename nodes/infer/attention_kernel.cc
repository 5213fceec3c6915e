#include "nodes/infer/attention_kernel.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "nodes/infer/attention_head.h"

namespace nlpflow {
namespace attention_internal {

// The fallback for CPUs without AVX2: the same three steps, one query at a
// time, std::exp.
void AttendHeadScalar(const HeadArgs& a, float* scratch) {
  float* s = scratch;
  for (int64_t i = 0; i < a.len; ++i) {
    const float* q = a.q + i * a.stride;
    float mx = -3.0e38f;
    for (int64_t j = 0; j < a.len; ++j) {
      const float* k = a.k + j * a.stride;
      float dot = 0;
      for (int64_t c = 0; c < a.head_dim; ++c) dot += q[c] * k[c];
      s[j] = dot * a.scale + (a.bias != nullptr ? a.bias[i * a.bias_row_stride + j] : 0.0f);
      mx = std::max(mx, s[j]);
    }
    float sum = 0;
    for (int64_t j = 0; j < a.len; ++j) {
      s[j] = std::exp(s[j] - mx);
      sum += s[j];
    }
    const float inv = 1.0f / sum;
    float* out = a.out + i * a.out_stride;
    for (int64_t c = 0; c < a.head_dim; ++c) out[c] = 0;
    for (int64_t j = 0; j < a.len; ++j) {
      const float* v = a.v + j * a.stride;
      const float p = s[j] * inv;
      for (int64_t c = 0; c < a.head_dim; ++c) out[c] += p * v[c];
    }
  }
}

}  // namespace attention_internal

namespace {

using attention_internal::HeadArgs;

HeadArgs ArgsOf(const AttentionArgs& a, int64_t start, int64_t len, int64_t h) {
  const float* base = a.qkv + start * a.qkv_stride + h * a.head_dim;
  HeadArgs head;
  head.q = base;
  head.k = base + a.k_offset;
  head.v = base + a.v_offset;
  head.stride = a.qkv_stride;
  head.out = a.out + start * a.out_stride + h * a.head_dim;
  head.out_stride = a.out_stride;
  head.len = len;
  head.head_dim = a.head_dim;
  head.scale = a.scale;
  head.bias = a.bias != nullptr ? a.bias + h * a.bias_head_stride : nullptr;
  head.bias_row_stride = a.bias_row_stride;
  return head;
}

}  // namespace

void FusedAttention(KernelIsa isa, const AttentionArgs& a) {
  void (*kernel)(const HeadArgs&, float*) = attention_internal::AttendHeadScalar;
  if (isa == KernelIsa::kAvx512) kernel = attention_internal::AttendHeadAvx512;
  if (isa == KernelIsa::kAvx2) kernel = attention_internal::AttendHeadAvx2;
  // Row starts, and the scratch of each thread: kept per thread and grown to
  // the longest row seen, so a warm thread allocates nothing here.
  thread_local std::vector<int64_t> starts;
  starts.resize(a.rows + 1);
  int64_t max_len = 0;
  starts[0] = 0;
  for (int64_t r = 0; r < a.rows; ++r) {
    starts[r + 1] = starts[r] + a.lengths[r];
    max_len = std::max(max_len, a.lengths[r]);
  }
  const int64_t scratch_floats = attention_internal::HeadScratchFloats(max_len, a.head_dim);
  const int64_t items = a.rows * a.heads;
  const int64_t* row_starts = starts.data();
  auto run = [&](int64_t item) {
    thread_local std::vector<float> scratch;
    if (static_cast<int64_t>(scratch.size()) < scratch_floats) scratch.resize(scratch_floats);
    const int64_t r = item / a.heads, h = item % a.heads;
    kernel(ArgsOf(a, row_starts[r], a.lengths[r], h), scratch.data());
  };
  if (omp_get_max_threads() == 1 || items == 1) {
    for (int64_t item = 0; item < items; ++item) run(item);
    return;
  }
  // Rows differ in length (cost ~ len^2): dynamic scheduling balances them.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t item = 0; item < items; ++item) run(item);
}

void ReferenceAttention(const AttentionArgs& a) {
  int64_t start = 0;
  std::vector<double> s;
  for (int64_t r = 0; r < a.rows; ++r) {
    const int64_t len = a.lengths[r];
    s.resize(len);
    for (int64_t h = 0; h < a.heads; ++h) {
      const HeadArgs x = ArgsOf(a, start, len, h);
      for (int64_t i = 0; i < len; ++i) {
        double mx = -1e300;
        for (int64_t j = 0; j < len; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < a.head_dim; ++c) {
            dot += static_cast<double>(x.q[i * x.stride + c]) * x.k[j * x.stride + c];
          }
          s[j] = dot * a.scale + (x.bias != nullptr ? x.bias[i * x.bias_row_stride + j] : 0.0);
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < len; ++j) {
          s[j] = std::exp(s[j] - mx);
          sum += s[j];
        }
        for (int64_t c = 0; c < a.head_dim; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < len; ++j) acc += s[j] * x.v[j * x.stride + c];
          x.out[i * x.out_stride + c] = static_cast<float>(acc / sum);
        }
      }
    }
    start += len;
  }
}

}  // namespace nlpflow
