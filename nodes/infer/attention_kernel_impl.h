// INTERNAL: the vector algorithm of one (row, head) of fused attention,
// written once over a vector type `V` (attention_avx2.cc, attention_avx512.cc
// instantiate it with their own instruction set). Everything here has
// internal linkage: see attention_head.h.
//
// For a block of QB queries (QB accumulators per vector of keys keep the FMA
// units busy where one query alone would wait on the FMA latency):
//   1. scores s[qi][j] = scale * q_i . k_j, vectorized over j against K
//      transposed once per (row, head) into kt[c][j] (zero-padded to a
//      multiple of 2 vectors),
//   2. + bias, softmax with the row max subtracted, exp of the vector kind,
//   3. out_i = (sum_j e_ij v_j) / sum_j e_ij, vectorized over the head
//      dimension (masked loads and stores for a tail, so odd head dims work).
#pragma once

#include <cstdint>

#include "nodes/infer/attention_head.h"

namespace nlpflow::attention_internal {
namespace {

constexpr int kQueryBlock = 4;

inline int64_t MinI(int64_t a, int64_t b) { return a < b ? a : b; }

template <typename V, int QB>
inline void QueryBlock(const HeadArgs& a, const float* kt, int64_t lp, float* s, int64_t i0) {
  using T = typename V::T;
  constexpr int W = V::kWidth;
  const int64_t len = a.len, d = a.head_dim;
  const T scale = V::Set1(a.scale);
  // 1. Scores.
  for (int64_t jb = 0; jb < lp; jb += 2 * W) {
    T acc0[QB], acc1[QB];
    for (int qi = 0; qi < QB; ++qi) acc0[qi] = acc1[qi] = V::Zero();
    const float* q = a.q + i0 * a.stride;
    for (int64_t c = 0; c < d; ++c) {
      const T k0 = V::Load(kt + c * lp + jb);
      const T k1 = V::Load(kt + c * lp + jb + W);
      for (int qi = 0; qi < QB; ++qi) {
        const T b = V::Set1(q[qi * a.stride + c]);
        acc0[qi] = V::Fma(b, k0, acc0[qi]);
        acc1[qi] = V::Fma(b, k1, acc1[qi]);
      }
    }
    for (int qi = 0; qi < QB; ++qi) {
      V::Store(s + qi * lp + jb, V::Mul(acc0[qi], scale));
      V::Store(s + qi * lp + jb + W, V::Mul(acc1[qi], scale));
    }
  }
  // 2. Bias and softmax over the len real keys; 1 / sum per query.
  float inv[QB];
  for (int qi = 0; qi < QB; ++qi) {
    float* row = s + qi * lp;
    if (a.bias != nullptr) {
      const float* b = a.bias + (i0 + qi) * a.bias_row_stride;
      for (int64_t j = 0; j < len; j += W) {
        const int64_t n = MinI(W, len - j);
        V::StorePartial(row + j, V::Add(V::LoadPartial(row + j, n), V::LoadPartial(b + j, n)),
                        n);
      }
    }
    T mx = V::Set1(-3.0e38f);
    for (int64_t j = 0; j < len; j += W) {
      const int64_t n = MinI(W, len - j);
      mx = V::Max(mx, n == W ? V::Load(row + j) : V::LoadPartialFill(row + j, n, -3.0e38f));
    }
    const T m = V::Set1(V::HMax(mx));
    T sum = V::Zero();
    for (int64_t j = 0; j < len; j += W) {
      const int64_t n = MinI(W, len - j);
      if (n == W) {
        const T e = V::Exp(V::Sub(V::Load(row + j), m));
        V::Store(row + j, e);
        sum = V::Add(sum, e);
      } else {
        // exp of the padding lanes is masked out of the sum and not stored.
        const T e = V::Exp(V::Sub(V::LoadPartial(row + j, n), m));
        V::StorePartial(row + j, e, n);
        sum = V::Add(sum, V::LoadPartial(row + j, n));
      }
    }
    inv[qi] = 1.0f / V::HSum(sum);
  }
  // 3. Weighted sum of the values, two vectors of the head dimension at a time.
  for (int64_t c0 = 0; c0 < d; c0 += 2 * W) {
    const int64_t n0 = MinI(W, d - c0);
    const int64_t n1 = d - c0 - W > 0 ? MinI(W, d - c0 - W) : 0;
    T acc0[QB], acc1[QB];
    for (int qi = 0; qi < QB; ++qi) acc0[qi] = acc1[qi] = V::Zero();
    const float* v = a.v + c0;
    if (n0 == W && n1 == W) {
      for (int64_t j = 0; j < len; ++j) {
        const T v0 = V::LoadU(v + j * a.stride);
        const T v1 = V::LoadU(v + j * a.stride + W);
        for (int qi = 0; qi < QB; ++qi) {
          const T p = V::Set1(s[qi * lp + j]);
          acc0[qi] = V::Fma(p, v0, acc0[qi]);
          acc1[qi] = V::Fma(p, v1, acc1[qi]);
        }
      }
    } else {
      for (int64_t j = 0; j < len; ++j) {
        const T v0 = V::LoadPartial(v + j * a.stride, n0);
        const T v1 = n1 > 0 ? V::LoadPartial(v + j * a.stride + W, n1) : V::Zero();
        for (int qi = 0; qi < QB; ++qi) {
          const T p = V::Set1(s[qi * lp + j]);
          acc0[qi] = V::Fma(p, v0, acc0[qi]);
          acc1[qi] = V::Fma(p, v1, acc1[qi]);
        }
      }
    }
    for (int qi = 0; qi < QB; ++qi) {
      float* out = a.out + (i0 + qi) * a.out_stride + c0;
      const T iv = V::Set1(inv[qi]);
      V::StorePartial(out, V::Mul(acc0[qi], iv), n0);
      if (n1 > 0) V::StorePartial(out + W, V::Mul(acc1[qi], iv), n1);
    }
  }
}

template <typename V>
inline void AttendHead(const HeadArgs& a, float* scratch) {
  const int64_t len = a.len, d = a.head_dim;
  const int64_t lp = (len + 31) / 32 * 32;  // a multiple of 2 vectors for W <= 16
  // Scratch (HeadScratchFloats): kt [d][lp], then scores [kQueryBlock][lp],
  // 64-byte aligned.
  float* kt = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t{63});
  float* s = kt + d * lp;
  for (int64_t c = 0; c < d; ++c) {
    float* dst = kt + c * lp;
    for (int64_t j = 0; j < len; ++j) dst[j] = a.k[j * a.stride + c];
    for (int64_t j = len; j < lp; ++j) dst[j] = 0;
  }
  int64_t i0 = 0;
  for (; i0 + kQueryBlock <= len; i0 += kQueryBlock) {
    QueryBlock<V, kQueryBlock>(a, kt, lp, s, i0);
  }
  switch (len - i0) {
    case 3: QueryBlock<V, 3>(a, kt, lp, s, i0); break;
    case 2: QueryBlock<V, 2>(a, kt, lp, s, i0); break;
    case 1: QueryBlock<V, 1>(a, kt, lp, s, i0); break;
    default: break;
  }
}

}  // namespace
}  // namespace nlpflow::attention_internal
