#include "nodes/tokenize/precompiled_charsmap.h"

#include <utf8proc.h>

#include <cstring>

namespace nlpflow {
namespace {

// Darts-clone unit fields.
inline bool HasLeaf(uint32_t unit) { return (unit >> 8) & 1; }
inline uint32_t Value(uint32_t unit) { return unit & ((1u << 31) - 1); }
inline uint32_t Label(uint32_t unit) { return unit & ((1u << 31) | 0xFF); }
inline uint32_t Offset(uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }

bool ValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    utf8proc_int32_t cp;
    const utf8proc_ssize_t n = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) return false;
    i += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Result<std::string> Base64Decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) return Status::InvalidArgument("not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

Result<PrecompiledCharsmap> PrecompiledCharsmap::Parse(std::string blob) {
  if (blob.size() < 4) return Status::InvalidArgument("precompiled_charsmap: shorter than 4 bytes");
  uint32_t trie_bytes = 0;
  for (int k = 3; k >= 0; --k) trie_bytes = trie_bytes << 8 | static_cast<unsigned char>(blob[k]);
  if (trie_bytes % 4 != 0 || trie_bytes == 0 || trie_bytes > blob.size() - 4) {
    return Status::InvalidArgument("precompiled_charsmap: trie size " + std::to_string(trie_bytes) +
                                   " does not fit the " + std::to_string(blob.size()) +
                                   "-byte blob");
  }
  PrecompiledCharsmap m;
  m.units_.resize(trie_bytes / 4);
  for (size_t i = 0; i < m.units_.size(); ++i) {
    uint32_t u = 0;
    for (int k = 3; k >= 0; --k) u = u << 8 | static_cast<unsigned char>(blob[4 + 4 * i + k]);
    m.units_[i] = u;
  }
  m.strings_ = blob.substr(4 + trie_bytes);
  if (!ValidUtf8(m.strings_)) {
    return Status::InvalidArgument("precompiled_charsmap: replacement strings are not UTF-8");
  }
  m.ascii_repl_.resize(128);
  for (int b = 0; b < 128; ++b) {
    const char c = static_cast<char>(b);
    if (b == 0) continue;
    if (auto r = m.Transform(std::string_view(&c, 1))) {
      m.ascii_has_[b] = true;
      m.ascii_repl_[b] = std::string(*r);
    }
  }
  return m;
}

std::optional<std::string_view> PrecompiledCharsmap::Transform(std::string_view chunk) const {
  const size_t n = units_.size();
  size_t pos = Offset(units_[0]);
  for (char ch : chunk) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == 0) break;
    pos ^= c;
    if (pos >= n) return std::nullopt;
    const uint32_t unit = units_[pos];
    if (Label(unit) != c) return std::nullopt;
    pos ^= Offset(unit);
    if (pos >= n) return std::nullopt;
    if (HasLeaf(unit)) {
      const size_t index = Value(units_[pos]);
      if (index > strings_.size()) return std::nullopt;
      const size_t end = strings_.find('\0', index);
      return std::string_view(strings_).substr(
          index, (end == std::string::npos ? strings_.size() : end) - index);
    }
  }
  return std::nullopt;
}

bool PrecompiledCharsmap::Normalize(const NormalizedString& in, std::vector<CharChange>* changes,
                                    NormalizedString* out) const {
  const std::string_view s = in.text;
  changes->clear();
  bool modified = false;
  // Emits `norm` for `old_chars` input characters with Hugging Face's
  // change values: each new character replaces one; when there are more
  // new ones, the extra ones at the end are inserted; when fewer, the last
  // change so far (possibly of an earlier character, when norm is empty)
  // removes the difference.
  auto emit = [&](std::string_view norm, int32_t old_chars) {
    modified = true;
    int32_t new_chars = 0;
    for (size_t i = 0; i < norm.size(); ++new_chars) {
      char32_t cp;
      i += static_cast<size_t>(DecodeUtf8(norm, i, &cp));
      changes->push_back({cp, 0});
    }
    const int32_t diff = new_chars - old_chars;
    if (diff > 0) {
      for (int32_t k = 0; k < diff; ++k) (*changes)[changes->size() - 1 - k].change = 1;
    } else if (diff < 0 && !changes->empty()) {
      changes->back().change += diff;
    }
  };
  size_t i = 0;
  utf8proc_int32_t state = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    // ASCII followed by ASCII is a grapheme of its own, except CR LF.
    if (b < 0x80 && (i + 1 == s.size() || (static_cast<unsigned char>(s[i + 1]) < 0x80 &&
                                           !(b == '\r' && s[i + 1] == '\n')))) {
      if (b != 0 && ascii_has_[b]) {
        emit(ascii_repl_[b], 1);
      } else {
        changes->push_back({b, 0});
      }
      ++i;
      continue;
    }
    // One extended grapheme cluster [i, end).
    char32_t cp;
    size_t end = i + static_cast<size_t>(DecodeUtf8(s, i, &cp));
    int32_t chars = 1;
    state = 0;
    char32_t prev = cp;
    while (end < s.size()) {
      char32_t next;
      const int len = DecodeUtf8(s, end, &next);
      if (utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev),
                                           static_cast<utf8proc_int32_t>(next), &state)) {
        break;
      }
      prev = next;
      end += static_cast<size_t>(len);
      ++chars;
    }
    const std::string_view grapheme = s.substr(i, end - i);
    if (grapheme.size() < 6) {
      if (auto norm = Transform(grapheme)) {
        emit(*norm, chars);
        i = end;
        continue;
      }
    }
    for (size_t k = i; k < end;) {
      char32_t c;
      const int len = DecodeUtf8(s, k, &c);
      if (auto norm = Transform(s.substr(k, static_cast<size_t>(len)))) {
        emit(*norm, 1);
      } else {
        changes->push_back({c, 0});
      }
      k += static_cast<size_t>(len);
    }
    i = end;
  }
  if (!modified) return false;
  ApplyChanges(in, *changes, out);
  return true;
}

}  // namespace nlpflow
