// The real tokens of a right-padded batch, row after row.
#pragma once

#include <cstdint>
#include <vector>

namespace nlpflow {

// The padding is dropped before the encoder, which computes nothing on it.
// The dense layers (almost all of the FLOPs) run on all tokens at once;
// attention runs per row over its own tokens, which needs no mask.
struct PackedTokens {
  int64_t rows = 0;
  std::vector<int64_t> lengths;  // per row, each >= 1
  // Per real token, in row order:
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;
  std::vector<int64_t> positions;  // position id (BERT: the index inside its row)
  int64_t tokens() const { return static_cast<int64_t>(ids.size()); }
};

}  // namespace nlpflow
