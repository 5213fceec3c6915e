// The row passes of the encoder program's dynamic int8 (encoder_program.h):
// quantizing an fp32 row to u8 codes with a scale and zero point of its own,
// and the epilogue that turns a row of int32 accumulators of a u8 x s8 matmul
// back into fp32 with the bias (and the residual) added.
//
// Per row r and output channel n, with codes q_x = round(x / s_x) + z_x and
// weight codes q_w[n, k] = round(w[n, k] / s_w[n]):
//   y[r, n] = s_x[r] s_w[n] (acc[r, n] - z_x[r] sum_k q_w[n, k]) + b[n]
// where acc = sum_k q_x[r, k] q_w[n, k] is what the matmul computes exactly in
// int32, and sum_k q_w[n, k] is a constant per channel made at load.
//
// The functions are compiled for AVX-512, AVX2 and baseline x86-64 and the
// loader picks one for the CPU (GCC's target_clones). This header includes
// neither ATen nor oneDNN.
#pragma once

#include <cstdint>

#include "nodes/infer/encoder_program.h"

namespace nlpflow {

struct RowQuantization {
  float scale = 1;         // s_x: x ~ scale * (code - zero_point)
  int32_t zero_point = 0;  // z_x, in [0, levels - 1]
};

// codes[j] = clamp(round_half_even(x[j] * inv_smooth[j] / scale) + zero_point,
// 0, levels - 1), inv_smooth == nullptr meaning 1. The range [lo, hi] is the
// row's own (lo = min(0, min_j), hi = max(0, max_j) of the smoothed values),
// so 0 is a code and no value clips: scale = (hi - lo) / (levels - 1),
// zero_point = round(-lo / scale); a row of zeros gets scale 1, zero point 0.
// levels: 256 (8-bit codes) or 128 (7-bit, for CPUs without VNNI).
RowQuantization QuantizeRow(const float* x, const float* inv_smooth, int64_t k, int levels,
                            uint8_t* codes);

// y[n] = q.scale * w_scale[n] * (acc[n] - q.zero_point * code_sum[n]) + bias[n],
// plus the old y[n] when `accumulate` (the residual add).
void DequantizeRow(const int32_t* acc, RowQuantization q, const float* w_scale,
                   const float* code_sum, const float* bias, int64_t n, bool accumulate,
                   float* y);

// y[j] = act(y[j]) in place. GELU's erf and the exponentials are polynomial
// approximations (absolute error below 2e-7 for erf), so the loop vectorizes.
void ActivateRow(Activation act, float* y, int64_t n);

}  // namespace nlpflow
