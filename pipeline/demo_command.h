#pragma once

#include <string>

#include "pipeline/config.h"

namespace nlpflow {

// `nlpflow demo`: starts the serve graph (on the embedded broker when the
// config says so), produces the sample texts to its input topic one every
// 20 ms (a light load, so the latencies shown are per-record, not queueing),
// reads the results back from the output topic, and prints a few results,
// the most similar pairs among the samples by cosine similarity, and the
// produce-to-result latency (p50/p99). Returns the exit code.
int RunDemo(const Config& config, const std::string& samples_path);

}  // namespace nlpflow
