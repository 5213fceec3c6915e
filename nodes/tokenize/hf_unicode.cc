#include "nodes/tokenize/hf_unicode.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <iterator>

namespace nlpflow::hf_unicode {
namespace {

struct CompatRange {
  char32_t first;
  char32_t last;
  HfCharClass hf_class;
};

struct CompatCombiningClass {
  char32_t cp;
  uint8_t combining_class;
};

#include "nodes/tokenize/hf_unicode_compat_table.inc"

static_assert(std::is_sorted(std::begin(kCompatCombiningClasses),
                             std::end(kCompatCombiningClasses),
                             [](const CompatCombiningClass& a, const CompatCombiningClass& b) {
                               return a.cp < b.cp;
                             }),
              "kCompatCombiningClasses must be sorted");

constexpr bool RangesSorted() {
  for (size_t i = 0; i < std::size(kCompatRanges); ++i) {
    if (kCompatRanges[i].first > kCompatRanges[i].last) return false;
    if (i > 0 && kCompatRanges[i - 1].last >= kCompatRanges[i].first) return false;
  }
  return true;
}
static_assert(RangesSorted(), "hf_unicode_compat_table.inc must be sorted");

// One bit per block of 256 code points: does any compat range touch it? Most
// text never leaves unmarked blocks, so the binary search is rarely needed.
constexpr size_t kNumBlocks = 0x110000 >> 8;
using BlockBits = std::array<uint64_t, kNumBlocks / 64>;
constexpr BlockBits MakeBlockBits() {
  BlockBits bits{};
  for (const CompatRange& r : kCompatRanges) {
    for (char32_t b = r.first >> 8; b <= (r.last >> 8); ++b) {
      bits[b / 64] |= uint64_t{1} << (b % 64);
    }
  }
  return bits;
}
constexpr BlockBits kCompatBlocks = MakeBlockBits();

const CompatRange* FindCompat(char32_t cp) {
  const char32_t block = cp >> 8;
  if (block >= kNumBlocks || !(kCompatBlocks[block / 64] >> (block % 64) & 1)) return nullptr;
  const auto* end = std::end(kCompatRanges);
  const auto* it = std::upper_bound(std::begin(kCompatRanges), end, cp,
                                    [](char32_t c, const CompatRange& r) { return c < r.first; });
  if (it == std::begin(kCompatRanges)) return nullptr;
  --it;
  return cp <= it->last ? it : nullptr;
}

utf8proc_category_t Category(char32_t cp) {
  return static_cast<utf8proc_category_t>(utf8proc_category(static_cast<utf8proc_int32_t>(cp)));
}

}  // namespace

HfCharClass ClassOf(char32_t cp) {
  if (const CompatRange* r = FindCompat(cp)) return r->hf_class;
  switch (Category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CS:
      return HfCharClass::kOther;
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return HfCharClass::kPunctuation;
    case UTF8PROC_CATEGORY_MN:
      return HfCharClass::kNonspacingMark;
    default:
      return HfCharClass::kNone;
  }
}

bool IsDroppedByCleanText(char32_t cp) {
  if (cp == 0 || cp == 0xFFFD) return true;
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  return ClassOf(cp) == HfCharClass::kOther;
}

bool IsWhitespace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
  if (cp == 0x85) return true;
  const utf8proc_category_t cat = Category(cp);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
         cat == UTF8PROC_CATEGORY_ZP;
}

bool IsPunctuation(char32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
      (cp >= 123 && cp <= 126)) {
    return true;
  }
  return ClassOf(cp) == HfCharClass::kPunctuation;
}

bool IsChineseChar(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

int DecomposeCanonical(char32_t cp, char32_t out[4]) {
  out[0] = cp;
  if (cp < 0xC0) return 1;  // nothing below U+00C0 decomposes canonically
  if (std::find(std::begin(kNoDecomposition), std::end(kNoDecomposition), cp) !=
      std::end(kNoDecomposition)) {
    return 1;
  }
  utf8proc_int32_t buf[4];
  int boundclass = 0;
  // The longest canonical decomposition is 4 code points (checked by
  // gen_hf_unicode_compat.py's sweep); anything else keeps cp as it is.
  const utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), buf, 4,
                                                     UTF8PROC_DECOMPOSE, &boundclass);
  if (n < 1 || n > 4) return 1;
  for (utf8proc_ssize_t i = 0; i < n; ++i) out[i] = static_cast<char32_t>(buf[i]);
  return static_cast<int>(n);
}

uint8_t CombiningClass(char32_t cp) {
  if (cp < 0x300) return 0;
  const auto ccc = static_cast<uint8_t>(
      utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class);
  if (ccc == 0) return 0;  // the table only lowers classes to 0 (checked by the generator)
  const auto* end = std::end(kCompatCombiningClasses);
  const auto* it = std::lower_bound(
      std::begin(kCompatCombiningClasses), end, cp,
      [](const CompatCombiningClass& e, char32_t c) { return e.cp < c; });
  return it != end && it->cp == cp ? it->combining_class : ccc;
}

int ToLowercase(char32_t cp, char32_t out[2]) {
  if (cp < 0x80) {
    out[0] = (cp >= 'A' && cp <= 'Z') ? cp + ('a' - 'A') : cp;
    return 1;
  }
  if (cp == 0x130) {  // the one unconditional multi-character lowercase mapping
    out[0] = 'i';
    out[1] = 0x307;
    return 2;
  }
  out[0] = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
  return 1;
}

std::string_view LinkedUnicodeVersion() { return utf8proc_unicode_version(); }
std::string_view CompatTableUnicodeVersion() { return kCompatUnicodeVersion; }

}  // namespace nlpflow::hf_unicode
