// Throughput of EmbeddingModel::Embed on synthetic batches (no padding).
//
//   embedding_model_bench [--model DIR] [--threads N] [--linear auto|onednn|blas|int8|both|LIST]
//                         [--shapes 1x16,8x64,...] [--min-seconds S]
//                         [--lone-batch-threads N]
//
// Prints, per linear backend and batch x seq shape: wall and process CPU ms
// per batch, sentences/s, tokens/s and GFLOP/s of the encoder (FLOPs per token
// from shared/FACTS.md: L * [2 (4 d^2 + 2 d d_ff) + 4 s d]). On a shared,
// busy machine the CPU time is the steadier number: with 1 thread, sentences/s
// per CPU-second is what the model would do with a core to itself. A first sketch; the
// real benchmark, with baselines, is a later issue.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench/random_batch.h"
#include "nodes/infer/embedding_model.h"

namespace {

struct Shape {
  int64_t batch, seq;
};

std::vector<Shape> ParseShapes(const std::string& s) {
  std::vector<Shape> shapes;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    const std::string item = s.substr(pos, comma - pos);
    const size_t x = item.find('x');
    if (x == std::string::npos) {
      std::fprintf(stderr, "bad shape '%s' (want BATCHxSEQ)\n", item.c_str());
      std::exit(2);
    }
    shapes.push_back({std::stoll(item.substr(0, x)), std::stoll(item.substr(x + 1))});
    pos = comma + 1;
  }
  return shapes;
}


}  // namespace

int main(int argc, char** argv) {
  std::string model_dir = "models/all-MiniLM-L6-v2";
  int threads = 1;
  std::string linear = "auto";
  std::string shapes_arg = "1x16,1x64,1x128,8x16,8x64,8x128,32x16,32x64,32x128";
  double min_seconds = 1.0;
  int lone_batch_threads = 0;  // ModelOptions::lone_batch_threads
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--model") model_dir = value;
    else if (flag == "--threads") threads = std::stoi(value);
    else if (flag == "--linear") linear = value;
    else if (flag == "--shapes") shapes_arg = value;
    else if (flag == "--min-seconds") min_seconds = std::stod(value);
    else if (flag == "--lone-batch-threads") lone_batch_threads = std::stoi(value);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  // A comma-separated list of auto, onednn, blas, int8 (precision int8);
  // "both" is onednn,blas.
  if (linear == "both") linear = "onednn,blas";
  std::vector<std::string> backends;
  for (size_t pos = 0; pos <= linear.size();) {
    const size_t comma = std::min(linear.find(',', pos), linear.size());
    backends.push_back(linear.substr(pos, comma - pos));
    pos = comma + 1;
  }

  std::printf("%-7s %6s %5s %9s %9s %12s %10s %8s %12s\n", "linear", "batch", "seq",
              "wall_ms", "cpu_ms", "sentences/s", "tokens/s", "GFLOP/s", "sent/cpu-s");
  for (const std::string& backend : backends) {
    const bool int8 = backend == "int8";
    auto model = nlpflow::EmbeddingModel::Load({.path = model_dir,
                                                .intra_op_threads = threads,
                                                .lone_batch_threads = lone_batch_threads,
                                                .linear = int8 ? "auto" : backend,
                                                .precision = int8 ? "int8" : "fp32"});
    if (!model.ok()) {
      std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
      return 1;
    }
    std::mt19937 rng(7);
    for (const Shape& shape : ParseShapes(shapes_arg)) {
      const nlpflow::TokenBatch batch = nlpflow::bench::RandomTokenBatch(shape.batch, shape.seq, rng);
      if (auto warm = (*model)->Embed(batch); !warm.ok()) {
        std::fprintf(stderr, "%s\n", warm.status().ToString().c_str());
        return 1;
      }
      int iterations = 0;
      const std::clock_t cpu_start = std::clock();
      const auto start = std::chrono::steady_clock::now();
      double elapsed = 0;
      while (iterations < 3 || elapsed < min_seconds) {
        (void)(*model)->Embed(batch);
        ++iterations;
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
      const double per_batch = elapsed / iterations;
      const double cpu_per_batch =
          static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC / iterations;
      const double tokens = static_cast<double>(shape.batch * shape.seq);
      // all-MiniLM-L6-v2: L=6, d=384, d_ff=1536.
      const double flop_per_token = 6 * (2 * (4.0 * 384 * 384 + 2.0 * 384 * 1536) +
                                         4.0 * static_cast<double>(shape.seq) * 384);
      std::printf("%-7s %6lld %5lld %9.2f %9.2f %12.1f %10.0f %8.1f %12.1f\n",
                  (*model)->linear().c_str(), static_cast<long long>(shape.batch),
                  static_cast<long long>(shape.seq), per_batch * 1e3, cpu_per_batch * 1e3,
                  static_cast<double>(shape.batch) / per_batch, tokens / per_batch,
                  tokens * flop_per_token / per_batch / 1e9,
                  static_cast<double>(shape.batch) / cpu_per_batch);
      std::fflush(stdout);
    }
  }
  return 0;
}
