// The one place where the config is copied into the nodes' own options.
#pragma once

#include "nodes/batch/batcher.h"
#include "nodes/decode/decoder.h"
#include "nodes/encode/encoder.h"
#include "pipeline/config.h"
#include "pipeline/serve_graph.h"
#include "pipeline/model_stack.h"

namespace nlpflow {

// REQUIRES: config was validated (ParseConfig/LoadConfig).
DecodeOptions DecodeOptionsFrom(const Config& config);
BatcherOptions BatcherOptionsFrom(const Config& config);
EncodeOptions EncodeOptionsFrom(const Config& config, const ModelStack& stack);
ServeGraphOptions GraphOptionsFrom(const Config& config);

}  // namespace nlpflow
