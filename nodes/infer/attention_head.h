// INTERNAL to the attention kernels (attention_kernel.cc and the per-ISA
// files): one (row, head) of fused attention. Plain data only, because the
// per-ISA files are compiled with -mavx2 / -mavx512f and must not instantiate
// inline code (std templates) that another translation unit could pick.
#pragma once

#include <cstdint>

namespace nlpflow::attention_internal {

struct HeadArgs {
  const float* q;  // q[i * stride + c], i < len, c < head_dim
  const float* k;
  const float* v;
  int64_t stride;
  float* out;  // out[i * out_stride + c]
  int64_t out_stride;
  int64_t len, head_dim;
  float scale;
  const float* bias;  // bias[i * bias_row_stride + j], or null
  int64_t bias_row_stride;
};

// Floats of scratch one call needs.
inline int64_t HeadScratchFloats(int64_t len, int64_t head_dim) {
  const int64_t padded = (len + 31) / 32 * 32;
  return padded * (head_dim + 4) + 64;
}

void AttendHeadScalar(const HeadArgs& a, float* scratch);
void AttendHeadAvx2(const HeadArgs& a, float* scratch);    // attention_avx2.cc
void AttendHeadAvx512(const HeadArgs& a, float* scratch);  // attention_avx512.cc

}  // namespace nlpflow::attention_internal
