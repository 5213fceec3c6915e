// Character classes and mappings as Hugging Face tokenizers' BERT normalizer
// and pre-tokenizer see them (tokenizers 0.19.1).
//
// Built on utf8proc. Where HF's frozen, older Unicode tables disagree with
// utf8proc's (characters assigned or recategorized after about Unicode 9), a
// generated table (hf_unicode_compat_table.inc, from gen_hf_unicode_compat.py)
// gives HF's answer, because exact id parity is the point. All functions are
// pure and thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace nlpflow::hf_unicode {

// The only classes the BERT pipeline asks about. They are disjoint.
enum class HfCharClass : uint8_t {
  kNone = 0,
  kOther,           // Cc, Cf, Co, Cs: removed by clean_text
  kPunctuation,     // P*: split off by the pre-tokenizer
  kNonspacingMark,  // Mn: dropped by strip_accents after NFD
};

HfCharClass ClassOf(char32_t cp);

// clean_text drops these: NUL, U+FFFD and class kOther, except \t \n \r
// (which count as whitespace).
bool IsDroppedByCleanText(char32_t cp);

// Rust's char::is_whitespace (Unicode White_Space): \t \n \v \f \r, space,
// U+0085 and the Zs, Zl, Zp categories.
bool IsWhitespace(char32_t cp);

// BERT punctuation: ASCII 33-47, 58-64, 91-96, 123-126, or class kPunctuation.
bool IsPunctuation(char32_t cp);

// The CJK ideograph ranges of HF's BertNormalizer (which differ from Google
// BERT's in one range: HF starts the Extension E/F range at U+2B920).
bool IsChineseChar(char32_t cp);

// Canonical decomposition (NFD of a single code point) into out[0..3].
// Returns the number of code points written (1 when cp does not decompose).
int DecomposeCanonical(char32_t cp, char32_t out[4]);

// The canonical combining class HF's NFD orders marks by (0 = starter).
uint8_t CombiningClass(char32_t cp);

// Rust's char::to_lowercase, into out[0..1]; returns the count. Equals
// utf8proc's simple lowercase except U+0130 (İ), which becomes "i" U+0307.
int ToLowercase(char32_t cp, char32_t out[2]);

// The Unicode version of the linked utf8proc, and the one the compat table
// was generated against. A mismatch means: regenerate the table.
std::string_view LinkedUnicodeVersion();
std::string_view CompatTableUnicodeVersion();

}  // namespace nlpflow::hf_unicode
