// Normalizer: the normalizers of a tokenizer.json that SentencePiece-style
// tokenizers use, applied in order (Hugging Face's Sequence) to a
// NormalizedString with Hugging Face's alignments:
//   Precompiled  SentencePiece's charsmap (precompiled_charsmap.h);
//   NFKC         utf8proc's NFKC (see below for offsets);
//   Lowercase    Rust's char::to_lowercase;
//   Strip        Unicode whitespace off the left and/or right;
//   Replace      a string, or a regex of one character or \s with an
//                optional quantifier (+, {n}, {n,}, {n,m}), by a string.
//
// NFKC: utf8proc's decompositions and composition with Hugging Face's
// (older) combining classes and decomposition exclusions (hf_unicode.h), so
// ids match Hugging Face's unicode-normalization tables; characters given a
// compatibility decomposition only in newer Unicode versions would still
// differ. Alignments follow Hugging Face's order-of-consumption rule (see
// PairRun in normalizer.cc): checked on the parity examples, not proven for
// every composition.
//
// Threads: immutable after construction.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodes/tokenize/normalized_string.h"
#include "nodes/tokenize/precompiled_charsmap.h"

namespace nlpflow {

struct NormalizerStep {
  enum class Kind { kPrecompiled, kNfkc, kLowercase, kStrip, kReplace };
  Kind kind = Kind::kNfkc;
  bool strip_left = true;   // kStrip
  bool strip_right = true;  // kStrip
  // kReplace: the pattern is the character class `pattern_char` (or any
  // whitespace when pattern_whitespace), repeated min_repeat..max_repeat
  // times (a string pattern of several characters: `literal`).
  std::string literal;
  char32_t pattern_char = 0;
  bool pattern_whitespace = false;
  int min_repeat = 1;
  int max_repeat = 1;  // -1: no limit
  std::string content;
  std::shared_ptr<const PrecompiledCharsmap> charsmap;  // kPrecompiled
};

// Parses a Replace regex ("\s+", " {2,}") into step's pattern fields;
// InvalidArgument naming the pattern for anything else.
Status ParseReplaceRegex(const std::string& regex, NormalizerStep* step);

class Normalizer {
 public:
  explicit Normalizer(std::vector<NormalizerStep> steps) : steps_(std::move(steps)) {}
  bool empty() const { return steps_.empty(); }
  // Normalizes *s in place; `tmp` and `changes` are scratch buffers.
  void Normalize(NormalizedString* s, NormalizedString* tmp, std::vector<CharChange>* changes) const;

 private:
  std::vector<NormalizerStep> steps_;
};

}  // namespace nlpflow
