// Int8 multiply-accumulate rate of one core with AVX2 (this CPU has no VNNI)
// through the usual AVX2 int8 sequence: u8 x s8 pairs to saturating s16
// (vpmaddubsw), s16 pairs to s32 (vpmaddwd with ones), s32 add (vpaddd): 3
// instructions per 32 multiply-adds, 12 independent chains, B operands from
// L1 as a kernel's packed B. Prints GOP/s (one multiply-add = 2 ops), to set
// beside bench/fma_peak.cc's fp32 GFLOP/s. It is the rate of this sequence,
// not a proven hardware limit: a kernel that schedules better can beat it
// (bench/results/runtime_profile.md has one oneDNN shape that did). AVX-512
// VNNI's vpdpbusd does the 32 multiply-adds (64 at 512 bits) in one instruction.
//
//   c++ -O2 -mavx2 -mfma bench/int8_peak.cc -o int8_peak && ./int8_peak [iterations]
#include <immintrin.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

int main(int argc, char** argv) {
  const long iterations = argc > 1 ? std::atol(argv[1]) : 200000000L;
  // Twelve different B vectors (in memory, as a kernel's packed B is) and one
  // A vector that the compiler must treat as new each iteration, so that no
  // product can be hoisted out of the loop or shared between chains.
  __m256i a = _mm256_set1_epi8(3);
  alignas(32) static __m256i bs[12];
  for (int i = 0; i < 12; ++i) bs[i] = _mm256_set1_epi8(static_cast<char>(i - 6));
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  __m256i c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  const std::clock_t cpu_start = std::clock();
#define STEP(c, i) c = _mm256_add_epi32(c, _mm256_madd_epi16(_mm256_maddubs_epi16(a, bs[i]), ones))
  for (long n = 0; n < iterations; ++n) {
    __asm__ volatile("" : "+x"(a));
    STEP(c0, 0); STEP(c1, 1); STEP(c2, 2); STEP(c3, 3); STEP(c4, 4); STEP(c5, 5);
    STEP(c6, 6); STEP(c7, 7); STEP(c8, 8); STEP(c9, 9); STEP(c10, 10); STEP(c11, 11);
  }
#undef STEP
  const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  alignas(32) int v[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)), _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7)), _mm256_add_epi32(_mm256_add_epi32(c8, c9), _mm256_add_epi32(c10, c11)))));
  const double ops = 2.0 * 32 * 12 * static_cast<double>(iterations);
  std::printf("%.1f GOP per CPU-s (int8, %.3f s CPU, checksum %d)\n", ops / cpu_seconds / 1e9,
              cpu_seconds, v[0]);
  return 0;
}
