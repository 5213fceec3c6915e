// The byte-level pieces of GPT-2 style tokenizers: the byte-to-unicode
// alphabet that spells bytes as printable characters in vocab files, and the
// GPT-2 split pattern as a hand-written matcher.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nlpflow::byte_level {

// The code point that spells byte b in a byte-level vocabulary: printable
// Latin-1 bytes (33-126, 161-172, 174-255) stand for themselves, the other 68
// bytes map to U+0100 onwards in byte order (space is U+0120 "Ġ").
char32_t ByteToCodePoint(uint8_t b);

// Undoes the spelling: "Ġthe" -> " the". False when a character is not in
// the alphabet (or the text is not UTF-8).
bool Decode(std::string_view spelled, std::string* raw);

// The end of the match of the GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// that starts at byte `begin` of text[0, end) (begin < end), as Oniguruma
// would find it (first alternative that matches, greedy). \s is Unicode
// White_Space, \p{L} and \p{N} the general categories L* and N*. An invalid
// UTF-8 byte counts as one character of none of these classes.
size_t MatchGpt2(std::string_view text, size_t begin, size_t end);

}  // namespace nlpflow::byte_level
