#include "nodes/infer/int8_rows.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

// One copy of each pass per instruction set; glibc's loader picks one by the
// CPU's features. (Not "arch=...": that clone is chosen only on that very CPU
// model, and this Xeon got the baseline copy.)
#define NLPFLOW_ROW_KERNEL __attribute__((target_clones("avx512f", "avx2", "default")))
#define NLPFLOW_INLINE inline __attribute__((always_inline))

namespace nlpflow {
namespace {

// Round half to even for |x| < 2^22 (1.5 x 2^23 pushes the fraction out).
NLPFLOW_INLINE float RoundEven(float x) { return (x + 12582912.0f) - 12582912.0f; }

// e^x: 2^k e^r with r in [-ln2/2, ln2/2] and a degree-7 Taylor polynomial
// (relative error about 1e-7); x clamped to [-87, 88].
NLPFLOW_INLINE float Exp(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float k = RoundEven(x * 1.44269504f);
  float r = x - k * 0.693145751953125f;
  r -= k * 1.428606765330187e-06f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float s;
  std::memcpy(&s, &bits, sizeof(s));
  return p * s;
}

// Abramowitz and Stegun 7.1.26: |error| < 1.5e-7.
NLPFLOW_INLINE float Erf(float x) {
  const float a = std::abs(x);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * Exp(-a * a);
  return x < 0 ? -y : y;
}

// The codes with AVX-512 intrinsics: GCC vectorizes the float -> u8 loop
// below with 128-bit vectors only (AVX-512 F has no byte vectors; a clone
// for AVX-512 BW is refused by its resolver), and vpmovusdb narrows 16 codes
// at once. The same arithmetic as the loop: round half to even of
// x * inv_smooth * inv, plus the zero point, clamped.
__attribute__((target("avx512f"))) void CodesAvx512(const float* x, const float* inv_smooth,
                                                    int64_t k, float inv, float zp, float top,
                                                    uint8_t* codes) {
  const __m512 vinv = _mm512_set1_ps(inv), vzp = _mm512_set1_ps(zp), vtop = _mm512_set1_ps(top);
  const __m512 vzero = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= k; j += 16) {
    __m512 v = _mm512_loadu_ps(x + j);
    if (inv_smooth != nullptr) v = _mm512_mul_ps(v, _mm512_loadu_ps(inv_smooth + j));
    v = _mm512_roundscale_ps(_mm512_mul_ps(v, vinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(v, vzp), vzero), vtop);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + j),
                     _mm512_cvtusepi32_epi8(_mm512_cvttps_epi32(v)));
  }
  for (; j < k; ++j) {
    const float v = inv_smooth != nullptr ? x[j] * inv_smooth[j] : x[j];
    const float c = RoundEven(v * inv) + zp;
    codes[j] = static_cast<uint8_t>(static_cast<int32_t>(std::min(std::max(c, 0.0f), top)));
  }
}

bool HasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

}  // namespace

NLPFLOW_ROW_KERNEL
RowQuantization QuantizeRow(const float* x, const float* inv_smooth, int64_t k, int levels,
                            uint8_t* codes) {
  // 16 lanes of running minima and maxima (a plain reduction with std::min
  // stayed scalar: it measured the hottest loop of the int8 forward).
  constexpr int kLanes = 16;
  float lo_lane[kLanes] = {}, hi_lane[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= k; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float v = inv_smooth != nullptr ? x[j + l] * inv_smooth[j + l] : x[j + l];
      lo_lane[l] = v < lo_lane[l] ? v : lo_lane[l];
      hi_lane[l] = v > hi_lane[l] ? v : hi_lane[l];
    }
  }
  for (; j < k; ++j) {
    const float v = inv_smooth != nullptr ? x[j] * inv_smooth[j] : x[j];
    lo_lane[0] = v < lo_lane[0] ? v : lo_lane[0];
    hi_lane[0] = v > hi_lane[0] ? v : hi_lane[0];
  }
  float lo = 0, hi = 0;
  for (int l = 0; l < kLanes; ++l) {
    lo = std::min(lo, lo_lane[l]);
    hi = std::max(hi, hi_lane[l]);
  }
  const float top = static_cast<float>(levels - 1);
  RowQuantization q;
  if (hi - lo > 0) {
    q.scale = (hi - lo) / top;
    q.zero_point = static_cast<int32_t>(std::min(std::max(RoundEven(-lo / q.scale), 0.0f), top));
  }
  const float inv = 1.0f / q.scale;
  const float zp = static_cast<float>(q.zero_point);
  if (HasAvx512()) {
    CodesAvx512(x, inv_smooth, k, inv, zp, top, codes);
  } else if (inv_smooth != nullptr) {
#pragma omp simd
    for (int64_t j = 0; j < k; ++j) {
      const float c = RoundEven(x[j] * inv_smooth[j] * inv) + zp;
      codes[j] = static_cast<uint8_t>(static_cast<int32_t>(std::min(std::max(c, 0.0f), top)));
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < k; ++j) {
      const float c = RoundEven(x[j] * inv) + zp;
      codes[j] = static_cast<uint8_t>(static_cast<int32_t>(std::min(std::max(c, 0.0f), top)));
    }
  }
  return q;
}

NLPFLOW_ROW_KERNEL
void DequantizeRow(const int32_t* acc, RowQuantization q, const float* w_scale,
                   const float* code_sum, const float* bias, int64_t n, bool accumulate,
                   float* y) {
  const float s = q.scale;
  const float zp = static_cast<float>(q.zero_point);
  if (accumulate) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      y[j] += s * w_scale[j] * (static_cast<float>(acc[j]) - zp * code_sum[j]) + bias[j];
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      y[j] = s * w_scale[j] * (static_cast<float>(acc[j]) - zp * code_sum[j]) + bias[j];
    }
  }
}

NLPFLOW_ROW_KERNEL
void ActivateRow(Activation act, float* y, int64_t n) {
  switch (act) {
    case Activation::kGeluErf:
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y[j] = 0.5f * y[j] * (1.0f + Erf(y[j] * 0.70710678118f));
      break;
    case Activation::kGeluTanh:
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) {
        const float x = y[j];
        const float u = 0.79788456080f * (x + 0.044715f * x * x * x);
        y[j] = 0.5f * x * (2.0f - 2.0f / (Exp(2.0f * u) + 1.0f));
      }
      break;
    case Activation::kRelu:
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y[j] = std::max(y[j], 0.0f);
      break;
    case Activation::kSilu:
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y[j] = y[j] / (1.0f + Exp(-y[j]));
      break;
  }
}

}  // namespace nlpflow
