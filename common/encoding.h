// Encoding: what a tokenizer makes of a text (nodes/tokenize/tokenizer.h), and
// what a record carries from tokenize to encode (common/record.h).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace nlpflow {

struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;  // 0 for the first sequence, 1 for the second
  // Byte offsets [begin, end) of each token in the text it came from (for
  // EncodePair, tokens of b point into b). (0, 0) for template special
  // tokens. See each implementation for tokens smaller than a character.
  std::vector<std::pair<int32_t, int32_t>> offsets;
};

}  // namespace nlpflow
