// fp32 FMA peak of one core: 12 independent chains of 8-wide AVX2 FMAs (enough
// to cover the FMA latency on two FMA ports), no memory traffic. Prints
// GFLOP/s (one FMA = 2 FLOPs). This is the machine's fp32 limit that
// bench/compare_runtimes.py reports fractions of; shared/FACTS.md's 210 GFLOP/s
// was an AVX-512 loop on a machine that had AVX-512.
//
// Built by compare_runtimes.py: c++ -O2 -mavx2 -mfma bench/fma_peak.cc
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 200000000L;
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  // Twelve named registers: an array indexed in a loop may be kept in memory.
  __m256 c0 = acc[0], c1 = acc[1], c2 = acc[2], c3 = acc[3], c4 = acc[4], c5 = acc[5];
  __m256 c6 = acc[6], c7 = acc[7], c8 = acc[8], c9 = acc[9], c10 = acc[10], c11 = acc[11];
  for (long n = 0; n < iterations; ++n) {
    c0 = _mm256_fmadd_ps(c0, a, b);
    c1 = _mm256_fmadd_ps(c1, a, b);
    c2 = _mm256_fmadd_ps(c2, a, b);
    c3 = _mm256_fmadd_ps(c3, a, b);
    c4 = _mm256_fmadd_ps(c4, a, b);
    c5 = _mm256_fmadd_ps(c5, a, b);
    c6 = _mm256_fmadd_ps(c6, a, b);
    c7 = _mm256_fmadd_ps(c7, a, b);
    c8 = _mm256_fmadd_ps(c8, a, b);
    c9 = _mm256_fmadd_ps(c9, a, b);
    c10 = _mm256_fmadd_ps(c10, a, b);
    c11 = _mm256_fmadd_ps(c11, a, b);
  }
  acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3, acc[4] = c4, acc[5] = c5;
  acc[6] = c6, acc[7] = c7, acc[8] = c8, acc[9] = c9, acc[10] = c10, acc[11] = c11;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  float sink = 0;
  for (int i = 0; i < 12; ++i) {
    alignas(32) float v[8];
    _mm256_store_ps(v, acc[i]);
    sink += v[0];
  }
  const double flops = 2.0 * 8 * 12 * static_cast<double>(iterations);
  // Wall and per CPU-second: on a shared machine the second is the core's
  // own rate while this process ran on it.
  std::printf("%.1f GFLOP/s wall, %.1f GFLOP per CPU-s (%.3f s, checksum %g)\n",
              flops / seconds / 1e9, flops / cpu_seconds / 1e9, seconds, sink);
  return 0;
}
