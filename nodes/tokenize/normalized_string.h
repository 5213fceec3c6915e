// NormalizedString: text being normalized, with the byte range of the
// original text that each of its bytes came from, as Hugging Face
// `tokenizers` keeps it (its NormalizedString alignments). Offsets of tokens
// are read back through it: a token at normalized bytes [s, e) covers
// original bytes [align[s].first, align[e - 1].second).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nlpflow {

using ByteRange = std::pair<int32_t, int32_t>;

struct NormalizedString {
  std::string text;
  std::vector<ByteRange> align;  // one per byte of text
  // Where this string starts in the original text (Hugging Face's
  // original_shift): what Metaspace's prepend_scheme "first" looks at.
  int32_t original_start = 0;

  // original[begin, end) as it is. An invalid UTF-8 byte becomes U+FFFD
  // (three bytes aligned to that one byte), so that text is valid UTF-8.
  void Reset(std::string_view original, int32_t begin, int32_t end);
  void Clear() {
    text.clear();
    align.clear();
  }
  // The original range of normalized bytes [begin, end); begin < end.
  ByteRange OriginalRange(size_t begin, size_t end) const {
    return {align[begin].first, align[end - 1].second};
  }
  // Appends one code point with the given alignment.
  void Append(char32_t c, ByteRange range);
  // Appends bytes [begin, end) of `from`, with their alignments.
  void AppendSlice(const NormalizedString& from, size_t begin, size_t end) {
    text.append(from.text, begin, end - begin);
    align.insert(align.end(), from.align.begin() + begin, from.align.begin() + end);
  }
};

// One output character of a transformation and how it relates to the input
// (Hugging Face's (char, isize) pairs): 0 replaces the next input character,
// +1 is inserted (it takes the alignment of the input byte before the
// current position), -n replaces the next input character and removes the
// n after it.
struct CharChange {
  char32_t c;
  int32_t change;
};

// Hugging Face's NormalizedString::transform over the whole string: builds
// *out from `in` and the changes, with the alignments Hugging Face computes.
// Never reads out of bounds, whatever the changes.
void ApplyChanges(const NormalizedString& in, const std::vector<CharChange>& changes,
                  NormalizedString* out);

// Decodes the UTF-8 code point at s[i] (valid UTF-8 required, as text is);
// returns its length.
inline int DecodeUtf8(std::string_view s, size_t i, char32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  auto cont = [&](size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[k]) & 0x3F); };
  if (b0 < 0xE0) {
    *cp = (static_cast<char32_t>(b0 & 0x1F) << 6) | cont(i + 1);
    return 2;
  }
  if (b0 < 0xF0) {
    *cp = (static_cast<char32_t>(b0 & 0x0F) << 12) | (cont(i + 1) << 6) | cont(i + 2);
    return 3;
  }
  *cp = (static_cast<char32_t>(b0 & 0x07) << 18) | (cont(i + 1) << 12) | (cont(i + 2) << 6) |
        cont(i + 3);
  return 4;
}

inline int Utf8Length(char32_t c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }

inline void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

}  // namespace nlpflow
