// `nlpflow embed`: the embedding graph with a line source and an ordered line
// sink. One text per input line (or one JSON object per line with
// input.format: json); one JSON result per output line, in input order. A
// line that cannot be processed yields its dead letter (JSON, with "stage"
// and "reason") on its output line, so line N of the output is always input
// line N's.
#pragma once

#include <functional>
#include <istream>
#include <ostream>

#include "common/status.h"
#include "pipeline/config.h"
#include "pipeline/model_stack.h"

namespace nlpflow {

struct EmbedStats {
  int64_t records = 0;
  int64_t dead_letters = 0;
};

// Called on the reading thread after each input line with the lines and
// bytes read so far (for a progress bar).
using EmbedProgressFn = std::function<void(int64_t lines, int64_t bytes)>;

// Runs the graph over `in` until end of input; writes to `out`.
// The model stack must have been loaded from the same config.
Result<EmbedStats> EmbedStream(const Config& config, const ModelStack& stack,
                               std::istream& in, std::ostream& out,
                               const EmbedProgressFn& progress = {});

}  // namespace nlpflow
