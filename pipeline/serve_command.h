#pragma once

#include "pipeline/config.h"

namespace nlpflow {

// `nlpflow run`: starts the serve graph and runs it until SIGINT or SIGTERM,
// then stops cleanly (see ServeApp). Returns the process exit code: 0 after a
// clean stop, 1 if start-up failed (one line on stderr) or the pipeline met a
// fatal error.
int RunServe(const Config& config);

}  // namespace nlpflow
