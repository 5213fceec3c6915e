// Fused self-attention over packed (padding-free) rows: per (row, head),
// Q K^T, scale, an optional additive bias, softmax and the product with V in
// one kernel whose scores stay in a per-thread scratch of len floats per query
// (in L1/L2 for the lengths BERT sees), never in a [heads, len, len] tensor.
//
// The rows are packed: row r's tokens follow row r-1's, and a query attends
// to the keys of its own row only. That is the mask: keys of other rows and
// padding are never read, so no -inf mask values are needed.
//
// Variants for AVX-512 and AVX2 (+FMA) and a scalar one, chosen at run time
// (cpu_features.h); all compute the same thing to fp32 rounding.
#pragma once

#include <cstdint>

#include "nodes/infer/cpu_features.h"

namespace nlpflow {

struct AttentionArgs {
  // qkv[t * qkv_stride + c]: token t's query at c = h * head_dim + i, its key
  // at k_offset + h * head_dim + i, its value at v_offset + h * head_dim + i.
  const float* qkv = nullptr;
  int64_t qkv_stride = 0;
  int64_t k_offset = 0, v_offset = 0;
  // context[t * out_stride + h * head_dim + i].
  float* out = nullptr;
  int64_t out_stride = 0;
  int64_t heads = 0, head_dim = 0;
  // Row lengths (each >= 1); row r starts at token sum(lengths[0..r)).
  const int64_t* lengths = nullptr;
  int64_t rows = 0;
  // Multiplies Q K^T before the bias and softmax (1 / sqrt(head_dim) for BERT).
  float scale = 1;
  // Optional (null: none): added to the scaled scores, per head and
  // (query, key) position inside the row, the same for every row:
  // bias[h * bias_head_stride + i * bias_row_stride + j]. MPNet's relative
  // position buckets are such a bias (shared by all layers).
  const float* bias = nullptr;
  int64_t bias_head_stride = 0, bias_row_stride = 0;
};

// Runs every (row, head) of `args`, in parallel over them on the calling
// thread's OpenMP threads. REQUIRES: CpuSupports(isa). Thread-safe; each
// thread keeps a scratch buffer that grows to the longest row it has seen.
void FusedAttention(KernelIsa isa, const AttentionArgs& args);

// The plain version the kernels are tested against: double accumulation,
// std::exp, one (row, head) at a time.
void ReferenceAttention(const AttentionArgs& args);

}  // namespace nlpflow
