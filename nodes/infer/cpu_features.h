// The CPU's instruction sets, detected once (cpuid and the OS's saved-state
// mask), and the kernel choices made from them.
//
// Machines of this project differ (AVX2-only AMD EPYC, Zen 4 with AVX-512,
// Intel Xeon with AVX-512 VNNI and AMX), so kernels are chosen at run time,
// never at compile time: the binary is built for x86-64 and every
// AVX2/AVX-512 kernel is compiled with a target attribute.
#pragma once

#include <string>

namespace nlpflow {

struct CpuFeatures {
  bool avx2 = false, fma = false;
  // AVX-512 counts only when the OS saves the zmm and mask registers (XCR0).
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_vnni = false, avx_vnni = false, avx512_bf16 = false, avx512_fp16 = false;
  // AMX counts only when the OS saves the tile state (XCR0 bits 17, 18).
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  int family = 0, model = 0;
  std::string vendor;  // "GenuineIntel", "AuthenticAMD", ...
  std::string brand;   // "Intel(R) Xeon(R) Processor"

  // The kernels of nodes/infer with 512-bit registers (F, BW, VL, DQ all there).
  bool has_avx512_kernels() const { return avx512f && avx512bw && avx512vl && avx512dq; }
  bool has_avx2_kernels() const { return avx2 && fma; }
  // Integer multiply-adds of u8 x s8 straight into int32 (vpdpbusd), so 8-bit
  // activations cannot saturate an int16 pair sum as AVX2's vpmaddubsw can.
  bool has_vnni() const { return avx512_vnni || avx_vnni || amx_int8; }

  // "Intel(R) Xeon(R) Processor (family 6 model 167): avx2 fma avx512f ... amx_int8".
  std::string Describe() const;
};

// The CPU this process runs on; detected at the first call, thread-safe.
const CpuFeatures& GetCpuFeatures();

// The instruction set oneDNN dispatches its own kernels to, as oneDNN names
// it (dnnl_get_effective_cpu_isa): "avx512_core_amx", "avx2", ...
std::string OnednnEffectiveIsa();

// The vector width the hand-written kernels (attention_kernel.h,
// layer_norm_kernel.h) use on this CPU.
enum class KernelIsa { kScalar, kAvx2, kAvx512 };
KernelIsa BestKernelIsa();
const char* KernelIsaName(KernelIsa isa);
// Whether `isa`'s kernels can run on this CPU.
bool CpuSupports(KernelIsa isa);

}  // namespace nlpflow
