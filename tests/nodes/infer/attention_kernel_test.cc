// The fused attention kernels (nodes/infer/attention_kernel.h) against the
// plain double-precision reference, on random shapes, in every variant this
// CPU can run.
#include "nodes/infer/attention_kernel.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace nlpflow {
namespace {

struct Case {
  std::vector<int64_t> lengths;
  int64_t heads, head_dim;
  bool bias;
};

// Max |kernel - reference| over the context of `c`, with random q, k, v of
// scale `amp` (larger amp: peakier softmax).
double MaxDiff(KernelIsa isa, const Case& c, std::mt19937* rng, float amp) {
  std::normal_distribution<float> normal(0.0f, amp);
  const int64_t a = c.heads * c.head_dim;
  int64_t tokens = 0, max_len = 0;
  for (int64_t len : c.lengths) {
    tokens += len;
    max_len = std::max(max_len, len);
  }
  // A row stride wider than 3a, as a fused qkv buffer of another layer might have.
  const int64_t stride = 3 * a + 5;
  std::vector<float> qkv(tokens * stride);
  for (float& x : qkv) x = normal(*rng);
  std::vector<float> bias;
  if (c.bias) {
    bias.resize(c.heads * max_len * max_len);
    for (float& x : bias) x = normal(*rng);
  }
  AttentionArgs args;
  args.qkv = qkv.data();
  args.qkv_stride = stride;
  args.k_offset = a;
  args.v_offset = 2 * a;
  args.out_stride = a + 3;
  args.heads = c.heads;
  args.head_dim = c.head_dim;
  args.lengths = c.lengths.data();
  args.rows = static_cast<int64_t>(c.lengths.size());
  args.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  if (c.bias) {
    args.bias = bias.data();
    args.bias_head_stride = max_len * max_len;
    args.bias_row_stride = max_len;
  }
  std::vector<float> want(tokens * args.out_stride, -7.0f), got(want);
  args.out = want.data();
  ReferenceAttention(args);
  args.out = got.data();
  FusedAttention(isa, args);
  double diff = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t j = 0; j < args.out_stride; ++j) {
      const float w = want[t * args.out_stride + j], g = got[t * args.out_stride + j];
      // The 3 columns past the context are not the kernel's to write.
      if (j >= a) {
        EXPECT_EQ(g, -7.0f) << "wrote past the context at token " << t;
        continue;
      }
      diff = std::max(diff, static_cast<double>(std::fabs(w - g)));
    }
  }
  return diff;
}

std::vector<KernelIsa> RunnableIsas() {
  std::vector<KernelIsa> isas;
  for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2, KernelIsa::kAvx512}) {
    if (CpuSupports(isa)) {
      isas.push_back(isa);
    } else {
      std::printf("[ skipped  ] %s: this CPU lacks it (%s)\n", KernelIsaName(isa),
                  GetCpuFeatures().Describe().c_str());
    }
  }
  return isas;
}

TEST(AttentionKernelTest, MatchesReferenceOnRandomShapes) {
  std::mt19937 rng(17);
  std::uniform_int_distribution<int64_t> heads_dist(1, 16), rows_dist(1, 4);
  const int64_t head_dims[] = {1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 100};
  std::vector<Case> cases;
  // Edge lengths first, then random ones up to 512 (one long row per case
  // keeps the double-precision reference quick).
  for (int64_t len : {1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 512}) {
    cases.push_back({{len}, 2, 32, false});
  }
  for (int i = 0; i < 30; ++i) {
    Case c;
    c.heads = heads_dist(rng);
    c.head_dim = head_dims[rng() % std::size(head_dims)];
    c.bias = i % 3 == 0;
    const int64_t rows = rows_dist(rng);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t longest = r == 0 && i % 5 == 0 ? 512 : 96;
      c.lengths.push_back(std::uniform_int_distribution<int64_t>(1, longest)(rng));
    }
    cases.push_back(c);
  }
  for (KernelIsa isa : RunnableIsas()) {
    double worst = 0;
    for (const Case& c : cases) {
      for (float amp : {1.0f, 4.0f}) {
        // Scores grow with amp^2 and values with amp; fp32 rounding of the
        // scores is amplified by exp, so the bound scales with amp^3.
        const double d = MaxDiff(isa, c, &rng, amp) / (amp * amp * amp);
        worst = std::max(worst, d);
        EXPECT_LE(d, 2e-5) << KernelIsaName(isa) << ": rows " << c.lengths.size() << " first len "
                           << c.lengths[0] << " heads " << c.heads << " head_dim " << c.head_dim
                           << " bias " << c.bias << " amp " << amp;
      }
    }
    std::printf("[ worst    ] %s: max |diff| / amp^3 %.3g over %zu cases\n", KernelIsaName(isa), worst,
                2 * cases.size());
  }
}

TEST(AttentionKernelTest, SameResultOnTwoThreads) {
  std::mt19937 rng(5);
  const Case c{{100, 3, 77, 1, 40}, 12, 32, true};
  const int saved = omp_get_max_threads();
  for (KernelIsa isa : RunnableIsas()) {
    omp_set_num_threads(2);
    std::mt19937 a = rng;
    const double two = MaxDiff(isa, c, &a, 2.0f);
    omp_set_num_threads(1);
    std::mt19937 b = rng;
    const double one = MaxDiff(isa, c, &b, 2.0f);
    EXPECT_LE(two, 2e-5) << KernelIsaName(isa);
    EXPECT_EQ(two, one) << KernelIsaName(isa) << ": threads must not change a result";
  }
  omp_set_num_threads(saved);
}

TEST(AttentionKernelTest, ChosenIsaIsTheWidestTheCpuHas) {
  const CpuFeatures& f = GetCpuFeatures();
  const KernelIsa best = BestKernelIsa();
  EXPECT_TRUE(CpuSupports(best));
  if (f.has_avx512_kernels()) EXPECT_EQ(best, KernelIsa::kAvx512);
  if (!f.has_avx512_kernels() && f.has_avx2_kernels()) EXPECT_EQ(best, KernelIsa::kAvx2);
  std::printf("[ cpu      ] %s -> %s\n", f.Describe().c_str(), KernelIsaName(best));
}

}  // namespace
}  // namespace nlpflow
