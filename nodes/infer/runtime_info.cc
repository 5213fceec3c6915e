#include "nodes/infer/runtime_info.h"

#include <dnnl.h>
#include <torch/version.h>

#include <string>

namespace nlpflow {
namespace {

const char* IsaName(dnnl_cpu_isa_t isa) {
  switch (isa) {
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
    default: return "unknown";
  }
}

std::string CpuFeatures() {
  std::string out;
  auto add = [&out](bool has, const char* name) {
    if (!has) return;
    if (!out.empty()) out += ' ';
    out += name;
  };
  __builtin_cpu_init();
  add(__builtin_cpu_supports("sse4.2"), "sse4.2");
  add(__builtin_cpu_supports("avx"), "avx");
  add(__builtin_cpu_supports("avx2"), "avx2");
  add(__builtin_cpu_supports("fma"), "fma");
  add(__builtin_cpu_supports("avx512f"), "avx512f");
  add(__builtin_cpu_supports("avx512bw"), "avx512bw");
  add(__builtin_cpu_supports("avx512vl"), "avx512vl");
  add(__builtin_cpu_supports("avx512vnni"), "avx512vnni");
  add(__builtin_cpu_supports("avx512bf16"), "avx512bf16");
  add(__builtin_cpu_supports("avx512vbmi"), "avx512vbmi");
  return out.empty() ? "none" : out;
}

}  // namespace

InferRuntimeInfo GetInferRuntimeInfo() {
  InferRuntimeInfo info;
  info.libtorch = TORCH_VERSION;
  const dnnl_version_t* v = dnnl_version();
  info.onednn = std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                std::to_string(v->patch);
  info.onednn_isa = IsaName(dnnl_get_effective_cpu_isa());
  info.cpu_features = CpuFeatures();
  return info;
}

}  // namespace nlpflow
