// What this binary is: its version and commit, how it was built, the
// libraries it runs on and the CPU features it uses. Printed by
// `nlpflow --version`, published as nlpflow_build_info{...} 1 on /metrics.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/metrics.h"

namespace nlpflow {

struct BuildInfo {
  std::string version;     // the CMake project version, e.g. "0.1.0"
  std::string git_commit;  // 12 hex digits, "-dirty" with local changes; "unknown"
  std::string build_type;  // CMAKE_BUILD_TYPE, e.g. "Release"
  std::string libtorch;
  std::string onednn;
  std::string onednn_isa;  // the instruction set oneDNN's kernels use here
  std::string librdkafka;
  std::string tbb;
  std::string cpu_features;  // space-separated
};

// Cheap and thread-safe; reads the loaded libraries and the CPU.
BuildInfo GetBuildInfo();

// The labels of nlpflow_build_info, in this order: version, commit,
// build_type, libtorch, onednn, onednn_isa, librdkafka, tbb, cpu_features.
Labels BuildInfoLabels(const BuildInfo& info);

// `nlpflow --version`: "nlpflow 0.1.0" on the first line, then one
// "name: value" line per field.
std::string VersionText(const BuildInfo& info);

// Adds the gauge nlpflow_build_info{BuildInfoLabels} = 1 to `registry`.
void RegisterBuildInfo(MetricsRegistry* registry);

}  // namespace nlpflow
