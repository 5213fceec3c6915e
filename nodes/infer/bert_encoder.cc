#include "nodes/infer/bert_encoder.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <spdlog/spdlog.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cmath>
#include <mutex>
#include <tuple>
#include <string>
#include <utility>

#include "nodes/infer/checkpoint_weights.h"
#include "nodes/infer/cpu_features.h"

namespace nlpflow {
namespace {

// Reads tensors by name, with the checkpoint's name prefix, checking shapes.
class WeightReader {
 public:
  WeightReader(const CheckpointWeights& file, std::string prefix)
      : file_(file), prefix_(std::move(prefix)) {}

  Result<at::Tensor> Get(const std::string& name, std::vector<int64_t> shape) const {
    return file_.Read(prefix_ + name, shape);
  }

 private:
  const CheckpointWeights& file_;
  const std::string prefix_;
};

// transformers' MPNet relative_position_bucket (bidirectional, max_distance
// 128), in the same float32 ops so that bucket boundaries match:
// [len, len] bucket of (key position - query position).
at::Tensor RelativePositionBuckets(int64_t len, int64_t num_buckets) {
  const at::Tensor pos = at::arange(len, at::kLong);
  const at::Tensor relative = pos.unsqueeze(0) - pos.unsqueeze(1);  // memory - context
  at::Tensor n = -relative;
  const int64_t half = num_buckets / 2;
  at::Tensor ret = (n < 0).to(at::kLong) * half;
  n = n.abs();
  const int64_t max_exact = half / 2;
  const at::Tensor is_small = n < max_exact;
  at::Tensor large =
      max_exact + (at::log(n.to(at::kFloat) / max_exact) / std::log(128.0 / max_exact) *
                   (half - max_exact))
                      .to(at::kLong);
  large = at::min(large, at::full_like(large, half - 1));
  return ret + at::where(is_small, n, large);
}

// The forward pass allocates and frees activation buffers of up to tens of MB
// per op ([rows, heads, len, len] scores, [tokens, ffn] activations). With
// glibc's default, self-adjusting thresholds, whether a freed buffer is handed
// back to the kernel depends on the order of earlier allocations; when it is,
// the next batch faults it back in page by page, zeroing included, on the
// calling thread. Measured at 32 x 128: 134,848 minor faults (527 MiB) per
// batch in some runs and none in others with the same code, the difference
// 1.25x in CPU time (bench/results/runtime_profile.md). Fixed thresholds keep
// buffers up to 32 MiB (glibc's largest mmap threshold) in the heap and the
// heap's free top up to 1 GiB mapped: the process keeps its peak heap instead
// of returning it after a large batch. Process-wide, once.
void KeepActivationBuffersMapped() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  });
#endif
}

}  // namespace

PackedTokens PackTokenBatch(const TokenBatch& b) {
  PackedTokens tokens;
  tokens.rows = b.batch;
  tokens.lengths.resize(b.batch);
  for (int64_t r = 0; r < b.batch; ++r) {
    const int64_t* mask = &b.attention_mask[r * b.seq_len];
    int64_t len = 0;
    while (len < b.seq_len && mask[len] == 1) ++len;
    tokens.lengths[r] = len;
  }
  for (int64_t r = 0; r < b.batch; ++r) {
    for (int64_t t = 0; t < tokens.lengths[r]; ++t) {
      const int64_t i = r * b.seq_len + t;
      tokens.ids.push_back(b.input_ids[i]);
      tokens.type_ids.push_back(b.token_type_ids.empty() ? 0 : b.token_type_ids[i]);
      tokens.positions.push_back(t);
    }
  }
  return tokens;
}

Result<std::unique_ptr<BertEncoder>> BertEncoder::Load(const BertConfig& config,
                                                       const CheckpointWeights& file,
                                                       LinearBackend backend) {
  // The program has no embedding projection: ELECTRA with embedding_size !=
  // hidden_size runs on the ATen path.
  if (backend == LinearBackend::kProgram && config.embedding_size > 0 &&
      config.embedding_size != config.hidden_size) {
    backend = LinearBackend::kBlas;
  }
  // Dynamic int8 runs only in the program (the ATen int8 path is gone).
  if (backend == LinearBackend::kInt8Dynamic && config.embedding_size > 0 &&
      config.embedding_size != config.hidden_size) {
    return Status::InvalidArgument(file.path() + ": int8 needs embedding_size == hidden_size (" +
                                   std::to_string(config.embedding_size) + " != " +
                                   std::to_string(config.hidden_size) +
                                   "): the int8 encoder program has no embedding projection");
  }
  const EncoderFamily* family = FindEncoderFamily(config.model_type);
  if (family == nullptr) {
    return Status::InvalidArgument(file.path() + ": model_type '" + config.model_type +
                                   "' is not supported; supported: " + SupportedModelTypes());
  }
  // Base model checkpoints (BertModel, RobertaModel, ...) name tensors
  // "embeddings...", task models "bert.embeddings...", "roberta.embeddings..."
  const std::string word = family->word_embeddings + ".weight";
  std::string prefix;
  if (file.Contains(family->encoder_prefix + word)) {
    prefix = family->encoder_prefix;
  } else if (!file.Contains(word)) {
    return Status::NotFound(file.path() + ": no " + config.model_type +
                            " word embeddings: neither '" + word + "' nor '" +
                            family->encoder_prefix + word + "'");
  }
  const WeightReader reader(file, prefix);
  const int64_t h = config.hidden_size;
  const int64_t e = config.embedding_size > 0 ? config.embedding_size : h;
  KeepActivationBuffersMapped();
  if (backend == LinearBackend::kInt8Static && config.quantization != "static_int8") {
    return Status::InvalidArgument(file.path() +
                                   ": static int8 needs calibrated activation ranges "
                                   "(config.json 'nlpflow_quantization' mode static_int8; "
                                   "nlpflow quantize --mode static writes them)");
  }

  std::unique_ptr<BertEncoder> encoder(new BertEncoder(config, backend));
  auto linear = [&](const std::string& name, int64_t out,
                    int64_t in) -> Result<BertEncoder::Linear> {
    NLPFLOW_ASSIGN_OR_RETURN(at::Tensor w, reader.Get(name + ".weight", {out, in}));
    NLPFLOW_ASSIGN_OR_RETURN(at::Tensor b, reader.Get(name + ".bias", {out}));
    BertEncoder::Linear l;
    l.weight = std::move(w);
    l.bias = std::move(b);
    return l;
  };
  auto norm = [&](const std::string& name, int64_t width) -> Result<BertEncoder::LayerNorm> {
    NLPFLOW_ASSIGN_OR_RETURN(at::Tensor w, reader.Get(name + ".weight", {width}));
    NLPFLOW_ASSIGN_OR_RETURN(at::Tensor b, reader.Get(name + ".bias", {width}));
    return BertEncoder::LayerNorm{std::move(w), std::move(b)};
  };

  // The embedding step: what differs between families is which tables exist
  // and their widths (encoder_family.h).
  NLPFLOW_ASSIGN_OR_RETURN(encoder->word_embeddings_,
                           reader.Get(word, {config.vocab_size, e}));
  NLPFLOW_ASSIGN_OR_RETURN(encoder->position_embeddings_,
                           reader.Get(family->position_embeddings + ".weight",
                                      {config.max_position_embeddings, e}));
  if (config.token_types) {
    NLPFLOW_ASSIGN_OR_RETURN(encoder->token_type_embeddings_,
                             reader.Get(family->token_type_embeddings + ".weight",
                                        {config.type_vocab_size, e}));
  }
  NLPFLOW_ASSIGN_OR_RETURN(encoder->embedding_norm_, norm(family->embedding_norm, e));
  if (e != h) {
    NLPFLOW_ASSIGN_OR_RETURN(Linear project, linear(family->embedding_project, h, e));
    encoder->embedding_project_ = std::move(project);
  }
  if (config.relative_attention_num_buckets > 0) {
    NLPFLOW_ASSIGN_OR_RETURN(
        encoder->relative_attention_bias_,
        reader.Get(family->relative_attention_bias + ".weight",
                   {config.relative_attention_num_buckets, config.num_attention_heads}));
  }

  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = family->layer_prefix + std::to_string(i) + ".";
    Layer layer;
    layer.heads = config.attention_heads_of(i);
    const int64_t a = layer.heads * config.head_dim();  // attention width
    const int64_t ffn = config.intermediate_size_of(i);
    NLPFLOW_ASSIGN_OR_RETURN(Linear q, linear(p + family->query, a, h));
    NLPFLOW_ASSIGN_OR_RETURN(Linear k, linear(p + family->key, a, h));
    NLPFLOW_ASSIGN_OR_RETURN(Linear v, linear(p + family->value, a, h));
    // One [3h, h] GEMM instead of three [h, h] ones.
    layer.qkv.weight = at::cat({q.weight, k.weight, v.weight}, 0);
    layer.qkv.bias = at::cat({q.bias, k.bias, v.bias}, 0);
    NLPFLOW_ASSIGN_OR_RETURN(layer.attention_out, linear(p + family->attention_out, h, a));
    NLPFLOW_ASSIGN_OR_RETURN(layer.attention_norm, norm(p + family->attention_norm, h));
    NLPFLOW_ASSIGN_OR_RETURN(layer.intermediate, linear(p + family->intermediate, ffn, h));
    NLPFLOW_ASSIGN_OR_RETURN(layer.output, linear(p + family->output, h, ffn));
    NLPFLOW_ASSIGN_OR_RETURN(layer.output_norm, norm(p + family->output_norm, h));
    if (backend == LinearBackend::kOnednn) {
      for (Linear* l : {&layer.qkv, &layer.attention_out, &layer.intermediate, &layer.output}) {
        l->weight = l->weight.to_mkldnn();
        l->bias = l->bias.to_mkldnn();
      }
    } else if (backend == LinearBackend::kInt8Static) {
      // qkv reads the previous layer's output LayerNorm (the embeddings' for
      // layer 0), intermediate the attention's; the other two read
      // attention context and GELU output, which are not smoothed; nor is
      // ELECTRA's embedding projection, which layer 0 reads then.
      const LayerNorm* qkv_input = !encoder->layers_.empty() ? &encoder->layers_.back().output_norm
                                   : e == h                  ? &encoder->embedding_norm_
                                                             : nullptr;
      const std::pair<Linear*, const LayerNorm*> linears[] = {
          {&layer.qkv, qkv_input},
          {&layer.attention_out, nullptr},
          {&layer.intermediate, &layer.attention_norm},
          {&layer.output, nullptr}};
      static const char* const kSites[] = {"qkv", "attention_out", "intermediate", "output"};
      for (int j = 0; j < 4; ++j) {
        const auto [target, input_norm] = linears[j];
        // ParseBertConfig has checked that static_int8 has every range.
        NLPFLOW_RETURN_IF_ERROR(MakeStaticInt8(
            target, input_norm, config.activation_ranges.at(std::to_string(i) + "." + kSites[j]),
            config.activation_bits));
      }
    }
    encoder->layers_.push_back(std::move(layer));
  }
  if (backend == LinearBackend::kProgram || backend == LinearBackend::kInt8Dynamic) {
    NLPFLOW_RETURN_IF_ERROR(encoder->BuildProgram());
  }
  if (backend == LinearBackend::kInt8Static) {
    const bool vnni = GetCpuFeatures().has_vnni();
    spdlog::info("infer: int8 {}: {}; oneDNN ISA {}; CPU {}",
                 "static",
                 "activation bits " + std::to_string(config.activation_bits) +
                     ", weights up to " +
                     std::to_string(StaticInt8Matmul::WeightMax(config.activation_bits)) +
                     (vnni ? " (VNNI)" : " (no VNNI)"),
                 OnednnEffectiveIsa(), GetCpuFeatures().Describe());
  }
  return encoder;
}

Status BertEncoder::BuildProgram() {
  NLPFLOW_ASSIGN_OR_RETURN(const nlpflow::Activation activation, ParseActivation(config_.hidden_act));
  auto data = [](const at::Tensor& t) { return t.data_ptr<float>(); };
  auto linear = [&](const Linear& l) {
    return ProgramLinear{data(l.weight), data(l.bias), l.weight.size(0), l.weight.size(1)};
  };
  auto norm = [&](const LayerNorm& n) { return ProgramNorm{data(n.weight), data(n.bias)}; };
  const bool int8 = backend_ == LinearBackend::kInt8Dynamic;
  // int8: qkv and intermediate read a LayerNorm's output and are smoothed
  // (SmoothingFactors); the factors live here until the program has copied
  // the weights.
  std::vector<at::Tensor> smoothing;
  auto smoothed = [&](const Linear& l, const LayerNorm& input_norm) {
    ProgramLinear pl = linear(l);
    if (int8) {
      smoothing.push_back(
          SmoothingFactors(input_norm.weight, input_norm.bias, l.weight).to(at::kFloat).contiguous());
      pl.input_smoothing = data(smoothing.back());
    }
    return pl;
  };
  ProgramSpec spec;
  spec.int8 = int8;
  spec.hidden = config_.hidden_size;
  spec.head_dim = config_.head_dim();
  spec.layer_norm_eps = config_.layer_norm_eps;
  spec.activation = activation;
  spec.word_embeddings = data(word_embeddings_);
  spec.vocab_size = word_embeddings_.size(0);
  spec.position_embeddings = data(position_embeddings_);
  spec.max_positions = position_embeddings_.size(0);
  if (token_type_embeddings_.defined()) {  // DistilBERT and MPNet have none
    spec.token_type_embeddings = data(token_type_embeddings_);
    spec.type_vocab_size = token_type_embeddings_.size(0);
  }
  spec.embedding_norm = norm(embedding_norm_);
  smoothing.reserve(2 * layers_.size());  // pointers into it stay valid
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    const LayerNorm& qkv_input = i == 0 ? embedding_norm_ : layers_[i - 1].output_norm;
    spec.layers.push_back({layer.heads, smoothed(layer.qkv, qkv_input), linear(layer.attention_out),
                           norm(layer.attention_norm), smoothed(layer.intermediate, layer.attention_norm),
                           linear(layer.output), norm(layer.output_norm)});
  }
  NLPFLOW_ASSIGN_OR_RETURN(program_, EncoderProgram::Create(spec));
  // The program holds its own (reordered) copies; only the shapes stay here,
  // for DescribeLinears.
  for (Layer& layer : layers_) {
    for (Linear* l : {&layer.qkv, &layer.attention_out, &layer.intermediate, &layer.output}) {
      l->weight = at::empty(l->weight.sizes(), at::TensorOptions().device(at::kMeta));
    }
  }
  spdlog::info("infer: encoder program: {}; CPU {}", program_->Describe(),
               GetCpuFeatures().Describe());
  return Status::Ok();
}

std::vector<std::string> BertEncoder::DescribeLinears() const {
  std::vector<std::string> out;
  static const char* const kNames[] = {"qkv", "attention_out", "intermediate", "output"};
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    const Linear* linears[] = {&layer.qkv, &layer.attention_out, &layer.intermediate,
                               &layer.output};
    for (int j = 0; j < 4; ++j) {
      at::Tensor w = linears[j]->weight;
      std::string scheme = w.is_quantized() ? std::string(c10::toString(w.qscheme())) : "none";
      std::string dtype(c10::toString(w.scalar_type()));
      if (backend_ == LinearBackend::kInt8Dynamic) {
        // The program's weights: s8 codes with one scale per output channel
        // (the shape-only meta tensor here says nothing of them).
        dtype = "QInt8";
        scheme = "per_channel_affine";
      }
      std::string line = std::to_string(i) + " " + kNames[j] + " " + dtype + " " + scheme + " [" +
                         std::to_string(w.size(0)) + ", " + std::to_string(w.size(1)) + "]";
      out.push_back(std::move(line));
    }
  }
  return out;
}

// Makes `linear` int8: weights with one scale per output channel, zero point
// 0 (symmetric, as PyTorch's per-channel weight observer for dynamic
// quantization), prepacked by the selected quantized engine (ONEDNN).
// Per-channel: FACTS.md measured per-tensor weights far slower on this
// LibTorch, and per-channel is the more accurate of the two.
//
// `input_norm`, when given, is the LayerNorm whose output the layer reads.
// BERT's LayerNorm outputs have a few channels far larger than the rest
// (large gamma), and one scale per token row would be spent on them. So the
// input is divided per channel by s_j and the weight's column j multiplied by
// s_j (the product is unchanged), with s_j = sqrt(a_j / w_j): a_j = 4|gamma_j|
// + |beta_j| estimates the channel's largest activation (|normalized value|
// rarely exceeds 4), w_j is the column's largest |weight| (SmoothQuant's
// balance with alpha = 0.5, with the activation range read from the
// LayerNorm instead of calibration data). Measured on the 64 fixture texts
// (cosine to fp32, mean / worst): per-tensor activations as PyTorch's
// quantize_dynamic 0.988 / 0.966; per-token 0.994 / 0.974; per-token and
// smoothed 0.996 / 0.982.
at::Tensor BertEncoder::SmoothingFactors(const at::Tensor& norm_weight,
                                         const at::Tensor& norm_bias,
                                         const at::Tensor& weight) {
  const at::Tensor act_max = norm_weight.abs().mul(4.0).add(norm_bias.abs());
  const at::Tensor w_max = std::get<0>(weight.abs().max(0)).clamp_min(1e-5);
  return (act_max / w_max).sqrt().clamp_min(1e-5);
}

Status BertEncoder::MakeStaticInt8(Linear* linear, const LayerNorm* input_norm,
                                   const BertConfig::LinearRanges& ranges, int activation_bits) {
  // The calibrated input range [lo, hi] (lo <= 0 <= hi) on the input codes;
  // 0 is a code, so zeros are exact.
  const int levels = StaticInt8Matmul::InputLevels(activation_bits);
  const double lo = std::min(0.0, static_cast<double>(ranges.input.lo));
  const double hi = std::max(0.0, static_cast<double>(ranges.input.hi));
  const double scale = std::max(hi - lo, 1e-8) / (levels - 1);
  const int64_t zero_point =
      std::clamp<int64_t>(static_cast<int64_t>(std::nearbyint(-lo / scale)), 0, levels - 1);
  at::Tensor weight = linear->weight;
  at::Tensor smooth;
  if (input_norm != nullptr) {
    smooth = SmoothingFactors(input_norm->weight, input_norm->bias, weight);
    weight = weight * smooth.unsqueeze(0);
  }
  if (ranges.has_rows) {
    // Rows beyond these bounds go to fp32; values between them and the
    // quantization range are clipped (the calibration found that cheaper).
    linear->outlier_weight = linear->weight;
    linear->row_lo = static_cast<float>(ranges.rows.lo / scale + zero_point);
    linear->row_hi = static_cast<float>(ranges.rows.hi / scale + zero_point);
  }
  try {
    auto gemm = std::make_shared<const StaticInt8Matmul>(weight, linear->bias, scale, zero_point,
                                                         activation_bits);
    const at::Tensor factor =
        (smooth.defined() ? smooth.reciprocal() : at::ones({weight.size(1)}, at::kFloat))
            .div(scale)
            .to(at::kFloat)
            .contiguous();
    linear->code_factor.assign(factor.data_ptr<float>(),
                               factor.data_ptr<float>() + factor.numel());
    linear->weight = gemm->qweight();  // what DescribeLinears shows
    linear->static_gemm = std::move(gemm);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("static int8: oneDNN: ") + e.what());
  }
  return Status::Ok();
}

at::Tensor BertEncoder::ApplyLinear(const at::Tensor& x, const Linear& linear) const {
  if (backend_ == LinearBackend::kInt8Static) return ApplyStaticInt8(x, linear);
  if (backend_ == LinearBackend::kOnednn) {
    // The activations go to oneDNN and back for each Linear, which keeps every
    // other op on ordinary tensors. Those two copies and oneDNN's per-call
    // reorder of the weights are why this path trails OpenBLAS on AVX2
    // machines (README.md); prepacked weights are for the optimization work.
    return at::mkldnn_linear(x.contiguous().to_mkldnn(), linear.weight, linear.bias)
        .to_dense();
  }
  return at::linear(x, linear.weight, linear.bias);
}

// One pass over the input writes its codes (smoothing, scale and zero point
// in one multiply-add per value) and notes the rows that leave the
// calibrated row bounds; one int8 GEMM with fp32 output; those rows again in
// fp32.
at::Tensor BertEncoder::ApplyStaticInt8(const at::Tensor& x_in, const Linear& linear) const {
  const at::Tensor x = x_in.contiguous();
  const int64_t m = x.size(0), k = x.size(1);
  const float zero_point = static_cast<float>(linear.static_gemm->input_zero_point());
  const float top =
      static_cast<float>(StaticInt8Matmul::InputLevels(linear.static_gemm->activation_bits()) - 1);
  const bool outliers = linear.outlier_weight.defined();
  const float row_lo = linear.row_lo, row_hi = linear.row_hi;
  at::Tensor codes = at::empty({m, k}, at::kByte);
  std::vector<uint8_t> outlier(outliers ? m : 0, 0);
  const float* src = x.data_ptr<float>();
  uint8_t* dst = codes.data_ptr<uint8_t>();
  const float* factor = linear.code_factor.data();
  at::parallel_for(0, m, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* row = src + r * k;
      uint8_t* out = dst + r * k;
      float low = zero_point, high = zero_point;
      for (int64_t j = 0; j < k; ++j) {
        const float c = row[j] * factor[j] + zero_point;
        low = std::min(low, c);
        high = std::max(high, c);
        // Round to nearest even by the 1.5 x 2^23 trick (0 <= c <= 255 here).
        const float clamped = std::min(std::max(c, 0.0f), top);
        out[j] = static_cast<uint8_t>(static_cast<int>((clamped + 12582912.0f) - 12582912.0f));
      }
      if (outliers) outlier[r] = low < row_lo || high > row_hi;
    }
  });
  at::Tensor out;
  {
    RECORD_USER_SCOPE_WITH_INPUTS("nlpflow::int8_linear",
                                  std::vector<c10::IValue>({codes, linear.bias}));
    out = linear.static_gemm->Apply(codes);
  }
  if (outliers) {
    std::vector<int64_t> rows;
    for (int64_t r = 0; r < m; ++r) {
      if (outlier[r]) rows.push_back(r);
    }
    RecomputeRowsInFp32(
        x, linear, at::from_blob(rows.data(), {static_cast<int64_t>(rows.size())}, at::kLong),
        &out);
  }
  return out;
}

void BertEncoder::RecomputeRowsInFp32(const at::Tensor& x, const Linear& linear,
                                      const at::Tensor& rows, at::Tensor* out) {
  if (rows.numel() == 0) return;
  out->index_copy_(0, rows, at::linear(x.index_select(0, rows), linear.outlier_weight,
                                       linear.bias));
}

at::Tensor BertEncoder::ApplyLayerNorm(const at::Tensor& x, const LayerNorm& norm) const {
  return at::layer_norm(x, {config_.hidden_size}, norm.weight, norm.bias,
                        config_.layer_norm_eps);
}

at::Tensor BertEncoder::Activation(at::Tensor x) const {
  // In place on the intermediate Linear's fresh output: an out-of-place GELU
  // measured up to 3x slower on the int8 path, its [tokens, ffn] output
  // faulted in page by page (bench/results/runtime_profile.md).
  if (config_.hidden_act == "gelu") return at::gelu_(x);  // exact, erf-based
  if (config_.hidden_act == "relu") return at::relu_(x);
  if (config_.hidden_act == "silu") return at::silu_(x);
  return at::gelu_(x, "tanh");  // gelu_new, gelu_pytorch_tanh
}

at::Tensor BertEncoder::Attend(const at::Tensor& qkv, int64_t rows, int64_t len,
                              int64_t heads) const {
  const int64_t head_dim = config_.head_dim();
  const at::Tensor x = qkv.view({rows, len, 3, heads, head_dim});
  const at::Tensor q = x.select(2, 0).transpose(1, 2);  // [rows, heads, len, head_dim]
  const at::Tensor k = x.select(2, 1).transpose(1, 2);
  const at::Tensor v = x.select(2, 2).transpose(1, 2);
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2));  // [rows, heads, len, len]
  scores.div_(std::sqrt(static_cast<double>(head_dim)));   // as Hugging Face does
  if (relative_attention_bias_.defined()) {
    // MPNet: one [heads, len, len] bias for every row and layer, added after
    // the scaling as transformers does. It depends on relative positions only,
    // so dropping the padding does not change it.
    const at::Tensor buckets =
        RelativePositionBuckets(len, config_.relative_attention_num_buckets);
    scores.add_(at::embedding(relative_attention_bias_, buckets).permute({2, 0, 1}));
  }
  // In place: the row's softmax reads each score before it writes it, and a
  // second len x len buffer would be one more fresh allocation to fault in.
  at::_softmax_out(scores, scores, -1, /*half_to_float=*/false);
  return at::matmul(scores, v).transpose(1, 2).reshape({rows * len, heads * head_dim});
}

at::Tensor BertEncoder::SelfAttention(const at::Tensor& qkv, const PackedTokens& tokens,
                                     int64_t heads) const {
  // Rows of equal length side by side need no mask, and no row is padded: a
  // padded layout would spend len_max^2 work on every row, which hurts most in
  // exactly the mixed batches where one long row pads many short ones. The
  // cost is one set of small ops per run of equal lengths; the batcher's
  // length grouping keeps runs long.
  std::vector<at::Tensor> contexts;
  int64_t offset = 0;
  for (int64_t r = 0; r < tokens.rows;) {
    const int64_t len = tokens.lengths[r];
    int64_t run = 1;
    while (r + run < tokens.rows && tokens.lengths[r + run] == len) ++run;
    contexts.push_back(Attend(qkv.narrow(0, offset, run * len), run, len, heads));
    offset += run * len;
    r += run;
  }
  return contexts.size() == 1 ? contexts[0] : at::cat(contexts, 0);
}

std::vector<int64_t> BertEncoder::PositionIds(const PackedTokens& tokens) const {
  // transformers' create_position_ids_from_input_ids: padding_idx +
  // cumsum(id != pad) for real tokens, padding_idx for a pad id.
  std::vector<int64_t> positions(tokens.ids.size());
  const int64_t pad = config_.pad_token_id;
  for (int64_t r = 0, k = 0; r < tokens.rows; ++r) {
    int64_t count = 0;
    for (int64_t t = 0; t < tokens.lengths[r]; ++t, ++k) {
      if (tokens.ids[k] == pad) {
        positions[k] = pad;
      } else {
        positions[k] = pad + (++count);
      }
    }
  }
  return positions;
}

at::Tensor BertEncoder::Forward(const PackedTokens& tokens) const {
  const int64_t n = tokens.tokens();
  if (program_) {
    at::Tensor out = at::empty({n, config_.hidden_size}, at::kFloat);
    // The families' differences the program takes as inputs: RoBERTa-style
    // position ids, and MPNet's relative-position bias, one [heads, L, L]
    // table for the longest row (a shorter row reads its top-left corner:
    // the bias depends on key - query only).
    PackedTokens shifted;
    const PackedTokens* run = &tokens;
    if (config_.position_offset > 0) {
      shifted = tokens;
      shifted.positions = PositionIds(tokens);
      run = &shifted;
    }
    if (relative_attention_bias_.defined()) {
      const int64_t len = *std::max_element(tokens.lengths.begin(), tokens.lengths.end());
      const at::Tensor bias =
          at::embedding(relative_attention_bias_,
                        RelativePositionBuckets(len, config_.relative_attention_num_buckets))
              .permute({2, 0, 1})
              .contiguous();
      program_->Run(*run, out.data_ptr<float>(), bias.data_ptr<float>(), len * len, len);
    } else {
      program_->Run(*run, out.data_ptr<float>());
    }
    return out;
  }
  auto as_tensor = [n](const std::vector<int64_t>& v) {
    return at::from_blob(const_cast<int64_t*>(v.data()), {n}, at::kLong);
  };
  // Same order of additions as Hugging Face's BertEmbeddings (words, token
  // types, positions); RoBERTa's, XLM-R's and MPNet's positions count the
  // non-padding tokens after pad_token_id (PositionIds).
  at::Tensor hidden = word_embeddings_.index_select(0, as_tensor(tokens.ids));
  if (token_type_embeddings_.defined()) {
    hidden.add_(token_type_embeddings_.index_select(0, as_tensor(tokens.type_ids)));
  }
  if (config_.position_offset == 0) {
    hidden.add_(position_embeddings_.index_select(0, as_tensor(tokens.positions)));
  } else {
    const std::vector<int64_t> positions = PositionIds(tokens);
    hidden.add_(position_embeddings_.index_select(0, as_tensor(positions)));
  }
  hidden = at::layer_norm(hidden, {embedding_norm_.weight.size(0)}, embedding_norm_.weight,
                          embedding_norm_.bias, config_.layer_norm_eps);
  if (embedding_project_.weight.defined()) {
    // Plain fp32 whatever the backend: a small GEMM, and not one of the four
    // per-layer Linears the int8 and oneDNN set-ups convert.
    hidden = at::linear(hidden, embedding_project_.weight, embedding_project_.bias);
  }

  for (const Layer& layer : layers_) {
    const at::Tensor context =
        SelfAttention(ApplyLinear(hidden, layer.qkv), tokens, layer.heads);
    hidden = ApplyLayerNorm(ApplyLinear(context, layer.attention_out).add_(hidden),
                            layer.attention_norm);
    const at::Tensor intermediate = Activation(ApplyLinear(hidden, layer.intermediate));
    hidden = ApplyLayerNorm(ApplyLinear(intermediate, layer.output).add_(hidden),
                            layer.output_norm);
  }
  return hidden;
}

}  // namespace nlpflow
