// A Linear layer with int8 weights and a statically quantized input, run as
// one oneDNN matmul primitive that writes fp32: y = s_x (q_x - z_x) W_q^T
// diag(s_w) + b.
//
// Why not ATen's quantized::linear (what static int8 used before): it writes
// a quint8 output, rounded to 8 bits and dequantized by a second pass, and
// each call pays separate quantize and dequantize passes that cost as much as
// the int8 GEMM saves on this AVX2 CPU (bench/results/compression.md). Here
// the caller quantizes the input in the same pass that reads it
// (bert_encoder.cc), the primitive applies the per-channel scales and the
// bias to its int32 accumulators, and the output is fp32 directly.
//
// The input's zero point costs nothing at run time: s_x s_w[n] z_x sum_k
// W_q[n, k] is a constant per output channel, folded into the bias.
//
// INTERNAL to nodes/infer, like bert_encoder.h: includes ATen.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>

namespace nlpflow {

// weight [out, in] fp32 quantized symmetrically per output channel (zero
// point 0, scale max|row| / max_code; a zero row gets a tiny scale), as a
// per-channel qint8 tensor. Both int8 backends quantize their weights so.
at::Tensor QuantizeWeightPerChannel(const at::Tensor& weight, int max_code);

class StaticInt8Matmul {
 public:
  // oneDNN's AVX2 kernel multiplies u8 x s8 pairs and adds each pair into a
  // saturating int16 (vpmaddubsw): 2 x 255 x 127 does not fit, so either the
  // input codes have 7 bits (0..127, weights -127..127) or the weights do
  // (-63..63, input 0..255). With VNNI (vpdpbusd, or AMX) products go straight
  // into int32: 8-bit codes keep 8-bit weights (cpu_features.h).
  static int InputLevels(int activation_bits) { return activation_bits == 8 ? 256 : 128; }
  static int WeightMax(int activation_bits);

  // weight [out, in] fp32, quantized here symmetrically per output channel
  // (scale max|w| / WeightMax); bias [out] fp32; the input's scale and zero
  // point (0 <= zero_point < InputLevels). Throws (dnnl::error, c10::Error)
  // when oneDNN has no int8 matmul for this CPU.
  StaticInt8Matmul(const at::Tensor& weight, const at::Tensor& bias, double input_scale,
                   int64_t input_zero_point, int activation_bits);
  ~StaticInt8Matmul();
  StaticInt8Matmul(const StaticInt8Matmul&) = delete;
  StaticInt8Matmul& operator=(const StaticInt8Matmul&) = delete;

  // qx: [m, in] uint8, contiguous. Returns [m, out]
  // float. Codes must be < InputLevels. Thread-safe: each call has its own
  // stream and scratchpad.
  at::Tensor Apply(const at::Tensor& qx) const;

  // The int8 weight as a per-channel quantized tensor [out, in] (for
  // descriptions and tests; not what runs, which is oneDNN's packed copy).
  const at::Tensor& qweight() const { return qweight_; }
  double input_scale() const { return input_scale_; }
  int64_t input_zero_point() const { return input_zero_point_; }
  int activation_bits() const { return activation_bits_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  at::Tensor qweight_;
  double input_scale_;
  int64_t input_zero_point_;
  int activation_bits_;
};

}  // namespace nlpflow
