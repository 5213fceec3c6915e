// The AVX-512 instance of the fused attention kernel (attention_kernel_impl.h).
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma
// (nodes/infer/CMakeLists.txt); called only where the CPU has them.
// GCC 12 reports its own _mm512_reduce_* (built on _mm256_undefined_ps) as
// reading uninitialized values; they do not.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "nodes/infer/attention_kernel_impl.h"

namespace nlpflow::attention_internal {
namespace {

struct Avx512 {
  using T = __m512;
  static constexpr int kWidth = 16;
  static __mmask16 Mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static T Zero() { return _mm512_setzero_ps(); }
  static T Set1(float x) { return _mm512_set1_ps(x); }
  static T Load(const float* p) { return _mm512_load_ps(p); }
  static T LoadU(const float* p) { return _mm512_loadu_ps(p); }
  static T LoadPartial(const float* p, int64_t n) { return _mm512_maskz_loadu_ps(Mask(n), p); }
  static T LoadPartialFill(const float* p, int64_t n, float fill) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), Mask(n), p);
  }
  static void Store(float* p, T x) { _mm512_store_ps(p, x); }
  static void StorePartial(float* p, T x, int64_t n) { _mm512_mask_storeu_ps(p, Mask(n), x); }
  static T Fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T Mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T Add(T a, T b) { return _mm512_add_ps(a, b); }
  static T Sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T Max(T a, T b) { return _mm512_max_ps(a, b); }
  static float HMax(T x) { return _mm512_reduce_max_ps(x); }
  static float HSum(T x) { return _mm512_reduce_add_ps(x); }
  // e^x for x <= 0 (softmax after the max is subtracted): Cephes' expf
  // polynomial on x - n ln 2, times 2^n by scalef. About 1 ulp.
  static T Exp(T x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    const T n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), x);
    T y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, n);
  }
};

}  // namespace

void AttendHeadAvx512(const HeadArgs& a, float* scratch) { AttendHead<Avx512>(a, scratch); }

}  // namespace nlpflow::attention_internal
