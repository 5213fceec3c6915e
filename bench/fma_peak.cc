// fp32 FMA peak of one core: 12 independent chains of 8-wide AVX2 FMAs (enough
// to cover the FMA latency on two FMA ports), no memory traffic. Prints
// GFLOP/s (one FMA = 2 FLOPs). This is the machine's fp32 limit that
// bench/compare_runtimes.py reports fractions of; shared/FACTS.md's 210 GFLOP/s
// was an AVX-512 loop on a machine that had AVX-512.
//
// Built by compare_runtimes.py: c++ -O2 -mavx2 -mfma bench/fma_peak.cc, and
// where the CPU has AVX-512 also with -mavx512f: then the chains are 16-wide
// (__AVX512F__), and the peak is the larger of the two (Zen 4 runs a 512-bit
// FMA as two 256-bit halves, Intel's AVX-512 cores at full width).
#include <immintrin.h>

#if defined(__AVX512F__)
#define VEC __m512
#define LANES 16
#define FMADD _mm512_fmadd_ps
#define SET1 _mm512_set1_ps
#define STORE _mm512_store_ps
#else
#define VEC __m256
#define LANES 8
#define FMADD _mm256_fmadd_ps
#define SET1 _mm256_set1_ps
#define STORE _mm256_store_ps
#endif

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 200000000L;
  VEC acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = SET1(0.001f * static_cast<float>(i));
  const VEC a = SET1(0.999999f), b = SET1(1e-7f);
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  // Twelve named registers: an array indexed in a loop may be kept in memory.
  VEC c0 = acc[0], c1 = acc[1], c2 = acc[2], c3 = acc[3], c4 = acc[4], c5 = acc[5];
  VEC c6 = acc[6], c7 = acc[7], c8 = acc[8], c9 = acc[9], c10 = acc[10], c11 = acc[11];
  for (long n = 0; n < iterations; ++n) {
    c0 = FMADD(c0, a, b);
    c1 = FMADD(c1, a, b);
    c2 = FMADD(c2, a, b);
    c3 = FMADD(c3, a, b);
    c4 = FMADD(c4, a, b);
    c5 = FMADD(c5, a, b);
    c6 = FMADD(c6, a, b);
    c7 = FMADD(c7, a, b);
    c8 = FMADD(c8, a, b);
    c9 = FMADD(c9, a, b);
    c10 = FMADD(c10, a, b);
    c11 = FMADD(c11, a, b);
  }
  acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3, acc[4] = c4, acc[5] = c5;
  acc[6] = c6, acc[7] = c7, acc[8] = c8, acc[9] = c9, acc[10] = c10, acc[11] = c11;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  float sink = 0;
  for (int i = 0; i < 12; ++i) {
    alignas(64) float v[LANES];
    STORE(v, acc[i]);
    sink += v[0];
  }
  const double flops = 2.0 * LANES * 12 * static_cast<double>(iterations);
  // Wall and per CPU-second: on a shared machine the second is the core's
  // own rate while this process ran on it.
  std::printf("%.1f GFLOP/s wall, %.1f GFLOP per CPU-s (%.3f s, checksum %g)\n",
              flops / seconds / 1e9, flops / cpu_seconds / 1e9, seconds, sink);
  return 0;
}
