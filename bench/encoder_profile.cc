// Where the time of EmbeddingModel::Embed goes, per ATen op kind.
//
//   encoder_profile [--model DIR] [--variants blas,onednn,int8] [--shape 32x128]
//                   [--iterations N] [--peak GFLOPS] [--markdown]
//
// For each variant (fp32 with the blas or onednn Linear backend, or precision
// int8) it loads the model with 1 intra-op thread, times N unprofiled calls
// (the baseline), then N calls with a LibTorch RecordFunction observer that
// times every top-level op (an op called by nlpflow's code, not one called
// inside another op) by wall clock and by the calling thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID). Ops are grouped by name and, for the GEMMs
// (aten::linear, aten::mkldnn_linear, aten::matmul), by input shapes. User scopes recorded by the
// encoder (RECORD_USER_SCOPE, e.g. "nlpflow::int8_linear" around the int8
// GEMM, which is not a dispatched op) are groups too. Printed per group: calls
// per batch, median ms per batch (CPU and wall; medians over the N batches),
// share of the median total CPU time, and for GEMMs the FLOPs and GFLOP per
// CPU-second as a fraction of --peak (bench/fma_peak.cc, default 99.3).
//
// Why CPU time: the machine has 2 cores shared with other jobs; with one
// thread, the thread's CPU time is the time the op actually had a core.
// Cache interference from the neighbours still shows, so compare ratios from
// one run. Minor page faults per batch are printed too: a large fresh
// buffer costs one per 4 KiB page on first touch. "untracked" is the CPU time of Embed outside any recorded op
// (validation, packing, the observer's own cost).
#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/random_batch.h"
#include "nodes/infer/embedding_model.h"

namespace {

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Minor page faults of the calling thread so far: first touches of memory
// that the allocator got fresh from the kernel.
double MinorFaults() {
  rusage u;
  getrusage(RUSAGE_THREAD, &u);
  return static_cast<double>(u.ru_minflt);
}

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string ShapeString(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(t.size(i));
  }
  s += ']';
  return s;
}

// FLOPs of a GEMM op from its inputs (2 per multiply-add); 0 for other ops.
double GemmFlops(const std::string& name, const std::vector<at::Tensor>& in) {
  if ((name == "aten::linear" || name == "aten::mkldnn_linear") && in.size() >= 2) {
    // x [..., K], weight [N, K]
    return 2.0 * static_cast<double>(in[0].numel()) * static_cast<double>(in[1].size(0));
  }
  if (name == "nlpflow::int8_linear" && in.size() >= 2) {
    // x [..., K], bias [N]
    return 2.0 * static_cast<double>(in[0].numel()) * static_cast<double>(in[1].size(0));
  }
  if ((name == "aten::matmul" || name == "aten::bmm") && in.size() >= 2 && in[0].dim() >= 2) {
    // [..., M, K] x [..., K, N]
    return 2.0 * static_cast<double>(in[0].numel()) * static_cast<double>(in[1].size(-1));
  }
  return 0;
}

// One group's totals within the current batch.
struct Sample {
  int calls = 0;
  double cpu = 0, wall = 0, flops = 0;
};

struct Profile {
  std::map<std::string, Sample> batch;  // the batch being run
  std::map<std::string, std::vector<Sample>> per_batch;
  std::vector<double> total_cpu, total_wall;
  int depth = 0;  // nesting of recorded ops on the profiled thread
  bool active = false;
};

Profile g_profile;  // only the main thread runs Embed in this program

struct OpContext : at::ObserverContext {
  bool top = false;
  std::string key;
  double flops = 0;
  double cpu0 = 0, wall0 = 0;
};

std::unique_ptr<at::ObserverContext> OnStart(const at::RecordFunction& fn) {
  auto ctx = std::make_unique<OpContext>();
  if (!g_profile.active) return ctx;
  ctx->top = g_profile.depth++ == 0;
  if (!ctx->top) return ctx;
  const std::string name = fn.name();
  ctx->key = name;
  if (name == "aten::linear" || name == "aten::mkldnn_linear" || name == "aten::matmul" ||
      name == "aten::bmm" ||
      name == "nlpflow::int8_linear") {
    std::vector<at::Tensor> tensors;
    for (const c10::IValue& v : fn.inputs()) {
      if (v.isTensor()) tensors.push_back(v.toTensor());
    }
    for (size_t i = 0; i < tensors.size() && i < 2; ++i) {
      ctx->key += ' ';
      ctx->key += ShapeString(tensors[i]);
    }
    ctx->flops = GemmFlops(name, tensors);
  }
  ctx->wall0 = WallSeconds();
  ctx->cpu0 = ThreadCpuSeconds();
  return ctx;
}

void OnEnd(const at::RecordFunction&, at::ObserverContext* base) {
  auto* ctx = static_cast<OpContext*>(base);
  if (!g_profile.active) return;
  --g_profile.depth;
  if (!ctx->top) return;
  const double cpu = ThreadCpuSeconds() - ctx->cpu0, wall = WallSeconds() - ctx->wall0;
  Sample& s = g_profile.batch[ctx->key];
  ++s.calls;
  s.cpu += cpu;
  s.wall += wall;
  s.flops += ctx->flops;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos <= s.size();) {
    const size_t comma = std::min(s.find(',', pos), s.size());
    out.push_back(s.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir = "models/all-MiniLM-L6-v2", variants = "blas,onednn,int8";
  std::string shape = "32x128";
  int iterations = 7;
  double peak = 99.3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--model") model_dir = value;
    else if (flag == "--variants") variants = value;
    else if (flag == "--shape") shape = value;
    else if (flag == "--iterations") iterations = std::stoi(value);
    else if (flag == "--peak") peak = std::stod(value);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  const size_t x = shape.find('x');
  const int64_t batch = std::stoll(shape.substr(0, x)), seq = std::stoll(shape.substr(x + 1));
  std::mt19937 rng(7);
  const nlpflow::TokenBatch tokens = nlpflow::bench::RandomTokenBatch(batch, seq, rng);
  at::addGlobalCallback(at::RecordFunctionCallback(OnStart, OnEnd)
                            .needsInputs(true)
                            .scopes({at::RecordScope::FUNCTION, at::RecordScope::USER_SCOPE}));

  // All variants are loaded first and run in turn within each iteration, so
  // that every variant sees the same neighbours; unprofiled and profiled
  // batches alternate too, and the ratio of their medians is the observer's
  // overhead.
  struct Variant {
    std::string name;
    std::unique_ptr<nlpflow::EmbeddingModel> model;
    std::vector<double> plain_cpu, plain_wall, plain_faults;
    Profile profile;
  };
  std::vector<Variant> loaded;
  for (const std::string& variant : Split(variants)) {
    const bool int8 = variant == "int8";
    auto model = nlpflow::EmbeddingModel::Load({.path = model_dir,
                                                .intra_op_threads = 1,
                                                .linear = int8 ? "auto" : variant,
                                                .precision = int8 ? "int8" : "fp32"});
    if (!model.ok()) {
      std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
      return 1;
    }
    loaded.push_back({variant, std::move(*model), {}, {}, {}, {}});
  }
  auto run = [&](const nlpflow::EmbeddingModel& model) {
    if (auto r = model.Embed(tokens); !r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      std::exit(1);
    }
  };
  for (Variant& v : loaded) run(*v.model);  // warm-up
  for (int it = 0; it < iterations; ++it) {
    for (Variant& v : loaded) {
      double c0 = ThreadCpuSeconds(), w0 = WallSeconds(), f0 = MinorFaults();
      run(*v.model);
      v.plain_cpu.push_back(ThreadCpuSeconds() - c0);
      v.plain_wall.push_back(WallSeconds() - w0);
      v.plain_faults.push_back(MinorFaults() - f0);

      g_profile = std::move(v.profile);
      g_profile.batch.clear();
      g_profile.active = true;
      c0 = ThreadCpuSeconds(), w0 = WallSeconds();
      run(*v.model);
      const double cpu = ThreadCpuSeconds() - c0, wall = WallSeconds() - w0;
      g_profile.active = false;
      g_profile.total_cpu.push_back(cpu);
      g_profile.total_wall.push_back(wall);
      double tracked_cpu = 0, tracked_wall = 0;
      for (const auto& [key, s] : g_profile.batch) {
        tracked_cpu += s.cpu;
        tracked_wall += s.wall;
      }
      g_profile.batch["untracked"] = {1, cpu - tracked_cpu, wall - tracked_wall, 0};
      for (const auto& [key, s] : g_profile.batch) g_profile.per_batch[key].push_back(s);
      v.profile = std::move(g_profile);
    }
  }

  for (Variant& v : loaded) {
    const std::string& variant = v.name;
    const std::vector<double>& plain_cpu = v.plain_cpu;
    const std::vector<double>& plain_wall = v.plain_wall;
    g_profile = std::move(v.profile);
    const double total_cpu = Median(g_profile.total_cpu);
    const double flop_per_token = 6 * (2 * (4.0 * 384 * 384 + 2.0 * 384 * 1536) +
                                       4.0 * static_cast<double>(seq) * 384);
    const double model_flops = flop_per_token * static_cast<double>(batch * seq);
    std::printf("\n## %s, %lldx%lld, 1 thread, %d batches\n\n", variant.c_str(),
                static_cast<long long>(batch), static_cast<long long>(seq), iterations);
    std::printf(
        "Per batch, median: unprofiled %.1f ms CPU (%.1f wall), profiled %.1f ms CPU (%.1f "
        "wall), observer overhead %.1f%%; model %.2f GFLOP = %.1f GFLOP per CPU-s "
        "unprofiled = %.0f%% of %.1f; %.0f minor page faults per unprofiled batch.\n\n",
        1e3 * Median(plain_cpu), 1e3 * Median(plain_wall), 1e3 * total_cpu,
        1e3 * Median(g_profile.total_wall), 100 * (total_cpu / Median(plain_cpu) - 1),
        model_flops / 1e9, model_flops / Median(plain_cpu) / 1e9,
        100 * model_flops / Median(plain_cpu) / 1e9 / peak, peak, Median(v.plain_faults));
    std::printf(
        "| op | calls | CPU ms | wall ms | share of CPU | GFLOP | GFLOP per CPU-s | of peak |\n"
        "|---|---|---|---|---|---|---|---|\n");
    struct Row {
      std::string key;
      Sample s;
    };
    std::vector<Row> rows;
    for (const auto& [key, samples] : g_profile.per_batch) {
      std::vector<double> cpu, wall;
      for (const Sample& s : samples) cpu.push_back(s.cpu), wall.push_back(s.wall);
      // A group missing from some batches counts 0 there.
      cpu.resize(iterations, 0.0), wall.resize(iterations, 0.0);
      rows.push_back({key, {samples[0].calls, Median(cpu), Median(wall), samples[0].flops}});
    }
    std::sort(rows.begin(), rows.end(),
              [](const Row& a, const Row& b) { return a.s.cpu > b.s.cpu; });
    for (const Row& r : rows) {
      std::printf("| %s | %d | %.1f | %.1f | %.1f%% |", r.key.c_str(), r.s.calls, 1e3 * r.s.cpu,
                  1e3 * r.s.wall, 100 * r.s.cpu / total_cpu);
      if (r.s.flops > 0) {
        const double rate = r.s.flops / r.s.cpu / 1e9;
        std::printf(" %.2f | %.1f | %.0f%% |\n", r.s.flops / 1e9, rate, 100 * rate / peak);
      } else {
        std::printf(" | | |\n");
      }
    }
    std::fflush(stdout);
  }
  return 0;
}
