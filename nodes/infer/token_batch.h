// TokenBatch: the padded batch of token ids every model runtime takes (the
// infer step builds it from a Batch of records, nodes/infer/batch_runner.h),
// and the one check of it that every runtime applies.
//
// This header deliberately includes no LibTorch header.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace nlpflow {

// A padded batch, row-major [batch, seq_len]. Rows are right-padded:
// attention_mask is 1 for the real tokens, then 0 for padding; every row has
// at least one real token. Values at padded positions are ignored.
struct TokenBatch {
  int64_t batch = 0;
  int64_t seq_len = 0;
  std::vector<int64_t> input_ids;
  std::vector<int64_t> attention_mask;
  // May be empty: then all 0 (single-segment input, the sentence-embedding case).
  std::vector<int64_t> token_type_ids;
};

// OK, or INVALID_ARGUMENT naming the row and position of the first problem:
// sizes, mask not right-padded, a row without real tokens, a row longer than
// max_positions, an id outside [0, vocab_size), a type outside [0,
// type_vocab_size). Every model runtime validates its batches with this.
Status ValidateTokenBatch(const TokenBatch& batch, int64_t max_positions, int64_t vocab_size,
                          int64_t type_vocab_size);

}  // namespace nlpflow
