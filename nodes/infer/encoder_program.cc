#include "nodes/infer/encoder_program.h"

#include <dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "nodes/infer/attention_kernel.h"
#include "nodes/infer/int8_rows.h"

namespace nlpflow {
namespace {

const dnnl::engine& CpuEngine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

constexpr int64_t kSmallestTile = EncoderProgram::kRowTiles[std::size(EncoderProgram::kRowTiles) - 1];

int64_t PaddedRows(int64_t rows) { return (rows + kSmallestTile - 1) / kSmallestTile * kSmallestTile; }

// The parallel loops of ours (embeddings, LayerNorm) run on the calling
// thread's OpenMP threads, as oneDNN does; with one thread, no region at all.
template <typename Fn>
void ParallelRows(int64_t rows, Fn fn) {
  if (omp_get_max_threads() == 1 || rows < 32) {
    for (int64_t r = 0; r < rows; ++r) fn(r);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) fn(r);
}

// One row of LayerNorm in place: mean, variance and the normalized row while
// the row is in L1. Compiled for AVX-512 and AVX2 too, chosen by the loader
// (the rest of this file is baseline x86-64).
__attribute__((target_clones("avx512f", "avx2", "default"))) void LayerNormRow(float* row, int64_t h, const float* g, const float* b, float eps) {
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < h; ++j) sum += row[j];
  const float mean = sum / static_cast<float>(h);
  float sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t j = 0; j < h; ++j) sq += (row[j] - mean) * (row[j] - mean);
  const float inv = 1.0f / std::sqrt(sq / static_cast<float>(h) + eps);
#pragma omp simd
  for (int64_t j = 0; j < h; ++j) row[j] = (row[j] - mean) * inv * g[j] + b[j];
}

}  // namespace

Result<Activation> ParseActivation(const std::string& act) {
  if (act == "gelu") return Activation::kGeluErf;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") return Activation::kGeluTanh;
  if (act == "relu") return Activation::kRelu;
  if (act == "silu" || act == "swish") return Activation::kSilu;
  return Status::InvalidArgument("hidden_act '" + act +
                                 "' is not one of gelu, gelu_new, gelu_pytorch_tanh, relu, "
                                 "silu, swish");
}

struct EncoderProgram::Linear {
  int64_t out = 0, in = 0;
  int index = 0;  // position among all Linears, for the workspace's memory handles
  dnnl::memory weights;  // in the primitives' layout
  dnnl::memory bias;     // [1, out]
  std::vector<float> bias_values;
  // (rows, primitive), largest tile first; all share `weights`.
  std::vector<std::pair<int64_t, dnnl::matmul>> tiles;
  // int8: u8 x s8 -> s32 primitives; per output channel the weight's scale
  // and the sum of its codes (the zero point's term); 1 / the smoothing of
  // the input per input channel, empty when not smoothed.
  bool int8 = false;
  std::vector<float> w_scale, code_sum, input_inv_smooth;
};

struct EncoderProgram::Layer {
  int64_t heads = 0, ffn = 0;
  Linear qkv, attention_out, intermediate, output;
  std::vector<float> attention_gamma, attention_beta, output_gamma, output_beta;
};

struct EncoderProgram::Workspace {
  int64_t capacity = 0;  // rows, a multiple of kSmallestTile
  std::vector<float> hidden, qkv, context, intermediate;
  // int8: the codes of the next Linear's input and their per-row scales,
  // two of each (the epilogue of one Linear writes the next one's codes
  // while later tiles still read its own), and the int32 accumulators.
  std::vector<uint8_t> codes[2];
  std::vector<RowQuantization> row_q[2];
  std::vector<int32_t> acc;
  dnnl::stream stream{CpuEngine()};
  std::vector<uint8_t> scratchpad_bytes;
  dnnl::memory scratchpad;  // over scratchpad_bytes
  // Per (Linear, tile): the src and dst memory objects, made at first use and
  // pointed at the rows of each call (set_data_handle).
  std::vector<dnnl::memory> handles;
};

Result<std::unique_ptr<EncoderProgram>> EncoderProgram::Create(const ProgramSpec& spec) {
  using dt = dnnl::memory::data_type;
  using dims = dnnl::memory::dims;
  const int64_t h = spec.hidden;
  if (h <= 0 || spec.head_dim <= 0 || spec.word_embeddings == nullptr ||
      spec.position_embeddings == nullptr || spec.embedding_norm.weight == nullptr) {
    return Status::InvalidArgument("encoder program: hidden, head_dim, word and position "
                                   "embeddings and the embedding LayerNorm are required");
  }
  if (!CpuSupports(spec.attention_isa)) {
    return Status::InvalidArgument(std::string("encoder program: this CPU has no ") +
                                   KernelIsaName(spec.attention_isa) + " attention kernel");
  }
  std::unique_ptr<EncoderProgram> p(new EncoderProgram());
  p->hidden_ = h;
  p->head_dim_ = spec.head_dim;
  p->eps_ = static_cast<float>(spec.layer_norm_eps);
  p->attention_isa_ = spec.attention_isa;
  p->int8_ = spec.int8;
  p->activation_ = spec.activation;
  if (spec.int8 && spec.activation_bits != 8 && spec.activation_bits != 7) {
    return Status::InvalidArgument("encoder program: int8 activation_bits must be 7 or 8, not " +
                                   std::to_string(spec.activation_bits));
  }
  p->activation_levels_ = spec.activation_bits == 8 ? 256 : 128;
  p->word_.assign(spec.word_embeddings, spec.word_embeddings + spec.vocab_size * h);
  p->position_.assign(spec.position_embeddings, spec.position_embeddings + spec.max_positions * h);
  if (spec.token_type_embeddings != nullptr) {
    p->token_type_.assign(spec.token_type_embeddings,
                          spec.token_type_embeddings + spec.type_vocab_size * h);
    p->type_vocab_size_ = spec.type_vocab_size;
  }
  auto copy_norm = [h](const ProgramNorm& n, std::vector<float>* g, std::vector<float>* b) {
    g->assign(n.weight, n.weight + h);
    b->assign(n.bias, n.bias + h);
  };
  copy_norm(spec.embedding_norm, &p->embedding_gamma_, &p->embedding_beta_);

  dnnl::post_ops eltwise_ops;
  switch (spec.activation) {
    case Activation::kGeluErf:
      eltwise_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0, 0);
      break;
    case Activation::kGeluTanh:
      eltwise_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_tanh, 0, 0);
      break;
    case Activation::kRelu:
      eltwise_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0, 0);
      break;
    case Activation::kSilu:  // swish with alpha 1: x * sigmoid(x)
      eltwise_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0);
      break;
  }
  dnnl::post_ops sum_ops;
  sum_ops.append_sum(1.0f);

  int index = 0;
  auto make = [&](const ProgramLinear& spec_linear, const dnnl::post_ops* ops,
                  const std::string& name, Linear* l) -> Status {
    if (spec_linear.weight == nullptr || spec_linear.bias == nullptr || spec_linear.out <= 0 ||
        spec_linear.in <= 0) {
      return Status::InvalidArgument("encoder program: " + name + ": weight, bias and shape required");
    }
    const int64_t out = spec_linear.out, in = spec_linear.in;
    l->out = out;
    l->in = in;
    l->index = index++;
    l->bias_values.assign(spec_linear.bias, spec_linear.bias + out);
    l->int8 = spec.int8;
    // int8: the weight (columns smoothed) quantized per output channel,
    // symmetric, codes -127..127 (2 x 127 x 127 fits the int16 pair sums of
    // the kernels without VNNI, which take 7-bit activations).
    std::vector<int8_t> codes;
    if (l->int8) {
      const float* smooth = spec_linear.input_smoothing;
      if (smooth != nullptr) {
        l->input_inv_smooth.resize(in);
        for (int64_t j = 0; j < in; ++j) l->input_inv_smooth[j] = 1.0f / smooth[j];
      }
      codes.resize(out * in);
      l->w_scale.resize(out);
      l->code_sum.resize(out);
      std::vector<float> row(in);
      for (int64_t o = 0; o < out; ++o) {
        float peak = 0;
        for (int64_t j = 0; j < in; ++j) {
          row[j] = spec_linear.weight[o * in + j] * (smooth != nullptr ? smooth[j] : 1.0f);
          peak = std::max(peak, std::abs(row[j]));
        }
        const float scale = std::max(peak / 127.0f, 1e-8f);
        int64_t sum = 0;
        for (int64_t j = 0; j < in; ++j) {
          const int c = static_cast<int>(std::clamp(std::nearbyint(row[j] / scale), -127.0f, 127.0f));
          codes[o * in + j] = static_cast<int8_t>(c);
          sum += c;
        }
        l->w_scale[o] = scale;
        l->code_sum[o] = static_cast<float>(sum);
      }
    }
    const dt src_dt = l->int8 ? dt::u8 : dt::f32;
    const dt weights_dt = l->int8 ? dt::s8 : dt::f32;
    const dt dst_dt = l->int8 ? dt::s32 : dt::f32;
    dnnl::primitive_attr attr;
    if (ops != nullptr && !l->int8) attr.set_post_ops(*ops);
    // Our scratchpad, one per workspace: with oneDNN's own ("library") one,
    // two threads running the same brgemm primitive at once measured wrong
    // results on this oneDNN 2.6 (max |diff| 0.07 against a serial run; none
    // with a scratchpad per caller).
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::memory::desc bias_md({1, out}, dt::f32, dims{out, 1});
    dnnl::memory::desc weights_md;
    try {
      // Smallest tile first: its weight layout is the one every tile must share.
      for (size_t t = std::size(kRowTiles); t-- > 0;) {
        const int64_t rows = kRowTiles[t];
        const dnnl::memory::desc src_md({rows, in}, src_dt, dims{in, 1});
        const dnnl::memory::desc any_md({in, out}, weights_dt, dnnl::memory::format_tag::any);
        const dnnl::memory::desc dst_md({rows, out}, dst_dt, dims{out, 1});
        // int8: no bias in the primitive (the epilogue adds it in fp32).
        const dnnl::matmul::primitive_desc pd(
            l->int8 ? dnnl::matmul::desc(src_md, any_md, dst_md)
                    : dnnl::matmul::desc(src_md, any_md, bias_md, dst_md),
            attr, CpuEngine());
        if (weights_md.is_zero()) {
          weights_md = pd.weights_desc();
          if (p->implementation_.empty()) p->implementation_ = pd.impl_info_str();
        } else if (pd.weights_desc() != weights_md) {
          continue;  // a layout of its own would need a second weight copy
        }
        p->scratchpad_bytes_ = std::max<int64_t>(p->scratchpad_bytes_,
                                                 pd.scratchpad_desc().get_size());
        l->tiles.insert(l->tiles.begin(), {rows, dnnl::matmul(pd)});
        ++p->primitives_created_;
      }
      // torch.nn.Linear's [out, in] row-major is the matmul's [in, out] with strides {1, in}.
      const dnnl::memory::desc user_md({in, out}, weights_dt, dims{1, in});
      dnnl::memory user(user_md, CpuEngine(),
                        l->int8 ? static_cast<void*>(codes.data())
                                : static_cast<void*>(const_cast<float*>(spec_linear.weight)));
      l->weights = dnnl::memory(weights_md, CpuEngine());
      dnnl::stream stream(CpuEngine());
      dnnl::reorder(user, l->weights).execute(stream, user, l->weights);
      stream.wait();
      l->bias = dnnl::memory(bias_md, CpuEngine(), l->bias_values.data());
    } catch (const dnnl::error& e) {
      return Status::Internal("encoder program: " + name + ": oneDNN: " + e.what());
    }
    return Status::Ok();
  };

  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const ProgramLayer& s = spec.layers[i];
    const std::string at = "layer " + std::to_string(i);
    const int64_t a = s.heads * spec.head_dim;
    if (s.heads <= 0 || s.qkv.out != 3 * a || s.qkv.in != h || s.attention_out.out != h ||
        s.attention_out.in != a || s.intermediate.in != h || s.output.out != h ||
        s.output.in != s.intermediate.out) {
      return Status::InvalidArgument("encoder program: " + at +
                                     ": Linear shapes do not chain (qkv [3 * heads * head_dim, "
                                     "hidden], attention_out [hidden, heads * head_dim], "
                                     "intermediate [ffn, hidden], output [hidden, ffn])");
    }
    Layer layer;
    layer.heads = s.heads;
    layer.ffn = s.intermediate.out;
    NLPFLOW_RETURN_IF_ERROR(make(s.qkv, nullptr, at + " qkv", &layer.qkv));
    NLPFLOW_RETURN_IF_ERROR(make(s.attention_out, &sum_ops, at + " attention_out",
                                 &layer.attention_out));
    NLPFLOW_RETURN_IF_ERROR(make(s.intermediate, &eltwise_ops, at + " intermediate",
                                 &layer.intermediate));
    NLPFLOW_RETURN_IF_ERROR(make(s.output, &sum_ops, at + " output", &layer.output));
    copy_norm(s.attention_norm, &layer.attention_gamma, &layer.attention_beta);
    copy_norm(s.output_norm, &layer.output_gamma, &layer.output_beta);
    p->max_width_ = std::max({p->max_width_, 3 * a, layer.ffn});
    p->layers_.push_back(std::move(layer));
  }
  return p;
}

EncoderProgram::~EncoderProgram() = default;

std::string EncoderProgram::Describe() const {
  std::string tiles;
  if (!layers_.empty()) {
    for (const auto& [rows, prim] : layers_[0].intermediate.tiles) {
      tiles += (tiles.empty() ? "" : "/") + std::to_string(rows);
    }
  }
  return std::string(int8_ ? "int8 (u8 x s8 -> s32, " +
                                  std::to_string(activation_levels_ == 256 ? 8 : 7) +
                                  "-bit activations, per-row scales) "
                            : "") +
         "oneDNN matmul " + implementation_ + " x" + std::to_string(primitives_created_) +
         " (row tiles " + tiles + "), attention " + KernelIsaName(attention_isa_) +
         ", oneDNN ISA " + OnednnEffectiveIsa();
}

std::unique_ptr<EncoderProgram::Workspace> EncoderProgram::TakeWorkspace(int64_t rows) const {
  std::unique_ptr<Workspace> ws;
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!pool_.empty()) {
      ws = std::move(pool_.back());
      pool_.pop_back();
    }
  }
  if (!ws) ws = std::make_unique<Workspace>();
  if (ws->capacity < rows) {
    // Zero-filled: the padding rows past a batch's tokens are computed on
    // too (whole tiles) and must hold finite values.
    ws->capacity = rows;
    ws->hidden.assign(rows * hidden_, 0.0f);
    ws->qkv.assign(rows * max_width_, 0.0f);
    ws->context.assign(rows * max_width_, 0.0f);
    ws->intermediate.assign(rows * max_width_, 0.0f);
    if (int8_) {
      for (int i = 0; i < 2; ++i) {
        ws->codes[i].assign(rows * std::max(max_width_, hidden_), 0);
        ws->row_q[i].assign(rows, RowQuantization{});
      }
      ws->acc.assign(rows * std::max(max_width_, hidden_), 0);
    }
  }
  if (!ws->scratchpad) {
    ws->scratchpad_bytes.assign(std::max<int64_t>(scratchpad_bytes_, 64), 0);
    ws->scratchpad = dnnl::memory(
        dnnl::memory::desc({static_cast<int64_t>(ws->scratchpad_bytes.size())},
                           dnnl::memory::data_type::u8, dnnl::memory::dims{1}),
        CpuEngine(), ws->scratchpad_bytes.data());
  }
  return ws;
}

void EncoderProgram::ReturnWorkspace(std::unique_ptr<Workspace> ws) const {
  std::lock_guard<std::mutex> lock(pool_mu_);
  pool_.push_back(std::move(ws));
}

void EncoderProgram::RunLinear(Workspace* ws, const Linear& l, const float* src, float* dst,
                               int64_t rows) const {
  constexpr size_t kTiles = std::size(kRowTiles);
  const size_t needed = static_cast<size_t>(4 * layers_.size() * kTiles * 2);
  if (ws->handles.size() < needed) ws->handles.resize(needed);
  int64_t r = 0;
  for (size_t t = 0; t < l.tiles.size(); ++t) {
    const int64_t tile = l.tiles[t].first;
    if (rows - r < tile) continue;
    dnnl::memory& s = ws->handles[(l.index * kTiles + t) * 2];
    dnnl::memory& d = ws->handles[(l.index * kTiles + t) * 2 + 1];
    if (!s) {
      using dt = dnnl::memory::data_type;
      s = dnnl::memory(dnnl::memory::desc({tile, l.in}, dt::f32, dnnl::memory::dims{l.in, 1}),
                       CpuEngine(), DNNL_MEMORY_NONE);
      d = dnnl::memory(dnnl::memory::desc({tile, l.out}, dt::f32, dnnl::memory::dims{l.out, 1}),
                       CpuEngine(), DNNL_MEMORY_NONE);
    }
    // The C API: the C++ execute() takes its arguments as an unordered_map,
    // an allocation per call.
    for (; rows - r >= tile; r += tile) {
      s.set_data_handle(const_cast<float*>(src + r * l.in));
      d.set_data_handle(dst + r * l.out);
      dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, s.get()},
                                {DNNL_ARG_WEIGHTS, l.weights.get()},
                                {DNNL_ARG_BIAS, l.bias.get()},
                                {DNNL_ARG_DST, d.get()},
                                {DNNL_ARG_SCRATCHPAD, ws->scratchpad.get()}};
      dnnl::error::wrap_c_api(
          dnnl_primitive_execute(l.tiles[t].second.get(), ws->stream.get(), 5, args),
          "matmul execute");
    }
  }
}

template <typename Epilogue>
void EncoderProgram::RunInt8Linear(Workspace* ws, const Linear& l, const uint8_t* codes,
                                   int64_t rows, const Epilogue& epilogue) const {
  constexpr size_t kTiles = std::size(kRowTiles);
  const size_t needed = static_cast<size_t>(4 * layers_.size() * kTiles * 2);
  if (ws->handles.size() < needed) ws->handles.resize(needed);
  int32_t* acc = ws->acc.data();
  int64_t r = 0;
  for (size_t t = 0; t < l.tiles.size(); ++t) {
    const int64_t tile = l.tiles[t].first;
    if (rows - r < tile) continue;
    dnnl::memory& s = ws->handles[(l.index * kTiles + t) * 2];
    dnnl::memory& d = ws->handles[(l.index * kTiles + t) * 2 + 1];
    if (!s) {
      using dt = dnnl::memory::data_type;
      s = dnnl::memory(dnnl::memory::desc({tile, l.in}, dt::u8, dnnl::memory::dims{l.in, 1}),
                       CpuEngine(), DNNL_MEMORY_NONE);
      d = dnnl::memory(dnnl::memory::desc({tile, l.out}, dt::s32, dnnl::memory::dims{l.out, 1}),
                       CpuEngine(), DNNL_MEMORY_NONE);
    }
    for (; rows - r >= tile; r += tile) {
      s.set_data_handle(const_cast<uint8_t*>(codes + r * l.in));
      d.set_data_handle(acc + r * l.out);
      dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, s.get()},
                                {DNNL_ARG_WEIGHTS, l.weights.get()},
                                {DNNL_ARG_DST, d.get()},
                                {DNNL_ARG_SCRATCHPAD, ws->scratchpad.get()}};
      dnnl::error::wrap_c_api(
          dnnl_primitive_execute(l.tiles[t].second.get(), ws->stream.get(), 4, args),
          "int8 matmul execute");
      // The CPU stream runs in order on this thread: the tile's accumulators
      // are there when execute returns.
      const int64_t first = r;
      ParallelRows(tile, [&](int64_t i) { epilogue(first + i); });
    }
  }
}

void EncoderProgram::RunInt8(const PackedTokens& tokens, Workspace* ws,
                             const float* attention_bias, int64_t bias_head_stride,
                             int64_t bias_row_stride) const {
  const int64_t m = PaddedRows(tokens.tokens()), h = hidden_;
  const int levels = activation_levels_;
  const float eps = eps_;
  float* hidden = ws->hidden.data();
  float* qkv = ws->qkv.data();
  float* context = ws->context.data();
  float* intermediate = ws->intermediate.data();
  const int32_t* acc = ws->acc.data();
  int cur = 0;  // codes[cur] hold the next Linear's input
  auto smoothing = [](const Linear& l) {
    return l.input_inv_smooth.empty() ? nullptr : l.input_inv_smooth.data();
  };
  // The embeddings' LayerNorm writes layer 0's qkv codes.
  {
    const float* g = embedding_gamma_.data();
    const float* b = embedding_beta_.data();
    const float* inv = layers_.empty() ? nullptr : smoothing(layers_[0].qkv);
    uint8_t* codes = ws->codes[cur].data();
    RowQuantization* q = ws->row_q[cur].data();
    const bool quantize = !layers_.empty();
    ParallelRows(m, [=](int64_t r) {
      LayerNormRow(hidden + r * h, h, g, b, eps);
      if (quantize) q[r] = QuantizeRow(hidden + r * h, inv, h, levels, codes + r * h);
    });
  }
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& layer = layers_[li];
    const int64_t a = layer.heads * head_dim_, ffn = layer.ffn;
    const Linear* next_qkv = li + 1 < layers_.size() ? &layers_[li + 1].qkv : nullptr;
    const int nxt = 1 - cur;
    {
      const Linear& l = layer.qkv;
      const RowQuantization* q = ws->row_q[cur].data();
      RunInt8Linear(ws, l, ws->codes[cur].data(), m, [&](int64_t r) {
        DequantizeRow(acc + r * l.out, q[r], l.w_scale.data(), l.code_sum.data(),
                      l.bias_values.data(), l.out, false, qkv + r * l.out);
      });
    }
    AttentionArgs args;
    args.qkv = qkv;
    args.qkv_stride = 3 * a;
    args.k_offset = a;
    args.v_offset = 2 * a;
    args.out = context;
    args.out_stride = a;
    args.heads = layer.heads;
    args.head_dim = head_dim_;
    args.lengths = tokens.lengths.data();
    args.rows = tokens.rows;
    args.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim_)));
    args.bias = attention_bias;
    args.bias_head_stride = bias_head_stride;
    args.bias_row_stride = bias_row_stride;
    FusedAttention(attention_isa_, args);
    {
      // The attention context's codes: one pass (the attention kernel is
      // shared with fp32 and writes fp32).
      uint8_t* codes = ws->codes[nxt].data();
      RowQuantization* q = ws->row_q[nxt].data();
      ParallelRows(m, [=](int64_t r) {
        q[r] = QuantizeRow(context + r * a, nullptr, a, levels, codes + r * a);
      });
      cur = nxt;
    }
    {
      // + residual, LayerNorm, the intermediate's codes.
      const Linear& l = layer.attention_out;
      const RowQuantization* q = ws->row_q[cur].data();
      uint8_t* codes = ws->codes[1 - cur].data();
      RowQuantization* next_q = ws->row_q[1 - cur].data();
      const float* g = layer.attention_gamma.data();
      const float* b = layer.attention_beta.data();
      const float* inv = smoothing(layer.intermediate);
      RunInt8Linear(ws, l, ws->codes[cur].data(), m, [&](int64_t r) {
        float* row = hidden + r * h;
        DequantizeRow(acc + r * h, q[r], l.w_scale.data(), l.code_sum.data(),
                      l.bias_values.data(), h, true, row);
        LayerNormRow(row, h, g, b, eps);
        next_q[r] = QuantizeRow(row, inv, h, levels, codes + r * h);
      });
      cur = 1 - cur;
    }
    {
      // Activation, the output Linear's codes.
      const Linear& l = layer.intermediate;
      const RowQuantization* q = ws->row_q[cur].data();
      uint8_t* codes = ws->codes[1 - cur].data();
      RowQuantization* next_q = ws->row_q[1 - cur].data();
      const Activation act = activation_;
      RunInt8Linear(ws, l, ws->codes[cur].data(), m, [&](int64_t r) {
        float* row = intermediate + r * ffn;
        DequantizeRow(acc + r * ffn, q[r], l.w_scale.data(), l.code_sum.data(),
                      l.bias_values.data(), ffn, false, row);
        ActivateRow(act, row, ffn);
        next_q[r] = QuantizeRow(row, nullptr, ffn, levels, codes + r * ffn);
      });
      cur = 1 - cur;
    }
    {
      // + residual, LayerNorm, the next layer's qkv codes.
      const Linear& l = layer.output;
      const RowQuantization* q = ws->row_q[cur].data();
      uint8_t* codes = ws->codes[1 - cur].data();
      RowQuantization* next_q = ws->row_q[1 - cur].data();
      const float* g = layer.output_gamma.data();
      const float* b = layer.output_beta.data();
      const float* inv = next_qkv != nullptr ? smoothing(*next_qkv) : nullptr;
      RunInt8Linear(ws, l, ws->codes[cur].data(), m, [&](int64_t r) {
        float* row = hidden + r * h;
        DequantizeRow(acc + r * h, q[r], l.w_scale.data(), l.code_sum.data(),
                      l.bias_values.data(), h, true, row);
        LayerNormRow(row, h, g, b, eps);
        if (next_qkv != nullptr) next_q[r] = QuantizeRow(row, inv, h, levels, codes + r * h);
      });
      cur = 1 - cur;
    }
  }
}

void EncoderProgram::Run(const PackedTokens& tokens, float* out, const float* attention_bias,
                         int64_t bias_head_stride, int64_t bias_row_stride) const {
  const int64_t n = tokens.tokens(), m = PaddedRows(n), h = hidden_;
  // Threads for this batch (SetLoneBatchThreads): omp_set_num_threads is the
  // calling thread's own setting, which oneDNN and our loops read; restored
  // at the end.
  const int running = running_.fetch_add(1) + 1;
  const int budget = lone_batch_threads_.load();
  const int saved_threads = omp_get_max_threads();
  if (budget > 0) omp_set_num_threads(ThreadsFor(budget, running));
  std::unique_ptr<Workspace> ws = TakeWorkspace(m);
  float* hidden = ws->hidden.data();
  // Embeddings in Hugging Face's order of additions: (word + token type) + position.
  {
    const float* word = word_.data();
    const float* type = token_type_.empty() ? nullptr : token_type_.data();
    const float* pos = position_.data();
    const int64_t* ids = tokens.ids.data();
    const int64_t* types = tokens.type_ids.data();
    const int64_t* positions = tokens.positions.data();
    ParallelRows(n, [=](int64_t t) {
      float* row = hidden + t * h;
      const float* w = word + ids[t] * h;
      const float* p = pos + positions[t] * h;
      if (type != nullptr) {
        const float* ty = type + types[t] * h;
        for (int64_t j = 0; j < h; ++j) row[j] = (w[j] + ty[j]) + p[j];
      } else {
        for (int64_t j = 0; j < h; ++j) row[j] = w[j] + p[j];
      }
    });
    std::memset(hidden + n * h, 0, sizeof(float) * (m - n) * h);
  }
  if (int8_) {
    RunInt8(tokens, ws.get(), attention_bias, bias_head_stride, bias_row_stride);
  } else {
  LayerNormRows(hidden, m, embedding_gamma_, embedding_beta_);

  float* qkv = ws->qkv.data();
  float* context = ws->context.data();
  float* intermediate = ws->intermediate.data();
  for (const Layer& layer : layers_) {
    const int64_t a = layer.heads * head_dim_;
    RunLinear(ws.get(), layer.qkv, hidden, qkv, m);
    AttentionArgs args;
    args.qkv = qkv;
    args.qkv_stride = 3 * a;
    args.k_offset = a;
    args.v_offset = 2 * a;
    args.out = context;
    args.out_stride = a;
    args.heads = layer.heads;
    args.head_dim = head_dim_;
    args.lengths = tokens.lengths.data();
    args.rows = tokens.rows;
    args.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim_)));
    args.bias = attention_bias;
    args.bias_head_stride = bias_head_stride;
    args.bias_row_stride = bias_row_stride;
    FusedAttention(attention_isa_, args);
    RunLinear(ws.get(), layer.attention_out, context, hidden, m);  // + hidden (sum post-op)
    LayerNormRows(hidden, m, layer.attention_gamma, layer.attention_beta);
    RunLinear(ws.get(), layer.intermediate, hidden, intermediate, m);  // activation post-op
    RunLinear(ws.get(), layer.output, intermediate, hidden, m);       // + hidden
    LayerNormRows(hidden, m, layer.output_gamma, layer.output_beta);
  }
  }
  ws->stream.wait();
  std::memcpy(out, hidden, sizeof(float) * n * h);
  ReturnWorkspace(std::move(ws));
  if (budget > 0) omp_set_num_threads(saved_threads);
  running_.fetch_sub(1);
}

void EncoderProgram::LayerNormRows(float* x, int64_t rows, const std::vector<float>& gamma,
                                   const std::vector<float>& beta) const {
  const int64_t h = hidden_;
  const float* g = gamma.data();
  const float* b = beta.data();
  const float eps = eps_;
  ParallelRows(rows, [=](int64_t r) { LayerNormRow(x + r * h, h, g, b, eps); });
}

}  // namespace nlpflow
