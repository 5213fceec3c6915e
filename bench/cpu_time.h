// Process CPU time for the benchmarks (model_only_bench, gemm_shapes_bench):
// on this shared machine CPU time is the steadier measure.
#pragma once

#include <ctime>

namespace nlpflow::bench {

// CPU time of the whole process (every thread), in seconds.
inline double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace nlpflow::bench
