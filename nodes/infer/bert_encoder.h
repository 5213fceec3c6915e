// The BERT encoder forward pass written with ATen ops.
//
// INTERNAL to nodes/infer: this header includes ATen and must only be included
// from nodes/infer/*.cc. Public headers (embedding_model.h) stay LibTorch-free
// because a translation unit that includes LibTorch takes tens of seconds to
// compile.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "nodes/infer/bert_config.h"
#include "nodes/infer/embedding_model.h"
#include "nodes/infer/encoder_family.h"
#include "nodes/infer/encoder_program.h"
#include "nodes/infer/int8_matmul.h"
#include "nodes/infer/packed_tokens.h"

namespace nlpflow {

// Sets LibTorch's intra-op threads and, when the process's BLAS is OpenBLAS,
// OpenBLAS's threads to `threads` (process-wide). Returns whether it is
// OpenBLAS. Defined in embedding_model.cc.
bool ApplyThreadSettings(int threads);

// The real tokens of `batch`. REQUIRES: ValidateTokenBatch(batch) is OK.
PackedTokens PackTokenBatch(const TokenBatch& batch);

// Where the Linear layers run.
enum class LinearBackend {
  kBlas,    // at::linear: ATen's generic path, the process's libblas.so.3
  kOnednn,  // at::mkldnn_linear on oneDNN tensors, fp32
  // int8 inside the encoder program (encoder_program.h, ProgramSpec::int8):
  // weights quantized per output channel (symmetric, scale = max|w| / 127),
  // u8 x s8 oneDNN matmuls with int32 output; every activation quantized per
  // token row (its own scale and zero point) by the pass that produces it, so
  // one outlier token does not cost the others their precision. Inputs that
  // come from a LayerNorm (qkv, intermediate) are also smoothed per channel
  // (SmoothingFactors). Bias, residual and the output stay fp32.
  kInt8Dynamic,
  // int8 weights as kInt8Dynamic (smoothing included; ATen path), and the input
  // quantized per tensor to 7 or 8 bits with a range calibrated ahead of time
  // (nlpflow quantize; BertConfig::activation_ranges), in the same pass that
  // finds the rows beyond the calibrated row bounds, which run in fp32; one
  // oneDNN matmul applies the scales and the bias and writes fp32
  // (int8_matmul.h). No per-call range search, no dequantize pass.
  kInt8Static,
  // fp32, the whole forward as one oneDNN program (encoder_program.h): matmul
  // primitives with the weights packed at load and bias, activation and
  // residual as post-ops, the fused attention kernel, LayerNorm of ours. The
  // ATen copies of the Linear weights are dropped after the program is built.
  kProgram,
};

class CheckpointWeights;

// One encoder for every family of encoder_family.h (BERT, DistilBERT,
// RoBERTa, XLM-RoBERTa, MPNet, ELECTRA): the families differ in weight names
// and in the embedding step (position ids, token types, ELECTRA's
// projection), and MPNet adds a relative-position bias to the attention
// scores. The layers are the same.
class BertEncoder {
 public:
  // Copies the weights out of `file` (the names of config.model_type's
  // family, with or without its task-model prefix such as "bert." or
  // "roberta.") and checks every shape against `config`. NOT_FOUND for a missing tensor,
  // INVALID_ARGUMENT for a shape mismatch; both name the tensor.
  // `backend` says how the Linear layers' weights are kept and run.
  // With glibc, the first call also fixes malloc's mmap and trim thresholds
  // for the whole process (32 MiB, 1 GiB), so that activation buffers are not
  // returned to the kernel and faulted in again on every batch
  // (bert_encoder.cc says why); the process then keeps its peak heap.
  // kProgram and kInt8Dynamic log what the program runs (oneDNN's
  // implementation and ISA, the attention kernel's, int8's activation bits)
  // and the CPU's instruction sets.
  static Result<std::unique_ptr<BertEncoder>> Load(const BertConfig& config,
                                                   const CheckpointWeights& file,
                                                   LinearBackend backend);

  // Last hidden states of the real tokens: [tokens.tokens(), hidden], float.
  // REQUIRES: ids < vocab_size, type_ids < type_vocab_size, row lengths <=
  // config.max_positions() (the caller validates). Throws c10::Error on
  // failure inside ATen. Thread-safe: reads the weights only.
  at::Tensor Forward(const PackedTokens& tokens) const;

  const BertConfig& config() const { return config_; }
  // kProgram, kInt8Dynamic: the program (for tests that count its
  // primitives); else null.
  const EncoderProgram* program() const { return program_.get(); }
  // kProgram, kInt8Dynamic: EncoderProgram::SetLoneBatchThreads; no effect
  // otherwise.
  void SetLoneBatchThreads(int threads) {
    if (program_) program_->SetLoneBatchThreads(threads);
  }
  LinearBackend backend() const { return backend_; }

  // One line per Linear layer (layer index, name, weight dtype and
  // quantization scheme), for tests and logs: "0 qkv QInt8 per_channel_affine
  // [1152, 384]". kInt8Dynamic's weights live in the program, as s8 codes
  // with a scale per output channel: that is what it says.
  std::vector<std::string> DescribeLinears() const;

  // The per-input-channel smoothing the int8 backends apply to a Linear that
  // reads a LayerNorm's output (bert_encoder.cc says why): the weight's column
  // j is multiplied by s_j and the input's channel j divided by it. For
  // calibration code that must see the activations the int8 layers see.
  static at::Tensor SmoothingFactors(const at::Tensor& norm_weight, const at::Tensor& norm_bias,
                                     const at::Tensor& weight);

  // kInt8Dynamic runs with no rows in fp32: on the 1,200 parity texts the
  // worst cosine to fp32 measured 0.9917 ("No.", 4 tokens) without them, over
  // the 0.99 bar, so the ATen path's rule (rows whose peak is over 8x their
  // RMS recomputed in fp32) was not carried over (nodes/infer/README.md).

 private:
  struct Linear {
    // [out, in]; oneDNN layout for kOnednn; for kProgram and kInt8Dynamic a
    // meta tensor of the shape once the program has its copy.
    at::Tensor weight;
    at::Tensor bias;  // [out]; oneDNN layout for kOnednn
    // The fp32 weight [out, in], for the rows that int8 would serve badly:
    // every layer of kInt8Static with calibrated row bounds. Undefined
    // otherwise.
    at::Tensor outlier_weight;
    // kInt8Static only: the GEMM, and per input channel the factor that takes
    // an input value to its quantized code before rounding (smoothing / s_x);
    // a row with a code below row_lo or above row_hi (before clamping) is
    // computed in fp32 with outlier_weight, when that is defined.
    std::shared_ptr<const StaticInt8Matmul> static_gemm;
    std::vector<float> code_factor;
    float row_lo = 0, row_hi = 0;
  };
  struct LayerNorm {
    at::Tensor weight, bias;
  };
  struct Layer {
    Linear qkv;  // query, key and value fused: [3 * hidden, hidden]
    Linear attention_out;
    LayerNorm attention_norm;
    Linear intermediate;
    Linear output;
    LayerNorm output_norm;
    int64_t heads = 0;  // attention heads (fewer than the config's when pruned)
  };

  BertEncoder(BertConfig config, LinearBackend backend)
      : config_(std::move(config)), backend_(backend) {}

  // kProgram: builds program_ from the fp32 weights, then drops the Linear
  // weights (a meta tensor of the same shape stays, for DescribeLinears).
  Status BuildProgram();
  // kInt8Static: builds `linear`'s GEMM for the calibrated input `ranges`
  // (smoothed by SmoothingFactors when `input_norm` is given), keeping the fp32
  // weight for the rows beyond ranges.rows when the calibration set them.
  static Status MakeStaticInt8(Linear* linear, const LayerNorm* input_norm,
                               const BertConfig::LinearRanges& ranges, int activation_bits);
  at::Tensor ApplyStaticInt8(const at::Tensor& x, const Linear& linear) const;
  // Overwrites `rows` (int64 indices) of `out` with x[rows] through the fp32
  // weight (linear.outlier_weight) and bias.
  static void RecomputeRowsInFp32(const at::Tensor& x, const Linear& linear,
                                  const at::Tensor& rows, at::Tensor* out);

  at::Tensor ApplyLinear(const at::Tensor& x, const Linear& linear) const;
  at::Tensor ApplyLayerNorm(const at::Tensor& x, const LayerNorm& norm) const;
  // In place on `x`, which the caller hands over.
  at::Tensor Activation(at::Tensor x) const;
  // qkv: [tokens, 3 * hidden] -> context [tokens, hidden].
  at::Tensor SelfAttention(const at::Tensor& qkv, const PackedTokens& tokens,
                           int64_t heads) const;
  // Attention of `rows` unpadded rows of `len` tokens each:
  // qkv [rows * len, 3 * heads * head_dim] -> context [rows * len, heads * head_dim].
  at::Tensor Attend(const at::Tensor& qkv, int64_t rows, int64_t len, int64_t heads) const;
  // Position ids of families with config.position_offset > 0.
  std::vector<int64_t> PositionIds(const PackedTokens& tokens) const;

  const BertConfig config_;
  const LinearBackend backend_;
  at::Tensor word_embeddings_, position_embeddings_;
  at::Tensor token_type_embeddings_;  // undefined without token types
  LayerNorm embedding_norm_;          // embedding_size wide
  Linear embedding_project_;          // ELECTRA: embedding_size -> hidden; else undefined
  at::Tensor relative_attention_bias_;  // MPNet: [buckets, heads]; else undefined
  std::vector<Layer> layers_;
  std::unique_ptr<EncoderProgram> program_;  // kProgram, kInt8Dynamic
};

}  // namespace nlpflow
