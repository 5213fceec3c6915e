// The fp32 encoder as a oneDNN program: built once at load, run per batch
// without ATen and, once warm, without allocation.
//
// At Create():
// - every Linear becomes oneDNN matmul primitives (libdnnl.so.2, the oneDNN
//   LibTorch links) with the weights reordered once into the layout the
//   primitives chose. Bias is the matmul's bias; the activation (GELU erf,
//   GELU tanh, ReLU, SiLU) and the residual add are post-ops (eltwise, sum) of
//   the matmul that produces them, so they cost no pass of their own;
// - primitives are made for a few fixed row tiles (kRowTiles) that share one
//   copy of the weights; a batch of any size runs as whole tiles with the
//   buffers padded to a multiple of the smallest. Why not one primitive with
//   M = DNNL_RUNTIME_DIM_VAL: oneDNN 2.6 then picks its gemm:jit
//   implementation instead of brgemm, measured slower on this Xeon
//   (nodes/infer/README.md).
// Per batch: embeddings (word + position + optional token type), then per
// layer: qkv matmul, fused attention (attention_kernel.h), attention-output
// matmul + bias + residual, LayerNorm (one kernel of ours: mean, variance and
// the normalized row while the row is in L1), intermediate matmul + bias +
// activation, output matmul + bias + residual, LayerNorm.
//
// Buffers (activations, attention scratch) belong to the program: a pool of
// workspaces, one taken per running Run() and returned after, grown only when
// a batch is larger than any before it.
//
// This header includes neither ATen nor oneDNN.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodes/infer/cpu_features.h"
#include "nodes/infer/packed_tokens.h"

namespace nlpflow {

// The activation of the intermediate layer (config.json's hidden_act).
enum class Activation {
  kGeluErf,   // "gelu": x Phi(x), exact
  kGeluTanh,  // "gelu_new", "gelu_pytorch_tanh"
  kRelu,      // "relu"
  kSilu,      // "silu", "swish"
};
// INVALID_ARGUMENT naming the value if it is none of the above.
Result<Activation> ParseActivation(const std::string& hidden_act);

// Weights the program copies (and reorders) at Create(); the caller may free
// its own copies after. Row-major float arrays.
struct ProgramLinear {
  const float* weight = nullptr;  // [out, in], as torch.nn.Linear keeps it
  const float* bias = nullptr;    // [out]
  int64_t out = 0, in = 0;
  // int8 only, may be null: per input channel j a factor s_j the weight's
  // column j is multiplied by before quantization, and the input's channel j
  // divided by when it is quantized (SmoothQuant's balance; BertEncoder::
  // SmoothingFactors). The product is unchanged.
  const float* input_smoothing = nullptr;  // [in]
};
struct ProgramNorm {
  const float* weight = nullptr;  // [hidden]
  const float* bias = nullptr;
};
struct ProgramLayer {
  int64_t heads = 0;         // may differ per layer (pruned models)
  ProgramLinear qkv;         // [3 * heads * head_dim, hidden]: q, k, v stacked
  ProgramLinear attention_out;
  ProgramNorm attention_norm;
  ProgramLinear intermediate;
  ProgramLinear output;
  ProgramNorm output_norm;
};
struct ProgramSpec {
  int64_t hidden = 0, head_dim = 0;
  double layer_norm_eps = 1e-12;
  Activation activation = Activation::kGeluErf;
  // Embedding tables [rows, hidden]; token_type may be null (families
  // without token types: then PackedTokens::type_ids is ignored).
  const float* word_embeddings = nullptr;
  int64_t vocab_size = 0;
  const float* position_embeddings = nullptr;
  int64_t max_positions = 0;
  const float* token_type_embeddings = nullptr;
  int64_t type_vocab_size = 0;
  ProgramNorm embedding_norm;
  std::vector<ProgramLayer> layers;
  // The attention kernel's instruction set; BestKernelIsa() by default.
  KernelIsa attention_isa = BestKernelIsa();
  // Dynamic int8: every Linear a oneDNN u8 x s8 matmul with int32 output
  // (weights quantized symmetrically per output channel, -127..127), its
  // input quantized per row (a scale and zero point of its own) by the pass
  // that produces it: the LayerNorm kernel (qkv, intermediate), the
  // epilogue after the activation (output), a pass over the attention
  // context (attention_out). The epilogue (int8_rows.h) applies the scales,
  // the zero point's term, the bias and the residual.
  bool int8 = false;
  // 8 (codes 0..255) where the CPU has VNNI or AMX, 7 without: oneDNN's AVX2
  // and AVX-512 kernels without VNNI add u8 x s8 pairs into a saturating int16.
  int activation_bits = GetCpuFeatures().has_vnni() ? 8 : 7;
};

class EncoderProgram {
 public:
  // Row tiles the matmul primitives are made for, largest first; a batch's
  // token count is padded to a multiple of the last.
  static constexpr int64_t kRowTiles[] = {256, 64, 16};

  // Builds every primitive and copies every weight. INVALID_ARGUMENT for
  // inconsistent shapes (naming the layer and tensor); INTERNAL when oneDNN
  // cannot make a primitive (its message).
  static Result<std::unique_ptr<EncoderProgram>> Create(const ProgramSpec& spec);
  ~EncoderProgram();
  EncoderProgram(const EncoderProgram&) = delete;
  EncoderProgram& operator=(const EncoderProgram&) = delete;

  // The last hidden states of the real tokens into out[tokens.tokens() *
  // hidden], row-major. `attention_bias`, when not null, is added to every
  // layer's scaled attention scores (AttentionArgs::bias, with its strides):
  // the hook for MPNet's relative position bias. REQUIRES: ids, type ids and
  // positions in range (the caller validates). Runs on the calling thread's
  // OpenMP threads (omp_set_num_threads / at::set_num_threads). Thread-safe.
  void Run(const PackedTokens& tokens, float* out, const float* attention_bias = nullptr,
           int64_t bias_head_stride = 0, int64_t bias_row_stride = 0) const;

  // Single-record latency: with a budget of `threads` (> 1), a Run() that
  // finds no other Run() in progress uses `threads` OpenMP threads (the cores
  // of the idle model instances), and with k running at once each uses
  // threads / k (at least 1), so the loaded case keeps one instance per core.
  // 0 (the default): every Run() uses the calling thread's setting. The count
  // is taken when a Run() starts; one that started alone keeps its threads
  // until it ends, so for that long the cores are oversubscribed by one.
  void SetLoneBatchThreads(int threads) { lone_batch_threads_.store(threads); }
  // The threads a Run() uses under a budget of `threads` when `running`
  // Run()s (itself included) are in progress.
  static int ThreadsFor(int threads, int running) {
    return running < 1 ? threads : (threads / running > 1 ? threads / running : 1);
  }

  int64_t hidden() const { return hidden_; }
  // oneDNN primitives created so far: all at Create(), none after (the test
  // counts them across batches of different sizes).
  int64_t primitives_created() const { return primitives_created_; }
  // What runs, for the load log: "oneDNN brg:avx512_core_amx x72 (tiles 256/64/16),
  // attention avx512".
  std::string Describe() const;

 private:
  struct Linear;
  struct Layer;
  struct Workspace;
  EncoderProgram() = default;

  std::unique_ptr<Workspace> TakeWorkspace(int64_t rows) const;
  void ReturnWorkspace(std::unique_ptr<Workspace> ws) const;
  // dst rows [0, rows) = src * W^T + b, with linear's post-ops. REQUIRES:
  // rows a multiple of the smallest tile.
  void RunLinear(Workspace* ws, const Linear& linear, const float* src, float* dst,
                 int64_t rows) const;
  void LayerNormRows(float* x, int64_t rows, const std::vector<float>& gamma,
                     const std::vector<float>& beta) const;
  // int8: codes in -> int32 accumulators, tile by tile; after each tile,
  // epilogue(first_row, end_row) on its rows while they are in cache.
  template <typename Epilogue>
  void RunInt8Linear(Workspace* ws, const Linear& linear, const uint8_t* codes, int64_t rows,
                     const Epilogue& epilogue) const;
  void RunInt8(const PackedTokens& tokens, Workspace* ws, const float* attention_bias,
               int64_t bias_head_stride, int64_t bias_row_stride) const;

  int64_t hidden_ = 0, head_dim_ = 0;
  float eps_ = 0;
  bool int8_ = false;
  int activation_levels_ = 256;  // int8: 2^activation_bits
  Activation activation_ = Activation::kGeluErf;
  KernelIsa attention_isa_ = KernelIsa::kScalar;
  std::vector<float> word_, position_, token_type_;
  int64_t type_vocab_size_ = 0;
  std::vector<float> embedding_gamma_, embedding_beta_;
  std::vector<Layer> layers_;
  int64_t max_width_ = 0;  // widest activation (3 * attention width or ffn)
  int64_t primitives_created_ = 0;
  int64_t scratchpad_bytes_ = 0;  // the largest any primitive needs
  std::string implementation_;  // oneDNN's name for the matmul implementation

  std::atomic<int> lone_batch_threads_{0};
  mutable std::atomic<int> running_{0};
  mutable std::mutex pool_mu_;
  mutable std::vector<std::unique_ptr<Workspace>> pool_;  // GUARDED_BY(pool_mu_)
};

}  // namespace nlpflow
