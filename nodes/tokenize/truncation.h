// The truncation budget both tokenizers share (Hugging Face truncates to
// max_length with the post-processor's special tokens counted in it).
#pragma once

#include <cstddef>
#include <limits>

namespace nlpflow {

// How many tokens of the text itself fit in `max_length` next to the
// template's `num_special_tokens`: for Encode the one sequence, for
// EncodePair both together (split with LongestFirstKeep). 0 where the special
// tokens fill max_length; no limit where max_length is 0 (no truncation).
inline size_t TruncationBudget(int max_length, size_t num_special_tokens) {
  if (max_length <= 0) return std::numeric_limits<size_t>::max();
  const size_t max = static_cast<size_t>(max_length);
  return max > num_special_tokens ? max - num_special_tokens : 0;
}

}  // namespace nlpflow
