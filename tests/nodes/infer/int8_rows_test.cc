// The int8 row passes of the encoder program (nodes/infer/int8_rows.h)
// against the same arithmetic done by hand: the per-row quantization on rows
// whose codes are worked out below, and the epilogue on int32 sums of u8 x s8
// products computed here in int64.
#include "nodes/infer/int8_rows.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace nlpflow {
namespace {

TEST(Int8RowsTest, QuantizeRowByHand) {
  // lo = -1, hi = 3: scale 4 / 255, zero point round(63.75) = 64;
  // codes round(x / scale) + 64: -63.75 -> -64 -> 0, 0 -> 64,
  // 31.875 -> 32 -> 96, 191.25 -> 191 -> 255.
  const std::vector<float> x = {-1.0f, 0.0f, 0.5f, 3.0f};
  std::vector<uint8_t> codes(4);
  RowQuantization q = QuantizeRow(x.data(), nullptr, 4, 256, codes.data());
  EXPECT_FLOAT_EQ(q.scale, 4.0f / 255);
  EXPECT_EQ(q.zero_point, 64);
  EXPECT_EQ(codes, (std::vector<uint8_t>{0, 64, 96, 255}));
  // Smoothing: channel 2 is divided by 0.5 (inv 2): 1.0 -> 63.75 -> 64 -> 128.
  const std::vector<float> inv = {1.0f, 1.0f, 2.0f, 1.0f};
  q = QuantizeRow(x.data(), inv.data(), 4, 256, codes.data());
  EXPECT_EQ(q.zero_point, 64);
  EXPECT_EQ(codes, (std::vector<uint8_t>{0, 64, 128, 255}));
  // 7-bit codes: scale 4 / 127, zero point round(31.75) = 32; -31.75 -> -32
  // -> 0, 15.875 -> 16 -> 48, 95.25 -> 95 -> 127.
  q = QuantizeRow(x.data(), nullptr, 4, 128, codes.data());
  EXPECT_FLOAT_EQ(q.scale, 4.0f / 127);
  EXPECT_EQ(q.zero_point, 32);
  EXPECT_EQ(codes, (std::vector<uint8_t>{0, 32, 48, 127}));
  // Only positive values: lo is 0, zero point 0; 2 / (8 / 255) = 63.75 -> 64.
  const std::vector<float> pos = {2.0f, 8.0f};
  std::vector<uint8_t> two(2);
  q = QuantizeRow(pos.data(), nullptr, 2, 256, two.data());
  EXPECT_EQ(q.zero_point, 0);
  EXPECT_EQ(two, (std::vector<uint8_t>{64, 255}));
  // A row of zeros: scale 1, zero point 0, codes 0.
  const std::vector<float> zeros(5, 0.0f);
  std::vector<uint8_t> zc(5, 7);
  q = QuantizeRow(zeros.data(), nullptr, 5, 256, zc.data());
  EXPECT_EQ(q.scale, 1.0f);
  EXPECT_EQ(q.zero_point, 0);
  EXPECT_EQ(zc, std::vector<uint8_t>(5, 0));
}

TEST(Int8RowsTest, QuantizeRowRoundsEveryValueToTheNearestCode) {
  // Long rows (past the 16-lane blocks, with a tail): every code is the
  // rounded value by the row's scale and zero point, computed here in double.
  std::mt19937 rng(21);
  std::normal_distribution<float> normal(0.3f, 2.0f);
  for (int64_t k : {1, 15, 16, 17, 384, 1537}) {
    for (int levels : {256, 128}) {
      std::vector<float> x(k), inv(k);
      for (float& v : x) v = normal(rng);
      for (float& v : inv) v = 0.25f + std::abs(normal(rng));
      for (const float* smooth : {static_cast<const float*>(nullptr), static_cast<const float*>(inv.data())}) {
        std::vector<uint8_t> codes(k);
        const RowQuantization q = QuantizeRow(x.data(), smooth, k, levels, codes.data());
        double lo = 0, hi = 0;
        for (int64_t j = 0; j < k; ++j) {
          const double v = smooth ? static_cast<double>(x[j]) * smooth[j] : x[j];
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
        ASSERT_NEAR(q.scale, (hi - lo) / (levels - 1), 1e-6 * (hi - lo)) << k;
        ASSERT_EQ(q.zero_point, static_cast<int>(std::nearbyint(-lo / q.scale))) << k;
        int off_by_one = 0;
        for (int64_t j = 0; j < k; ++j) {
          const double v = smooth ? static_cast<double>(x[j]) * smooth[j] : x[j];
          const double want =
              std::clamp(std::nearbyint(v / q.scale) + q.zero_point, 0.0, levels - 1.0);
          // float rounding of x * inv / scale may land a value sitting on a
          // half the other way: at most one code apart, and rarely.
          ASSERT_LE(std::abs(codes[j] - want), 1) << "k " << k << " j " << j;
          off_by_one += codes[j] != want;
          ASSERT_LE(std::abs((codes[j] - q.zero_point) * q.scale - v), 0.5001 * q.scale + 1e-6);
        }
        EXPECT_LE(off_by_one, 1) << k;
      }
    }
  }
}

TEST(Int8RowsTest, DequantizeRowEqualsIntegerArithmetic) {
  std::mt19937 rng(22);
  const int64_t k = 70, n = 37;
  std::uniform_int_distribution<int> code(0, 255), weight(-127, 127);
  std::normal_distribution<float> normal;
  std::vector<uint8_t> x(k);
  std::vector<int8_t> w(n * k);
  for (auto& v : x) v = static_cast<uint8_t>(code(rng));
  for (auto& v : w) v = static_cast<int8_t>(weight(rng));
  std::vector<int32_t> acc(n);
  std::vector<float> w_scale(n), code_sum(n), bias(n), residual(n);
  for (int64_t o = 0; o < n; ++o) {
    int64_t a = 0, s = 0;
    for (int64_t j = 0; j < k; ++j) {
      a += static_cast<int64_t>(x[j]) * w[o * k + j];
      s += w[o * k + j];
    }
    acc[o] = static_cast<int32_t>(a);
    code_sum[o] = static_cast<float>(s);
    w_scale[o] = 0.001f + std::abs(normal(rng)) * 0.01f;
    bias[o] = normal(rng);
    residual[o] = normal(rng);
  }
  const RowQuantization q{0.02f, 97};
  std::vector<float> y(n), acc_y = residual;
  DequantizeRow(acc.data(), q, w_scale.data(), code_sum.data(), bias.data(), n, false, y.data());
  DequantizeRow(acc.data(), q, w_scale.data(), code_sum.data(), bias.data(), n, true,
                acc_y.data());
  for (int64_t o = 0; o < n; ++o) {
    // s_x s_w[n] sum_k (q_x - z_x) q_w, the zero point's term by hand.
    int64_t centered = 0;
    for (int64_t j = 0; j < k; ++j) centered += (static_cast<int64_t>(x[j]) - 97) * w[o * k + j];
    const double want = 0.02 * w_scale[o] * static_cast<double>(centered) + bias[o];
    EXPECT_NEAR(y[o], want, 1e-5 * (1 + std::abs(want))) << o;
    EXPECT_NEAR(acc_y[o], want + residual[o], 1e-5 * (1 + std::abs(want))) << o;
  }
}

TEST(Int8RowsTest, ActivationsMatchTheExactFunctions) {
  std::vector<float> x;
  for (float v = -12.0f; v <= 12.0f; v += 0.013f) x.push_back(v);
  const int64_t n = static_cast<int64_t>(x.size());
  for (Activation act : {Activation::kGeluErf, Activation::kGeluTanh, Activation::kRelu,
                         Activation::kSilu}) {
    std::vector<float> y = x;
    ActivateRow(act, y.data(), n);
    double worst = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double v = x[j];
      double want = 0;
      switch (act) {
        case Activation::kGeluErf: want = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); break;
        case Activation::kGeluTanh:
          want = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
          break;
        case Activation::kRelu: want = std::max(0.0, v); break;
        case Activation::kSilu: want = v / (1 + std::exp(-v)); break;
      }
      worst = std::max(worst, std::abs(y[j] - want) / (1 + std::abs(want)));
    }
    EXPECT_LE(worst, 2e-6) << "activation " << static_cast<int>(act);
  }
}

}  // namespace
}  // namespace nlpflow
