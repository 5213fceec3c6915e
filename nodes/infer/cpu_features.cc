#include "nodes/infer/cpu_features.h"

#include <cpuid.h>
#include <dnnl.h>

#include <cstring>

namespace nlpflow {
namespace {

struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs CpuId(unsigned leaf, unsigned sub) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

bool Bit(unsigned reg, int bit) { return (reg >> bit) & 1u; }

// XCR0: which register states the OS saves on a context switch. Without the
// OS's support an instruction set that cpuid reports still faults.
unsigned long long Xcr0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

CpuFeatures Detect() {
  CpuFeatures f;
  const Regs v = CpuId(0, 0);
  const unsigned max_leaf = v.a;
  char vendor[13] = {};
  std::memcpy(vendor + 0, &v.b, 4);
  std::memcpy(vendor + 4, &v.d, 4);
  std::memcpy(vendor + 8, &v.c, 4);
  f.vendor = vendor;
  const Regs l1 = CpuId(1, 0);
  const unsigned base_family = (l1.a >> 8) & 0xf, base_model = (l1.a >> 4) & 0xf;
  f.family = static_cast<int>(base_family == 0xf ? base_family + ((l1.a >> 20) & 0xff)
                                                 : base_family);
  f.model = static_cast<int>((base_family == 0x6 || base_family == 0xf)
                                 ? base_model + (((l1.a >> 16) & 0xf) << 4)
                                 : base_model);
  if (CpuId(0x80000000u, 0).a >= 0x80000004u) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      const Regs r = CpuId(0x80000002u + i, 0);
      std::memcpy(brand + 16 * i + 0, &r.a, 4);
      std::memcpy(brand + 16 * i + 4, &r.b, 4);
      std::memcpy(brand + 16 * i + 8, &r.c, 4);
      std::memcpy(brand + 16 * i + 12, &r.d, 4);
    }
    f.brand = brand;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
    while (!f.brand.empty() && f.brand.front() == ' ') f.brand.erase(0, 1);
  }
  const bool osxsave = Bit(l1.c, 27);
  const unsigned long long xcr0 = osxsave ? Xcr0() : 0;
  const bool ymm = (xcr0 & 0x6) == 0x6;             // SSE and AVX state
  const bool zmm = ymm && (xcr0 & 0xe0) == 0xe0;    // opmask, ZMM_Hi256, Hi16_ZMM
  const bool tiles = (xcr0 & 0x60000) == 0x60000;   // XTILECFG, XTILEDATA
  f.fma = ymm && Bit(l1.c, 12);
  if (max_leaf >= 7) {
    const Regs l7 = CpuId(7, 0);
    f.avx2 = ymm && Bit(l7.b, 5);
    f.avx512f = zmm && Bit(l7.b, 16);
    f.avx512dq = zmm && Bit(l7.b, 17);
    f.avx512bw = zmm && Bit(l7.b, 30);
    f.avx512vl = zmm && Bit(l7.b, 31);
    f.avx512_vnni = zmm && Bit(l7.c, 11);
    f.avx512_fp16 = zmm && Bit(l7.d, 23);
    f.amx_bf16 = tiles && Bit(l7.d, 22);
    f.amx_tile = tiles && Bit(l7.d, 24);
    f.amx_int8 = tiles && Bit(l7.d, 25);
    if (l7.a >= 1) {
      const Regs l71 = CpuId(7, 1);
      f.avx_vnni = ymm && Bit(l71.a, 4);
      f.avx512_bf16 = zmm && Bit(l71.a, 5);
    }
  }
  return f;
}

}  // namespace

std::string CpuFeatures::Describe() const {
  std::string s = (brand.empty() ? vendor : brand) + " (family " + std::to_string(family) +
                  " model " + std::to_string(model) + "):";
  const std::pair<const char*, bool> flags[] = {
      {"avx2", avx2},         {"fma", fma},           {"avx512f", avx512f},
      {"avx512bw", avx512bw}, {"avx512vl", avx512vl}, {"avx512dq", avx512dq},
      {"avx512_vnni", avx512_vnni}, {"avx_vnni", avx_vnni}, {"avx512_bf16", avx512_bf16},
      {"avx512_fp16", avx512_fp16}, {"amx_tile", amx_tile}, {"amx_int8", amx_int8},
      {"amx_bf16", amx_bf16}};
  for (const auto& [name, on] : flags) {
    if (on) s += std::string(" ") + name;
  }
  return s;
}

const CpuFeatures& GetCpuFeatures() {
  static const CpuFeatures features = Detect();
  return features;
}

std::string OnednnEffectiveIsa() {
  // oneDNN 2.6's dnnl_cpu_isa_t values are bit sets; the names are oneDNN's.
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_all: return "all (no limit set; the best the CPU has)";
    default: return "unknown (" + std::to_string(static_cast<int>(dnnl_get_effective_cpu_isa())) + ")";
  }
}

KernelIsa BestKernelIsa() {
  const CpuFeatures& f = GetCpuFeatures();
  if (f.has_avx512_kernels()) return KernelIsa::kAvx512;
  if (f.has_avx2_kernels()) return KernelIsa::kAvx2;
  return KernelIsa::kScalar;
}

const char* KernelIsaName(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kAvx512: return "avx512";
    case KernelIsa::kAvx2: return "avx2";
    case KernelIsa::kScalar: return "scalar";
  }
  return "?";
}

bool CpuSupports(KernelIsa isa) {
  const CpuFeatures& f = GetCpuFeatures();
  switch (isa) {
    case KernelIsa::kAvx512: return f.has_avx512_kernels();
    case KernelIsa::kAvx2: return f.has_avx2_kernels();
    case KernelIsa::kScalar: return true;
  }
  return false;
}

}  // namespace nlpflow
