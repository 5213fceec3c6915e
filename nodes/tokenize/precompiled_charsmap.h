// PrecompiledCharsmap: SentencePiece's precompiled normalization rules (the
// `precompiled_charsmap` of a Precompiled normalizer, base64 in
// tokenizer.json), read without SentencePiece.
//
// The blob is: a little-endian uint32 N, then N bytes of a Darts-clone
// double-array trie (uint32 units) whose keys are UTF-8 byte strings and
// whose values are offsets into the rest of the blob, a sequence of
// NUL-terminated replacement strings.
//
// Normalize follows Hugging Face `tokenizers` (0.19), which is not what
// SentencePiece itself does: the text is cut into extended grapheme
// clusters; a cluster shorter than 6 bytes whose bytes start with a key is
// replaced whole by the replacement of the shortest such key; otherwise each
// code point is looked up on its own the same way. Alignments are Hugging
// Face's too: a replacement with fewer characters makes the last change so
// far remove the difference (an earlier character's, when the replacement is
// empty), one with more inserts the extra ones.
//
// Threads: immutable after Parse.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "nodes/tokenize/normalized_string.h"

namespace nlpflow {

class PrecompiledCharsmap {
 public:
  // `blob` is the decoded bytes. Errors: a truncated blob, a trie that points
  // outside itself, replacement strings that are not UTF-8.
  static Result<PrecompiledCharsmap> Parse(std::string blob);

  // The replacement of the shortest key that is a prefix of `chunk` (up to
  // its first NUL byte), or nullopt.
  std::optional<std::string_view> Transform(std::string_view chunk) const;

  // Replaces in's graphemes as described above into *out and returns true,
  // or returns false when nothing changes (and *out is not written).
  bool Normalize(const NormalizedString& in, std::vector<CharChange>* scratch,
                 NormalizedString* out) const;

 private:
  std::vector<uint32_t> units_;
  std::string strings_;
  // The replacement of each ASCII byte alone, where ascii_has_ says it has one.
  std::vector<std::string> ascii_repl_;
  bool ascii_has_[128] = {};
};

// Standard base64 (with or without padding). Errors on other characters.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace nlpflow
