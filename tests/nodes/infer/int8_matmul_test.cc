// StaticInt8Matmul against the same arithmetic done by hand: int32 sums of
// code products, then scale and bias in double. Exact up to fp32 rounding of
// the result, since the int8 GEMM is exact in int32.
#include "nodes/infer/int8_matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace nlpflow {
namespace {

TEST(StaticInt8Matmul, EqualsIntegerArithmeticWithScalesZeroPointAndBias) {
  constexpr int64_t kOut = 24, kIn = 40;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  at::Tensor w = at::empty({kOut, kIn}, at::kFloat);
  at::Tensor b = at::empty({kOut}, at::kFloat);
  for (int64_t i = 0; i < w.numel(); ++i) w.data_ptr<float>()[i] = normal(rng);
  for (int64_t i = 0; i < b.numel(); ++i) b.data_ptr<float>()[i] = normal(rng);
  const double s_x = 0.0371;
  for (const int bits : {7, 8}) {
  const int64_t z_x = bits == 7 ? 41 : 130;
  const StaticInt8Matmul gemm(w, b, s_x, z_x, bits);
  const at::Tensor codes = gemm.qweight().int_repr();
  const at::Tensor w_scale = gemm.qweight().q_per_channel_scales();
  EXPECT_EQ(codes.abs().max().item<int8_t>(), StaticInt8Matmul::WeightMax(bits));

  // m values around the kernels' blocking, including 1 and a ragged tail.
  for (const int64_t m : {1, 3, 16, 37}) {
    at::Tensor qx = at::empty({m, kIn}, at::kByte);
    std::uniform_int_distribution<int> code(0, StaticInt8Matmul::InputLevels(bits) - 1);
    for (int64_t i = 0; i < qx.numel(); ++i) qx.data_ptr<uint8_t>()[i] = code(rng);
    const at::Tensor y = gemm.Apply(qx);
    ASSERT_EQ(y.size(0), m);
    ASSERT_EQ(y.size(1), kOut);
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t n = 0; n < kOut; ++n) {
        int64_t acc = 0;
        for (int64_t k = 0; k < kIn; ++k) {
          acc += (static_cast<int64_t>(qx[r][k].item<uint8_t>()) - z_x) *
                 codes[n][k].item<int8_t>();
        }
        const double expected = s_x * w_scale[n].item<double>() * static_cast<double>(acc) +
                                b[n].item<float>();
        EXPECT_NEAR(y[r][n].item<float>(), expected, 1e-4 * (1 + std::abs(expected)))
            << bits << " bits, m " << m << " row " << r << " col " << n;
      }
    }
  }
  }
}

TEST(StaticInt8Matmul, QuantizesTheWeightPerOutputChannel) {
  at::Tensor w = at::tensor({1.0f, -2.0f, 0.5f, 0.25f, 0.0f, -0.125f}).view({2, 3});
  const StaticInt8Matmul gemm(w, at::zeros({2}), 0.1, 0, 7);
  EXPECT_EQ(gemm.qweight().qscheme(), at::kPerChannelAffine);
  EXPECT_FLOAT_EQ(gemm.qweight().q_per_channel_scales()[0].item<double>(), 2.0f / 127);
  EXPECT_FLOAT_EQ(gemm.qweight().q_per_channel_scales()[1].item<double>(), 0.25f / 127);
  const at::Tensor codes = gemm.qweight().int_repr();
  EXPECT_EQ(codes[0][1].item<int8_t>(), -127);
  EXPECT_EQ(codes[1][0].item<int8_t>(), 127);
  EXPECT_EQ(codes[1][2].item<int8_t>(), -64);  // -0.125 / (0.25 / 127) = -63.5 -> even
}

}  // namespace
}  // namespace nlpflow
