#include "nodes/tokenize/normalized_string.h"

#include <utf8proc.h>

namespace nlpflow {

void NormalizedString::Reset(std::string_view original, int32_t begin, int32_t end) {
  Clear();
  original_start = begin;
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(original.data());
  int32_t i = begin;
  while (i < end) {
    const auto b = static_cast<unsigned char>(original[i]);
    if (b < 0x80) {
      text.push_back(static_cast<char>(b));
      align.emplace_back(i, i + 1);
      ++i;
      continue;
    }
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(bytes + i, end - i, &cp);
    if (n <= 0 || cp < 0) {
      Append(0xFFFD, {i, i + 1});
      ++i;
      continue;
    }
    text.append(original.data() + i, static_cast<size_t>(n));
    align.insert(align.end(), static_cast<size_t>(n), ByteRange(i, i + static_cast<int32_t>(n)));
    i += static_cast<int32_t>(n);
  }
}

void NormalizedString::Append(char32_t c, ByteRange range) {
  const size_t before = text.size();
  AppendUtf8(c, &text);
  align.insert(align.end(), text.size() - before, range);
}

void ApplyChanges(const NormalizedString& in, const std::vector<CharChange>& changes,
                  NormalizedString* out) {
  out->Clear();
  out->original_start = in.original_start;
  const size_t size = in.text.size();
  size_t offset = 0;  // bytes of `in` consumed
  auto skip_char = [&]() {
    if (offset >= size) return;
    char32_t cp;
    offset += static_cast<size_t>(DecodeUtf8(in.text, offset, &cp));
  };
  const ByteRange start(in.original_start, in.original_start);
  for (const CharChange& ch : changes) {
    ByteRange range;
    if (ch.change > 0) {
      // Inserted: shares the alignment of the byte before.
      range = offset < 1 ? start : in.align[std::min(offset, size) - 1];
    } else {
      range = offset < size ? in.align[offset] : (size > 0 ? in.align[size - 1] : start);
      skip_char();
      for (int32_t k = 0; k < -ch.change; ++k) skip_char();
    }
    out->Append(ch.c, range);
  }
}

}  // namespace nlpflow
