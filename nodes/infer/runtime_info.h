// What the model runtime runs on: library versions and the CPU's instruction
// sets, for `nlpflow --version` and the nlpflow_build_info metric.
// No LibTorch in this header.
#pragma once

#include <string>

namespace nlpflow {

struct InferRuntimeInfo {
  // LibTorch as its headers name it, e.g. "1.13.0".
  std::string libtorch;
  // oneDNN as the loaded library reports it, e.g. "2.6.3".
  std::string onednn;
  // The instruction set oneDNN's kernels use on this CPU (its effective ISA),
  // e.g. "avx512_core_vnni".
  std::string onednn_isa;
  // The vector extensions this CPU has, of those the kernels care about,
  // space-separated: "sse4.2 avx avx2 fma avx512f ... avx512vnni".
  std::string cpu_features;
};

// Cheap (no model is loaded); thread-safe.
InferRuntimeInfo GetInferRuntimeInfo();

}  // namespace nlpflow
