#include "nodes/infer/int8_matmul.h"

#include "nodes/infer/cpu_features.h"

#include <dnnl.hpp>

#include <algorithm>
#include <vector>

namespace nlpflow {
namespace {

const dnnl::engine& CpuEngine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

}  // namespace

at::Tensor QuantizeWeightPerChannel(const at::Tensor& weight, int max_code) {
  const at::Tensor scales = (std::get<0>(weight.abs().max(1)) / static_cast<double>(max_code))
                                .clamp_min(1e-8)
                                .to(at::kDouble);
  return at::quantize_per_channel(weight, scales, at::zeros({weight.size(0)}, at::kLong),
                                  /*axis=*/0, at::kQInt8);
}

int StaticInt8Matmul::WeightMax(int activation_bits) {
  return activation_bits == 8 && !GetCpuFeatures().has_vnni() ? 63 : 127;
}

struct StaticInt8Matmul::Impl {
  dnnl::matmul primitive;
  dnnl::memory weights;  // in the layout the primitive chose
  dnnl::memory bias;     // [1, out] fp32, the zero point folded in
  std::vector<float> bias_values;
  dnnl::memory::desc scratchpad_md;
  int64_t in = 0, out = 0;
};

StaticInt8Matmul::StaticInt8Matmul(const at::Tensor& weight, const at::Tensor& bias,
                                   double input_scale, int64_t input_zero_point,
                                   int activation_bits)
    : impl_(std::make_unique<Impl>()),
      input_scale_(input_scale),
      input_zero_point_(input_zero_point),
      activation_bits_(activation_bits) {
  using dt = dnnl::memory::data_type;
  using dims = dnnl::memory::dims;
  const at::Tensor w = weight.to(at::kFloat).contiguous();
  const int64_t out = w.size(0), in = w.size(1);
  impl_->in = in;
  impl_->out = out;

  // Codes -WeightMax..WeightMax.
  qweight_ = QuantizeWeightPerChannel(w, WeightMax(activation_bits));
  const at::Tensor w_scale = qweight_.q_per_channel_scales();  // double
  const at::Tensor codes = qweight_.int_repr().contiguous();   // int8 [out, in]

  // Per output channel n: scale s_x s_w[n]. oneDNN 2.6 adds the bias to the
  // int32 accumulator before scaling (dst = scale (acc + bias), checked by
  // int8_matmul_test), so the bias goes in accumulator units, with the zero
  // point folded in: b[n] / (s_x s_w[n]) - z_x sum_k W_q[n, k].
  const at::Tensor col_scale = w_scale * input_scale;
  const at::Tensor code_sums = codes.to(at::kDouble).sum(1);
  const at::Tensor folded =
      (bias.to(at::kDouble) / col_scale - code_sums * static_cast<double>(input_zero_point))
          .to(at::kFloat)
          .contiguous();
  impl_->bias_values.assign(folded.data_ptr<float>(), folded.data_ptr<float>() + out);
  const at::Tensor scale_f = col_scale.to(at::kFloat).contiguous();
  const std::vector<float> scales(scale_f.data_ptr<float>(), scale_f.data_ptr<float>() + out);

  // matmul: src [M, K] u8 (M known at run time) x weights [K, N] s8 -> dst [M, N] f32.
  const dnnl::memory::desc src_md({DNNL_RUNTIME_DIM_VAL, in}, dt::u8, dims{in, 1});
  const dnnl::memory::desc any_weights_md({in, out}, dt::s8, dnnl::memory::format_tag::any);
  const dnnl::memory::desc bias_md({1, out}, dt::f32, dims{out, 1});
  const dnnl::memory::desc dst_md({DNNL_RUNTIME_DIM_VAL, out}, dt::f32, dims{out, 1});
  dnnl::primitive_attr attr;
  attr.set_output_scales(/*mask=*/1 << 1, scales);  // per column of dst
  // A scratchpad per call: oneDNN 2.6's own, shared by the primitive's
  // concurrent executions, measured wrong results from two threads at once
  // (encoder_program.cc).
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::matmul::primitive_desc pd(
      dnnl::matmul::desc(src_md, any_weights_md, bias_md, dst_md), attr, CpuEngine());
  impl_->primitive = dnnl::matmul(pd);
  impl_->scratchpad_md = pd.scratchpad_desc();

  // Our codes are [N, K] row-major: as [K, N] that is strides {1, K}.
  const dnnl::memory::desc user_weights_md({in, out}, dt::s8, dims{1, in});
  dnnl::memory user_weights(user_weights_md, CpuEngine(), codes.data_ptr<int8_t>());
  impl_->weights = dnnl::memory(pd.weights_desc(), CpuEngine());
  dnnl::stream stream(CpuEngine());
  dnnl::reorder(user_weights, impl_->weights).execute(stream, user_weights, impl_->weights);
  stream.wait();
  impl_->bias = dnnl::memory(bias_md, CpuEngine(), impl_->bias_values.data());
}

StaticInt8Matmul::~StaticInt8Matmul() = default;

at::Tensor StaticInt8Matmul::Apply(const at::Tensor& qx) const {
  using dt = dnnl::memory::data_type;
  using dims = dnnl::memory::dims;
  TORCH_CHECK(qx.scalar_type() == at::kByte && qx.dim() == 2 && qx.size(1) == impl_->in &&
                  qx.is_contiguous(),
              "StaticInt8Matmul: input must be contiguous uint8 [m, ", impl_->in, "]");
  const int64_t m = qx.size(0);
  at::Tensor y = at::empty({m, impl_->out}, at::kFloat);
  if (m == 0) return y;
  dnnl::memory src(dnnl::memory::desc({m, impl_->in}, dt::u8, dims{impl_->in, 1}), CpuEngine(),
                   const_cast<uint8_t*>(qx.data_ptr<uint8_t>()));
  dnnl::memory dst(dnnl::memory::desc({m, impl_->out}, dt::f32, dims{impl_->out, 1}),
                   CpuEngine(), y.data_ptr<float>());
  at::Tensor scratch = at::empty({std::max<int64_t>(impl_->scratchpad_md.get_size(), 1)}, at::kByte);
  dnnl::memory scratchpad(impl_->scratchpad_md, CpuEngine(), scratch.data_ptr<uint8_t>());
  dnnl::stream stream(CpuEngine());
  impl_->primitive.execute(stream, {{DNNL_ARG_SRC, src},
                                    {DNNL_ARG_WEIGHTS, impl_->weights},
                                    {DNNL_ARG_BIAS, impl_->bias},
                                    {DNNL_ARG_DST, dst},
                                    {DNNL_ARG_SCRATCHPAD, scratchpad}});
  stream.wait();
  return y;
}

}  // namespace nlpflow
