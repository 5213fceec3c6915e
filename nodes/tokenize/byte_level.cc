// Why a hand-written matcher rather than a regex engine: the pattern is
// fixed, its alternatives only look at one character class at a time, and
// matching it directly on UTF-8 with utf8proc's categories costs no
// allocation and no engine state. The classes must be exactly Oniguruma's
// (which Hugging Face uses): see ClassOf.
#include "nodes/tokenize/byte_level.h"

#include <utf8proc.h>

#include "nodes/tokenize/hf_unicode.h"

namespace nlpflow::byte_level {
namespace {

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

struct Char {
  CharClass cls;
  uint8_t len;  // bytes
};

CharClass ClassOfCodePoint(char32_t cp) {
  if (hf_unicode::IsWhitespace(cp)) return CharClass::kSpace;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return CharClass::kLetter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return CharClass::kNumber;
    default:
      return CharClass::kOther;
  }
}

struct AsciiTable {
  CharClass cls[128];
  AsciiTable() {
    for (int c = 0; c < 128; ++c) cls[c] = ClassOfCodePoint(static_cast<char32_t>(c));
  }
};
const AsciiTable kAscii;

// The character at text[i] (i < end).
inline Char At(std::string_view text, size_t i, size_t end) {
  const auto b = static_cast<uint8_t>(text[i]);
  if (b < 0x80) return {kAscii.cls[b], 1};
  utf8proc_int32_t cp = 0;
  const utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i),
                                              static_cast<utf8proc_ssize_t>(end - i), &cp);
  if (n <= 0) return {CharClass::kOther, 1};
  return {ClassOfCodePoint(static_cast<char32_t>(cp)), static_cast<uint8_t>(n)};
}

// The end of the run of characters of class cls (kOther also stops at
// letters, numbers and spaces, which are its complement) from i.
inline size_t RunOf(std::string_view text, size_t i, size_t end, CharClass cls) {
  while (i < end) {
    const Char c = At(text, i, end);
    if (c.cls != cls) break;
    i += c.len;
  }
  return i;
}

}  // namespace

char32_t ByteToCodePoint(uint8_t b) {
  if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
  // The n-th byte outside those ranges, in byte order, maps to 256 + n.
  int n = 0;
  for (int x = 0; x < b; ++x) {
    if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174)) ++n;
  }
  return 256 + n;
}

bool Decode(std::string_view spelled, std::string* raw) {
  static const auto kInverse = [] {
    struct Inverse {
      int16_t byte_of[324];
    } inv;
    for (auto& v : inv.byte_of) v = -1;
    for (int b = 0; b < 256; ++b) inv.byte_of[ByteToCodePoint(static_cast<uint8_t>(b))] = b;
    return inv;
  }();
  raw->clear();
  size_t i = 0;
  while (i < spelled.size()) {
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t n =
        utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(spelled.data() + i),
                         static_cast<utf8proc_ssize_t>(spelled.size() - i), &cp);
    if (n <= 0 || cp < 0 || cp >= 324 || kInverse.byte_of[cp] < 0) return false;
    raw->push_back(static_cast<char>(kInverse.byte_of[cp]));
    i += static_cast<size_t>(n);
  }
  return true;
}

size_t MatchGpt2(std::string_view text, size_t begin, size_t end) {
  const char c0 = text[begin];
  // 's 't 're 've 'm 'll 'd (ASCII, case-sensitive).
  if (c0 == '\'' && begin + 1 < end) {
    const char c1 = text[begin + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return begin + 2;
    if (begin + 2 < end) {
      const char c2 = text[begin + 2];
      if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
        return begin + 3;
      }
    }
  }
  const Char first = At(text, begin, end);
  // " ?X+" for X = letters, numbers, others: an optional U+0020 first.
  size_t start = begin;
  CharClass cls = first.cls;
  if (c0 == ' ' && begin + 1 < end) {
    const Char next = At(text, begin + 1, end);
    if (next.cls != CharClass::kSpace) {
      start = begin + 1;
      cls = next.cls;
    }
  }
  if (cls != CharClass::kSpace) return RunOf(text, start, end, cls);
  // \s+(?!\S): the whitespace run, less its last character when a
  // non-space follows; \s+ when that leaves nothing.
  size_t last = begin;  // start of the run's last character
  size_t i = begin;
  while (i < end) {
    const Char c = At(text, i, end);
    if (c.cls != CharClass::kSpace) break;
    last = i;
    i += c.len;
  }
  if (i == end || last == begin) return i;
  return last;
}

}  // namespace nlpflow::byte_level
