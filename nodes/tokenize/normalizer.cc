#include "nodes/tokenize/normalizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

#include "nodes/tokenize/hf_unicode.h"

namespace nlpflow {
namespace {

using Kind = NormalizerStep::Kind;

// Returns false when *s is left as it is (no character changes), true when
// the result is in *out. Same-length lowercasing happens in place.
bool Lowercase(NormalizedString* s, std::vector<CharChange>* changes, NormalizedString* out) {
  std::string& t = s->text;
  size_t i = 0;
  for (; i < t.size(); ++i) {
    const auto b = static_cast<unsigned char>(t[i]);
    if (b >= 0x80) break;
    if (b >= 'A' && b <= 'Z') t[i] = static_cast<char>(b + 32);
  }
  if (i == t.size()) return false;
  // Non-ASCII: same-length mappings in place, anything else the general way.
  bool general = false;
  for (size_t k = i; k < t.size() && !general;) {
    char32_t cp;
    const int n = DecodeUtf8(t, k, &cp);
    char32_t lower[2] = {cp, 0};
    const int m = hf_unicode::ToLowercase(cp, lower);
    if (m != 1 || Utf8Length(lower[0]) != n) {
      general = true;
      break;
    }
    if (lower[0] != cp) {
      std::string enc;
      AppendUtf8(lower[0], &enc);
      t.replace(k, static_cast<size_t>(n), enc);
    }
    k += static_cast<size_t>(n);
  }
  if (!general) return false;
  changes->clear();
  for (size_t k = 0; k < t.size();) {
    char32_t cp;
    k += static_cast<size_t>(DecodeUtf8(t, k, &cp));
    char32_t lower[2] = {cp, 0};
    const int n = hf_unicode::ToLowercase(cp, lower);
    for (int j = 0; j < n; ++j) changes->push_back({lower[j], j > 0 ? 1 : 0});
  }
  ApplyChanges(*s, *changes, out);
  return true;
}

void Strip(NormalizedString* s, bool left, bool right) {
  const std::string& t = s->text;
  size_t begin = 0, end = t.size();
  if (left) {
    while (begin < end) {
      char32_t cp;
      const int n = DecodeUtf8(t, begin, &cp);
      if (!hf_unicode::IsWhitespace(cp)) break;
      begin += static_cast<size_t>(n);
    }
  }
  if (right) {
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && (static_cast<unsigned char>(t[start]) & 0xC0) == 0x80) --start;
      char32_t cp;
      DecodeUtf8(t, start, &cp);
      if (!hf_unicode::IsWhitespace(cp)) break;
      end = start;
    }
  }
  s->text.erase(end);
  s->align.erase(s->align.begin() + static_cast<std::ptrdiff_t>(end), s->align.end());
  s->text.erase(0, begin);
  s->align.erase(s->align.begin(), s->align.begin() + static_cast<std::ptrdiff_t>(begin));
}

// NFKC of s as Hugging Face computes it: utf8proc's compatibility
// decomposition of each code point (none where Hugging Face's older tables
// have no canonical one), canonical reordering by Hugging Face's combining
// classes (hf_unicode.h: marks assigned after its tables are starters
// there), then utf8proc's composition.
bool Nfkc(std::string_view s, std::string* out) {
  thread_local std::vector<utf8proc_int32_t> buf;
  buf.clear();
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    i += static_cast<size_t>(DecodeUtf8(s, i, &cp));
    char32_t canonical[4];
    const int num_canonical = hf_unicode::DecomposeCanonical(cp, canonical);
    utf8proc_int32_t parts[32];
    int boundclass = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(
        static_cast<utf8proc_int32_t>(cp), parts, 32,
        static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT), &boundclass);
    if (n <= 0 || n > 32) return false;
    if (num_canonical == 1 && canonical[0] == cp) {
      // No canonical decomposition for Hugging Face: utf8proc's must then
      // be a compatibility one (or none) to be used.
      utf8proc_int32_t canon_parts[8];
      const utf8proc_ssize_t c = utf8proc_decompose_char(
          static_cast<utf8proc_int32_t>(cp), canon_parts, 8, UTF8PROC_DECOMPOSE, &boundclass);
      if (c != 1 || canon_parts[0] != static_cast<utf8proc_int32_t>(cp)) {
        parts[0] = static_cast<utf8proc_int32_t>(cp);
        n = 1;
      }
    }
    buf.insert(buf.end(), parts, parts + n);
  }
  // Canonical ordering: a stable sort of each run of non-starters.
  for (size_t i = 0; i < buf.size();) {
    if (hf_unicode::CombiningClass(static_cast<char32_t>(buf[i])) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < buf.size() && hf_unicode::CombiningClass(static_cast<char32_t>(buf[j])) != 0) ++j;
    std::stable_sort(buf.begin() + static_cast<std::ptrdiff_t>(i),
                     buf.begin() + static_cast<std::ptrdiff_t>(j),
                     [](utf8proc_int32_t x, utf8proc_int32_t y) {
                       return hf_unicode::CombiningClass(static_cast<char32_t>(x)) <
                              hf_unicode::CombiningClass(static_cast<char32_t>(y));
                     });
    i = j;
  }
  const utf8proc_ssize_t n = utf8proc_normalize_utf32(
      buf.data(), static_cast<utf8proc_ssize_t>(buf.size()),
      static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
  if (n < 0) return false;
  out->clear();
  for (utf8proc_ssize_t k = 0; k < n; ++k) AppendUtf8(static_cast<char32_t>(buf[k]), out);
  return true;
}

// Changes for a run whose NFKC is `norm`, as Hugging Face's alignments come
// out: when the run grows (ﬁ -> f i), each output character replaces one
// input character and the extra ones at the end are inserted; otherwise
// output characters consume input characters in order, and one that is not
// the input character at hand (a composition, Ò from O + U+0300) also
// removes as many of the following ones as leave one input per remaining
// output.
void PairRun(std::string_view norm, std::string_view input, std::vector<CharChange>* changes) {
  thread_local std::vector<char32_t> in, out;
  in.clear();
  out.clear();
  for (size_t i = 0; i < input.size();) {
    char32_t cp;
    i += static_cast<size_t>(DecodeUtf8(input, i, &cp));
    in.push_back(cp);
  }
  for (size_t i = 0; i < norm.size();) {
    char32_t cp;
    i += static_cast<size_t>(DecodeUtf8(norm, i, &cp));
    out.push_back(cp);
  }
  if (out.empty()) {
    if (!changes->empty()) changes->back().change -= static_cast<int32_t>(in.size());
    return;
  }
  if (out.size() > in.size()) {
    for (size_t k = 0; k < out.size(); ++k) changes->push_back({out[k], k < in.size() ? 0 : 1});
    return;
  }
  size_t pos = 0;
  for (size_t k = 0; k < out.size(); ++k) {
    int32_t change = 0;
    if (pos < in.size() && out[k] != in[pos]) {
      const size_t spare = (in.size() - pos) - (out.size() - k);
      change = -static_cast<int32_t>(spare);
      pos += spare;
    }
    ++pos;
    changes->push_back({out[k], change});
  }
}

bool IsStarter(char32_t cp) {
  if (cp >= 0x1161 && cp <= 0x11C2) return false;  // Hangul V and T jamo compose
  const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
  return p->combining_class == 0 && !p->comp_exclusion;
}

// NFKC by runs: ASCII characters never change and never compose with what
// precedes them, so runs of non-ASCII text (with the ASCII character before
// them, which may compose with what follows) are normalized on their own,
// and split further at starters when that gives the same text.
bool NfkcNormalize(const NormalizedString& in, std::vector<CharChange>* changes,
                   NormalizedString* out) {
  const std::string& s = in.text;
  // ASCII text is its own NFKC.
  size_t first = 0;
  while (first < s.size() && static_cast<unsigned char>(s[first]) < 0x80) ++first;
  if (first == s.size()) return false;
  changes->clear();
  bool modified = false;
  thread_local std::string norm, part;
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      changes->push_back({static_cast<char32_t>(s[i]), 0});
      ++i;
      continue;
    }
    size_t end = i;
    while (end < s.size() && static_cast<unsigned char>(s[end]) >= 0x80) ++end;
    // An ASCII letter may start a composition (U + U+0303 is U+0168): the
    // run takes the ASCII character before it.
    if (i > 0 && static_cast<unsigned char>(s[i - 1]) < 0x80) {
      changes->pop_back();
      --i;
    }
    const std::string_view run = std::string_view(s).substr(i, end - i);
    if (!Nfkc(run, &norm) || norm == run) {
      for (size_t k = i; k < end;) {
        char32_t cp;
        k += static_cast<size_t>(DecodeUtf8(s, k, &cp));
        changes->push_back({cp, 0});
      }
      i = end;
      continue;
    }
    modified = true;
    // Sub-runs starting at starters.
    std::vector<std::pair<size_t, size_t>> subs;
    for (size_t k = i; k < end;) {
      char32_t cp;
      const int n = DecodeUtf8(s, k, &cp);
      if (subs.empty() || IsStarter(cp)) subs.emplace_back(k, k);
      k += static_cast<size_t>(n);
      subs.back().second = k;
    }
    std::string joined;
    std::vector<std::string> parts;
    for (const auto& [b, e] : subs) {
      if (!Nfkc(std::string_view(s).substr(b, e - b), &part)) part.assign(s, b, e - b);
      joined += part;
      parts.push_back(part);
    }
    if (joined == norm) {
      for (size_t k = 0; k < subs.size(); ++k) {
        PairRun(parts[k], std::string_view(s).substr(subs[k].first, subs[k].second - subs[k].first),
                changes);
      }
    } else {
      PairRun(norm, std::string_view(s).substr(i, end - i), changes);
    }
    i = end;
  }
  if (!modified) return false;
  ApplyChanges(in, *changes, out);
  return true;
}

// Length in bytes of one match of the step's pattern at s[i], or 0.
size_t MatchAt(const NormalizerStep& st, std::string_view s, size_t i) {
  if (!st.literal.empty()) {
    return s.substr(i, st.literal.size()) == st.literal ? st.literal.size() : 0;
  }
  size_t k = i;
  int count = 0;
  while (k < s.size() && (st.max_repeat < 0 || count < st.max_repeat)) {
    char32_t cp;
    const int n = DecodeUtf8(s, k, &cp);
    const bool ok = st.pattern_whitespace ? hf_unicode::IsWhitespace(cp) : cp == st.pattern_char;
    if (!ok) break;
    k += static_cast<size_t>(n);
    ++count;
  }
  return count >= st.min_repeat && k > i ? k - i : 0;
}

// Hugging Face's replace: every match is removed and the content inserted,
// each of its characters aligned to the last byte of the match.
bool Replace(const NormalizerStep& st, const NormalizedString& in, NormalizedString* out) {
  const std::string_view s = in.text;
  bool any = false;
  for (size_t i = 0; i < s.size() && !any;) {
    if (MatchAt(st, s, i) > 0) any = true;
    char32_t cp;
    i += static_cast<size_t>(DecodeUtf8(s, i, &cp));
  }
  if (!any) return false;
  out->Clear();
  out->original_start = in.original_start;
  size_t i = 0, copied = 0;
  while (i < s.size()) {
    const size_t len = MatchAt(st, s, i);
    if (len == 0) {
      char32_t cp;
      i += static_cast<size_t>(DecodeUtf8(s, i, &cp));
      continue;
    }
    out->AppendSlice(in, copied, i);
    const ByteRange range = in.align[i + len - 1];
    for (size_t k = 0; k < st.content.size();) {
      char32_t cp;
      k += static_cast<size_t>(DecodeUtf8(st.content, k, &cp));
      out->Append(cp, range);
    }
    i += len;
    copied = i;
  }
  out->AppendSlice(in, copied, s.size());
  return true;
}

}  // namespace

Status ParseReplaceRegex(const std::string& regex, NormalizerStep* step) {
  const Status bad = Status::InvalidArgument(
      "Replace pattern Regex \"" + regex +
      "\" is not supported (one character or \\s, optionally with +, {n}, {n,} or {n,m})");
  size_t i = 0;
  if (regex.empty()) return bad;
  if (regex[0] == '\\') {
    if (regex.size() < 2) return bad;
    if (regex[1] == 's') {
      step->pattern_whitespace = true;
    } else if (std::string("\\.^$|?*+()[]{}/ -").find(regex[1]) != std::string::npos) {
      step->pattern_char = static_cast<unsigned char>(regex[1]);
    } else {
      return bad;
    }
    i = 2;
  } else {
    if (std::string(".^$|?*+()[]{}\\").find(regex[0]) != std::string::npos) return bad;
    char32_t cp;
    i = static_cast<size_t>(DecodeUtf8(regex, 0, &cp));
    step->pattern_char = cp;
  }
  step->min_repeat = step->max_repeat = 1;
  const std::string q = regex.substr(i);
  if (q.empty()) return Status::Ok();
  if (q == "+") {
    step->max_repeat = -1;
    return Status::Ok();
  }
  if (q.size() < 3 || q.front() != '{' || q.back() != '}') return bad;
  const std::string body = q.substr(1, q.size() - 2);
  const size_t comma = body.find(',');
  auto number = [](const std::string& t, int* v) {
    if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos || t.size() > 6) {
      return false;
    }
    *v = std::stoi(t);
    return true;
  };
  if (comma == std::string::npos) {
    if (!number(body, &step->min_repeat)) return bad;
    step->max_repeat = step->min_repeat;
  } else {
    if (!number(body.substr(0, comma), &step->min_repeat)) return bad;
    const std::string upper = body.substr(comma + 1);
    if (upper.empty()) {
      step->max_repeat = -1;
    } else if (!number(upper, &step->max_repeat) || step->max_repeat < step->min_repeat) {
      return bad;
    }
  }
  // A pattern that can match nothing would insert content everywhere.
  if (step->min_repeat == 0) return bad;
  return Status::Ok();
}

void Normalizer::Normalize(NormalizedString* s, NormalizedString* tmp,
                           std::vector<CharChange>* changes) const {
  for (const NormalizerStep& st : steps_) {
    bool written = false;  // the result is in *tmp
    switch (st.kind) {
      case Kind::kPrecompiled:
        written = st.charsmap->Normalize(*s, changes, tmp);
        break;
      case Kind::kNfkc:
        written = NfkcNormalize(*s, changes, tmp);
        break;
      case Kind::kLowercase:
        written = Lowercase(s, changes, tmp);
        break;
      case Kind::kStrip:
        Strip(s, st.strip_left, st.strip_right);
        break;
      case Kind::kReplace:
        written = Replace(st, *s, tmp);
        break;
    }
    if (written) std::swap(*s, *tmp);
  }
}

}  // namespace nlpflow
