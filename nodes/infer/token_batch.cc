#include "nodes/infer/token_batch.h"

#include <string>

namespace nlpflow {

Status ValidateTokenBatch(const TokenBatch& b, int64_t max_positions, int64_t vocab_size,
                          int64_t type_vocab_size) {
  if (b.batch < 1 || b.seq_len < 1) {
    return Status::InvalidArgument("token batch: batch and seq_len must be positive, got " +
                                   std::to_string(b.batch) + " x " + std::to_string(b.seq_len));
  }
  const size_t n = static_cast<size_t>(b.batch * b.seq_len);
  if (b.input_ids.size() != n || b.attention_mask.size() != n ||
      !(b.token_type_ids.empty() || b.token_type_ids.size() == n)) {
    return Status::InvalidArgument(
        "token batch: " + std::to_string(b.batch) + " x " + std::to_string(b.seq_len) +
        " needs " + std::to_string(n) + " values; got input_ids " +
        std::to_string(b.input_ids.size()) + ", attention_mask " +
        std::to_string(b.attention_mask.size()) + ", token_type_ids " +
        std::to_string(b.token_type_ids.size()) + " (may be empty)");
  }
  for (int64_t r = 0; r < b.batch; ++r) {
    const int64_t* mask = &b.attention_mask[r * b.seq_len];
    const int64_t* ids = &b.input_ids[r * b.seq_len];
    const int64_t* types = b.token_type_ids.empty() ? nullptr : &b.token_type_ids[r * b.seq_len];
    const std::string row = "token batch row " + std::to_string(r) + ": ";
    if (mask[0] != 1) return Status::InvalidArgument(row + "has no real token (mask[0] != 1)");
    int64_t len = 0;
    while (len < b.seq_len && mask[len] == 1) ++len;
    for (int64_t t = len; t < b.seq_len; ++t) {
      if (mask[t] != 0) {
        return Status::InvalidArgument(
            row + "attention_mask must be 1s then 0s (right padding); found " +
            std::to_string(mask[t]) + " at position " + std::to_string(t));
      }
    }
    if (len > max_positions) {
      return Status::InvalidArgument(row + std::to_string(len) +
                                     " tokens exceed the model's max_positions " +
                                     std::to_string(max_positions));
    }
    for (int64_t t = 0; t < len; ++t) {
      if (ids[t] < 0 || ids[t] >= vocab_size) {
        return Status::InvalidArgument(row + "input id " + std::to_string(ids[t]) +
                                       " at position " + std::to_string(t) +
                                       " is outside the vocabulary [0, " +
                                       std::to_string(vocab_size) + ")");
      }
      if (types != nullptr && (types[t] < 0 || types[t] >= type_vocab_size)) {
        return Status::InvalidArgument(row + "token type " + std::to_string(types[t]) +
                                       " at position " + std::to_string(t) +
                                       " is outside [0, " + std::to_string(type_vocab_size) +
                                       ")");
      }
    }
  }
  return Status::Ok();
}

}  // namespace nlpflow
