// fp32 against int8 GEMM throughput on the exact GEMM shapes of
// all-MiniLM-L6-v2 at batch 32 x length 128 (M = 4,096 tokens), 1 thread, as
// LibTorch 1.13 runs them on this machine.
//
//   gemm_shapes_bench [--m 4096] [--reps 15] [--peak 99.3]
//
// Per Linear shape ([M, K] x [K, N]; qkv 1152x384, attention output 384x384,
// intermediate 1536x384, output 384x1536):
//   fp32 blas      at::linear on plain tensors (the process's BLAS: OpenBLAS)
//   fp32 onednn    at::mkldnn_linear, input and weight already oneDNN tensors
//                  (no conversion in the timed call)
//   int8 dynamic   per-channel int8 weights prepacked for the ONEDNN engine,
//                  quantized::linear_dynamic's apply_dynamic (the activation's
//                  range search and quantization included): what precision
//                  int8 runs
//   int8 static    the same weights, a quint8 input quantized ahead of time,
//                  quint8 output (apply): the int8 GEMM alone
// and for the attention's batched products (32 rows x 12 heads):
//   at::matmul on the strided q/k/v views of the packed qkv tensor (what
//   BertEncoder::Attend runs) and at::bmm on contiguous copies.
// Printed: median process CPU ms per call over --reps calls, G(FL)OP per
// CPU-second and its fraction of --peak (bench/fma_peak.cc's fp32 figure).
// CPU time because the machine is shared (2 cores, other jobs).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench/cpu_time.h"

namespace {

double MedianCpu(const std::function<void()>& fn, int reps) {
  fn();  // warm-up
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const double c0 = nlpflow::bench::ProcessCpuSeconds();
    fn();
    t.push_back(nlpflow::bench::ProcessCpuSeconds() - c0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double g_peak = 99.3;

void Print(const char* shape, const char* path, double flops, double seconds, double base) {
  const double rate = flops / seconds / 1e9;
  std::printf("| %s | %s | %.2f | %.1f | %.0f%% | %.2fx |\n", shape, path, 1e3 * seconds, rate,
              100 * rate / g_peak, base / seconds);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t m = 4096;
  int reps = 15;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--m") m = std::stoll(value);
    else if (flag == "--reps") reps = std::stoi(value);
    else if (flag == "--peak") g_peak = std::stod(value);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  at::set_num_threads(1);
  at::globalContext().setQEngine(at::QEngine::ONEDNN);
  at::manual_seed(7);
  at::InferenceMode guard;
  static const auto prepack =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("quantized::linear_prepack", "")
          .typed<c10::intrusive_ptr<LinearPackedParamsBase>(at::Tensor,
                                                             c10::optional<at::Tensor>)>();
  std::printf("M = %lld, 1 thread, median of %d calls; last column: speed-up over fp32 blas\n\n",
              static_cast<long long>(m), reps);
  std::printf("| shape (N x K) | path | CPU ms | G(FL)OP per CPU-s | of fp32 peak | vs fp32 blas |\n"
              "|---|---|---|---|---|---|\n");
  const int64_t shapes[][2] = {{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}};
  for (const auto& nk : shapes) {
    const int64_t n = nk[0], k = nk[1];
    const std::string name = std::to_string(n) + "x" + std::to_string(k);
    const at::Tensor x = at::randn({m, k}), w = at::randn({n, k}) * 0.05, b = at::randn({n});
    const double flops = 2.0 * static_cast<double>(m * n * k);
    const double blas = MedianCpu([&] { (void)at::linear(x, w, b); }, reps);
    Print(name.c_str(), "fp32 blas (at::linear)", flops, blas, blas);
    const at::Tensor xd = x.to_mkldnn(), wd = w.to_mkldnn(), bd = b.to_mkldnn();
    const double dnn = MedianCpu([&] { (void)at::mkldnn_linear(xd, wd, bd); }, reps);
    Print(name.c_str(), "fp32 onednn (mkldnn_linear)", flops, dnn, blas);
    const at::Tensor scales = (std::get<0>(w.abs().max(1)) / 127.0).to(at::kDouble);
    const at::Tensor qw = at::quantize_per_channel(w, scales, at::zeros({n}, at::kLong), 0,
                                                   at::kQInt8);
    const auto packed = prepack.call(qw, b);
    const double dyn = MedianCpu([&] { (void)packed->apply_dynamic(x, false); }, reps);
    Print(name.c_str(), "int8 dynamic (apply_dynamic)", flops, dyn, blas);
    const at::Tensor qx = at::quantize_per_tensor(x, 8.0 / 255, 128, at::kQUInt8);
    const double st = MedianCpu([&] { (void)packed->apply(qx, 0.5, 128); }, reps);
    Print(name.c_str(), "int8 static (apply, quint8 in/out)", flops, st, blas);
  }
  // Attention: rows x heads products of [len, 32] x [32, len] and [len, len] x [len, 32].
  const int64_t rows = m / 128, len = 128, heads = 12, hd = 32;
  const at::Tensor qkv = at::randn({rows * len, 3 * heads * hd});
  const at::Tensor v5 = qkv.view({rows, len, 3, heads, hd});
  const at::Tensor q = v5.select(2, 0).transpose(1, 2), kk = v5.select(2, 1).transpose(1, 2);
  const at::Tensor v = v5.select(2, 2).transpose(1, 2);
  const at::Tensor probs = at::softmax(at::matmul(q, kk.transpose(-1, -2)), -1);
  const double flops = 2.0 * static_cast<double>(rows * heads * len * len * hd);
  const double qk = MedianCpu([&] { (void)at::matmul(q, kk.transpose(-1, -2)); }, reps);
  Print("QK^T 128x128x32 (x384)", "fp32 at::matmul, strided views", flops, qk, qk);
  const at::Tensor qc = q.reshape({rows * heads, len, hd}).contiguous();
  const at::Tensor kt = kk.reshape({rows * heads, len, hd}).transpose(1, 2).contiguous();
  const double qk2 = MedianCpu([&] { (void)at::bmm(qc, kt); }, reps);
  Print("QK^T 128x128x32 (x384)", "fp32 at::bmm, contiguous", flops, qk2, qk);
  const double pv = MedianCpu([&] { (void)at::matmul(probs, v); }, reps);
  Print("PV 128x32x128 (x384)", "fp32 at::matmul, strided views", flops, pv, pv);
  const at::Tensor pc = probs.reshape({rows * heads, len, len});
  const at::Tensor vc = v.reshape({rows * heads, len, hd}).contiguous();
  const double pv2 = MedianCpu([&] { (void)at::bmm(pc, vc); }, reps);
  Print("PV 128x32x128 (x384)", "fp32 at::bmm, contiguous", flops, pv2, pv);
  const at::Tensor scores = at::matmul(q, kk.transpose(-1, -2));
  const double sm = MedianCpu([&] { (void)at::softmax(scores, -1); }, reps);
  std::printf("\nsoftmax over [%lld, 12, 128, 128]: %.2f ms CPU (%.2f ns per element)\n",
              static_cast<long long>(rows), 1e3 * sm, 1e9 * sm / static_cast<double>(scores.numel()));
  const at::Tensor inter = at::randn({m, 1536});
  const double ge = MedianCpu([&] { (void)at::gelu(inter); }, reps);
  std::printf("gelu (erf) over [%lld, 1536]: %.2f ms CPU (%.2f ns per element)\n",
              static_cast<long long>(m), 1e3 * ge, 1e9 * ge / static_cast<double>(inter.numel()));
  return 0;
}
