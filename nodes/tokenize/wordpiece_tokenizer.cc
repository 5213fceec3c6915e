#include "nodes/tokenize/wordpiece_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "nodes/tokenize/hf_unicode.h"

namespace nlpflow {

using Offsets = std::pair<int32_t, int32_t>;

// The word being collected: its normalized UTF-8 bytes and, per byte, the
// byte range in the original text of the character it came from (like
// Hugging Face's alignments). Reused across the words of one call.
struct WordPieceTokenizer::Scratch {
  std::string word;
  std::vector<Offsets> align;
  size_t chars = 0;

  // strip_accents only: NFD's canonical reordering needs the run of
  // combining marks (class != 0) after a starter before it can emit them.
  struct Mark {
    char32_t cp;
    uint8_t combining_class;
    bool first;  // the first code point of its character's decomposition
  };
  std::vector<Mark> run;
  // Ranges of the characters whose first code point is in `run`, in order.
  std::vector<Offsets> run_sources;
  // Range of the character whose first code point was emitted last.
  Offsets last_source{0, 0};

  void AppendByte(char c, int32_t begin, int32_t end) {
    word.push_back(c);
    align.emplace_back(begin, end);
    ++chars;
  }
  void Append(char32_t cp, int32_t begin, int32_t end) {
    utf8proc_uint8_t buf[4];
    const utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
    word.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
    align.insert(align.end(), static_cast<size_t>(n), Offsets(begin, end));
    ++chars;
  }
  void Clear() {
    word.clear();
    align.clear();
    chars = 0;
  }
};

namespace {

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

}  // namespace

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromSpec(WordPieceSpec spec) {
  const std::string where = spec.source.empty() ? std::string("tokenizer") : spec.source;
  auto invalid = [&](const std::string& message) {
    return Status::InvalidArgument(where + ": " + message);
  };
  WordPieceOptions& options = spec.options;
  if (options.max_input_chars_per_word <= 0) {
    return invalid("max_input_chars_per_word must be positive, got " +
                   std::to_string(options.max_input_chars_per_word));
  }
  if (spec.vocab.empty()) return invalid("the vocabulary is empty");
  options.max_length = std::max(0, options.max_length);

  std::unique_ptr<WordPieceTokenizer> t(new WordPieceTokenizer());
  t->options_ = options;
  t->strip_accents_ = options.strip_accents.value_or(options.lowercase);

  // Ids and the arena. Views are taken only once the arena is complete.
  int64_t max_id = -1;
  size_t arena_bytes = 0;
  for (const auto& [token, id] : spec.vocab) {
    if (id < 0) return invalid("token \"" + token + "\" has a negative id");
    max_id = std::max<int64_t>(max_id, id);
    arena_bytes += token.size();
  }
  for (size_t i = 0; i < spec.added_tokens.size(); ++i) {
    const WordPieceAddedToken& added = spec.added_tokens[i];
    if (added.content.empty()) return invalid("added token " + std::to_string(i) + " is empty");
    if (added.id < 0) return invalid("added token \"" + added.content + "\" has a negative id");
    max_id = std::max<int64_t>(max_id, added.id);
    arena_bytes += added.content.size();
  }
  // Ids index dense tables here and in the model's embedding; a huge id is a
  // broken file, not a big vocabulary.
  constexpr int64_t kMaxId = (int64_t{1} << 24) - 1;
  if (max_id > kMaxId) {
    return invalid("id " + std::to_string(max_id) + " is implausibly large (limit " +
                   std::to_string(kMaxId) + ")");
  }
  t->vocab_size_ = static_cast<size_t>(max_id + 1);
  t->arena_.reserve(arena_bytes);
  for (const auto& entry : spec.vocab) t->arena_ += entry.first;
  for (const auto& added : spec.added_tokens) t->arena_ += added.content;

  t->id_to_token_.assign(t->vocab_size_, std::string_view());
  const std::string_view arena = t->arena_;
  const std::string_view prefix = options.continuing_subword_prefix;
  size_t pos = 0;
  std::vector<std::pair<std::string_view, int32_t>> initial, continuing;
  initial.reserve(spec.vocab.size());
  for (const auto& [token, id] : spec.vocab) {
    const std::string_view view = arena.substr(pos, token.size());
    pos += token.size();
    // A later duplicate wins, as when Hugging Face fills its vocab map.
    initial.emplace_back(view, id);
    if (view.size() > prefix.size() && view.substr(0, prefix.size()) == prefix) {
      continuing.emplace_back(view.substr(prefix.size()), id);
    }
    if (t->id_to_token_[id].empty()) t->id_to_token_[id] = view;
  }
  t->initial_pieces_.Build(initial);
  t->continuing_pieces_.Build(continuing);
  t->added_by_first_byte_.resize(256);
  for (const auto& added : spec.added_tokens) {
    const std::string_view view = arena.substr(pos, added.content.size());
    pos += added.content.size();
    if (t->id_to_token_[added.id].empty()) t->id_to_token_[added.id] = view;
    t->added_tokens_.push_back(added);
  }
  // Longest first within each first byte: the first hit at a position is
  // then the leftmost-longest match, as Hugging Face's Aho-Corasick finds it.
  for (uint32_t i = 0; i < t->added_tokens_.size(); ++i) {
    const unsigned char first = static_cast<unsigned char>(t->added_tokens_[i].content[0]);
    if (t->added_tokens_[i].ascii_case_insensitive && first >= 'a' && first <= 'z') {
      t->added_by_first_byte_[first - 'a' + 'A'].push_back(i);
    }
    t->added_by_first_byte_[static_cast<unsigned char>(t->added_tokens_[i].content[0])].push_back(
        i);
  }
  for (auto& list : t->added_by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](uint32_t x, uint32_t y) {
      return t->added_tokens_[x].content.size() > t->added_tokens_[y].content.size();
    });
  }

  auto find_id = [&](const std::string& token) -> int32_t {
    const int32_t id = t->initial_pieces_.Find(token);
    if (id >= 0) return id;
    for (const auto& added : t->added_tokens_) {
      if (added.content == token) return added.id;
    }
    return -1;
  };
  auto require_id = [&](const char* what, const std::string& token) -> Result<int32_t> {
    const int32_t id = find_id(token);
    if (id < 0) return invalid(std::string(what) + " \"" + token + "\" is not in the vocabulary");
    return id;
  };

  // Hugging Face's WordPiece looks the unknown token up in the model vocab only.
  t->unk_id_ = t->initial_pieces_.Find(options.unk_token);
  if (t->unk_id_ < 0) {
    return invalid("unk_token \"" + options.unk_token + "\" is not in the vocabulary");
  }
  NLPFLOW_ASSIGN_OR_RETURN(t->pad_id_, require_id("pad_token", options.pad_token));

  using Kind = WordPieceTemplatePiece::Kind;
  auto sequence = [](Kind kind, int32_t type_id) {
    WordPieceTemplatePiece p;
    p.kind = kind;
    p.type_id = type_id;
    return p;
  };
  if (!spec.single_template.has_value() || !spec.pair_template.has_value()) {
    NLPFLOW_ASSIGN_OR_RETURN(const int32_t cls, require_id("cls_token", options.cls_token));
    NLPFLOW_ASSIGN_OR_RETURN(const int32_t sep, require_id("sep_token", options.sep_token));
    auto special = [](const std::string& token, int32_t id, int32_t type_id) {
      WordPieceTemplatePiece p;
      p.token = token;
      p.ids = {id};
      p.type_id = type_id;
      return p;
    };
    spec.single_template = {special(options.cls_token, cls, 0), sequence(Kind::kSequenceA, 0),
                            special(options.sep_token, sep, 0)};
    spec.pair_template = {special(options.cls_token, cls, 0), sequence(Kind::kSequenceA, 0),
                          special(options.sep_token, sep, 0), sequence(Kind::kSequenceB, 1),
                          special(options.sep_token, sep, 1)};
  }
  // Empty templates (no post-processor) become the sequences alone there.
  PostProcessorSpec post;
  post.single_template = std::move(*spec.single_template);
  post.pair_template = std::move(*spec.pair_template);
  post.max_length = options.max_length;
  post.add_special_tokens = options.add_special_tokens;
  NLPFLOW_ASSIGN_OR_RETURN(t->post_processor_,
                           PostProcessor::Make(std::move(post), t->vocab_size_, where));
  // cls_id is the special token right before A, sep_id the last one after it.
  bool after_a = false;
  for (const auto& p : t->post_processor_.single_template()) {
    if (p.kind == Kind::kSequenceA) {
      after_a = true;
    } else if (p.kind == Kind::kSpecial && !after_a) {
      t->cls_id_ = p.ids.back();
    } else if (p.kind == Kind::kSpecial) {
      t->sep_id_ = p.ids.back();
    }
  }

  // The ASCII fast path, computed with the same functions as the slow path.
  for (char32_t c = 0; c < 128; ++c) {
    AsciiEntry& e = t->ascii_[c];
    char32_t lower[2] = {c, 0};
    if (options.lowercase) hf_unicode::ToLowercase(c, lower);
    e.mapped = static_cast<char>(lower[0]);
    if (options.clean_text && hf_unicode::IsDroppedByCleanText(c)) {
      e.action = AsciiAction::kDrop;
    } else if (hf_unicode::IsWhitespace(c)) {
      e.action = AsciiAction::kSplit;
    } else if (hf_unicode::IsPunctuation(c)) {
      e.action = AsciiAction::kPunctuation;
    } else {
      e.action = AsciiAction::kAppend;
    }
  }
  return t;
}

void WordPieceTokenizer::set_max_length(int max_length) {
  options_.max_length = std::max(0, max_length);
  post_processor_.set_max_length(options_.max_length);
}

namespace {

// The tokenizers library's decoders::wordpiece::cleanup.
std::string Cleanup(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},       {" ?", "?"},    {" !", "!"},     {" ,", ","},
      {" ' ", "'"},      {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
      {" 's", "'s"},     {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    const std::string f(from), t(to);
    std::string out;
    size_t pos = 0;
    while (true) {
      const size_t hit = s.find(f, pos);
      if (hit == std::string::npos) break;
      out.append(s, pos, hit - pos).append(t);
      pos = hit + f.size();
    }
    out.append(s, pos, std::string::npos);
    s = std::move(out);
  }
  return s;
}

}  // namespace

std::string WordPieceTokenizer::DecodeTokens(const std::vector<std::string>& tokens) const {
  const std::string& prefix = options_.continuing_subword_prefix;
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string piece = tokens[i];
    if (i != 0) {
      if (!prefix.empty() && piece.compare(0, prefix.size(), prefix) == 0) {
        piece.erase(0, prefix.size());
      } else {
        piece.insert(0, " ");
      }
    }
    out += Cleanup(std::move(piece));
  }
  return out;
}

std::string_view WordPieceTokenizer::IdToToken(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return {};
  return id_to_token_[id];
}

Encoding WordPieceTokenizer::Encode(std::string_view text) const {
  return post_processor_.EncodeWith(text, [this](std::string_view t, size_t limit, Tokens* out) {
    TokenizeSequence(t, limit, out);
  });
}

Encoding WordPieceTokenizer::EncodePair(std::string_view a, std::string_view b) const {
  return post_processor_.EncodePairWith(a, b, [this](std::string_view t, size_t limit, Tokens* out) {
    TokenizeSequence(t, limit, out);
  });
}

void WordPieceTokenizer::TokenizeSequence(std::string_view text, size_t limit,
                                          Tokens* out) const {
  if (limit == 0) return;
  Scratch s;
  s.word.reserve(64);
  s.align.reserve(64);
  out->ids.reserve(std::min(limit, text.size() / 4 + 8));
  out->offsets.reserve(std::min(limit, text.size() / 4 + 8));

  // Added tokens are cut out of the raw text first; the pieces between them
  // are normalized and tokenized on their own, as in Hugging Face.
  size_t segment_begin = 0;
  size_t i = 0;
  while (i < text.size() && !added_tokens_.empty()) {
    const WordPieceAddedToken* match = nullptr;
    for (uint32_t index : added_by_first_byte_[static_cast<unsigned char>(text[i])]) {
      const WordPieceAddedToken& added = added_tokens_[index];
      if (added.special && options_.split_special_tokens) continue;
      const std::string_view candidate = text.substr(i, added.content.size());
      const bool equal =
          added.ascii_case_insensitive
              ? candidate.size() == added.content.size() &&
                    std::equal(candidate.begin(), candidate.end(), added.content.begin(),
                               [](char x, char y) {
                                 return (x >= 'A' && x <= 'Z' ? x - 'A' + 'a' : x) == y;
                               })
              : candidate == added.content;
      if (equal) {
        match = &added;
        break;
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    if (!TokenizeSegment(text, segment_begin, i, limit, &s, out)) return;
    const size_t end = i + match->content.size();
    out->Push(match->id, static_cast<int32_t>(i), static_cast<int32_t>(end));
    if (out->size() >= limit) return;
    i = end;
    segment_begin = end;
  }
  TokenizeSegment(text, segment_begin, text.size(), limit, &s, out);
}

bool WordPieceTokenizer::TokenizeSegment(std::string_view text, size_t begin, size_t end,
                                         size_t limit, Scratch* s, Tokens* out) const {
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  s->last_source = Offsets(static_cast<int32_t>(begin), static_cast<int32_t>(begin));
  size_t i = begin;
  while (i < end) {
    const unsigned char c = bytes[i];
    const int32_t char_begin = static_cast<int32_t>(i);
    if (c < 0x80) {
      const AsciiEntry& e = ascii_[c];
      // ASCII characters are starters: they end a run of combining marks
      // (unless clean_text drops them before NFD sees them).
      if (!s->run.empty() && e.action != AsciiAction::kDrop) FlushMarks(s, out);
      switch (e.action) {
        case AsciiAction::kDrop:
          break;
        case AsciiAction::kSplit:
          FlushWord(s, out);
          break;
        case AsciiAction::kPunctuation:
          FlushWord(s, out);
          s->AppendByte(static_cast<char>(c), char_begin, char_begin + 1);
          FlushWord(s, out);
          break;
        case AsciiAction::kAppend:
          s->AppendByte(e.mapped, char_begin, char_begin + 1);
          break;
      }
      ++i;
    } else {
      utf8proc_int32_t cp = 0;
      utf8proc_ssize_t n = utf8proc_iterate(bytes + i, static_cast<utf8proc_ssize_t>(end - i), &cp);
      if (n <= 0) {  // invalid UTF-8: this one byte reads as U+FFFD
        cp = 0xFFFD;
        n = 1;
      }
      i += static_cast<size_t>(n);
      NormalizeChar(static_cast<char32_t>(cp), char_begin, static_cast<int32_t>(i), s, out);
    }
    if (out->size() >= limit) return false;
  }
  FlushMarks(s, out);
  FlushWord(s, out);
  return out->size() < limit;
}

// One character of the original text through BertNormalizer (clean_text,
// CJK spacing, NFD + drop Mn, lowercase, in Hugging Face's order) and on to
// the pre-tokenizer.
void WordPieceTokenizer::NormalizeChar(char32_t cp, int32_t begin, int32_t end, Scratch* s,
                                       Tokens* out) const {
  const Offsets source(begin, end);
  if (options_.clean_text) {
    if (hf_unicode::IsDroppedByCleanText(cp)) return;
    if (hf_unicode::IsWhitespace(cp)) {
      FlushMarks(s, out);
      FlushWord(s, out);
      s->last_source = source;
      return;
    }
  }
  // CJK ideographs get spaces around them: a word of their own.
  const bool cjk = options_.handle_chinese_chars && hf_unicode::IsChineseChar(cp);
  if (cjk) {
    FlushMarks(s, out);
    FlushWord(s, out);
  }
  if (!strip_accents_) {
    EmitNormalized(cp, source, s, out);
  } else {
    char32_t parts[4];
    const int num_parts = hf_unicode::DecomposeCanonical(cp, parts);
    for (int k = 0; k < num_parts; ++k) {
      const uint8_t combining_class = hf_unicode::CombiningClass(parts[k]);
      if (combining_class != 0) {
        s->run.push_back({parts[k], combining_class, k == 0});
        if (k == 0) s->run_sources.push_back(source);
        continue;
      }
      FlushMarks(s, out);
      if (k == 0) s->last_source = source;
      EmitNormalized(parts[k], s->last_source, s, out);
    }
  }
  if (cjk) {
    FlushMarks(s, out);
    FlushWord(s, out);
  }
}

// Emits the pending combining marks in canonical order (a stable sort by
// class). Hugging Face's NFD assigns source ranges by position, not by mark:
// the n-th "first" code point of the sorted run takes the range of the n-th
// character read, and a code point that continues a decomposition takes the
// range of the last one taken. This only matters for marks that were out of
// canonical order in the input, but it is what Hugging Face reports.
void WordPieceTokenizer::FlushMarks(Scratch* s, Tokens* out) const {
  if (s->run.empty()) return;
  std::stable_sort(s->run.begin(), s->run.end(),
                   [](const Scratch::Mark& a, const Scratch::Mark& b) {
                     return a.combining_class < b.combining_class;
                   });
  size_t next_source = 0;
  for (const Scratch::Mark& mark : s->run) {
    if (mark.first) s->last_source = s->run_sources[next_source++];
    EmitNormalized(mark.cp, s->last_source, s, out);
  }
  s->run.clear();
  s->run_sources.clear();
}

// The rest of the normalizer for one code point (drop nonspacing marks,
// lowercase), then the pre-tokenizer's whitespace and punctuation splits.
void WordPieceTokenizer::EmitNormalized(char32_t cp, Offsets source, Scratch* s,
                                        Tokens* out) const {
  if (strip_accents_ && hf_unicode::ClassOf(cp) == hf_unicode::HfCharClass::kNonspacingMark) {
    return;
  }
  char32_t lower[2] = {cp, 0};
  const int num_lower = options_.lowercase ? hf_unicode::ToLowercase(cp, lower) : 1;
  for (int j = 0; j < num_lower; ++j) {
    const char32_t c = lower[j];
    if (hf_unicode::IsWhitespace(c)) {
      FlushWord(s, out);
    } else if (hf_unicode::IsPunctuation(c)) {
      FlushWord(s, out);
      s->Append(c, source.first, source.second);
      FlushWord(s, out);
    } else {
      s->Append(c, source.first, source.second);
    }
  }
}

// Greedy longest-match-first over the normalized word. The longest vocabulary
// entry bounds the first candidate, which changes nothing (longer slices
// cannot match) but saves lookups on long words.
void WordPieceTokenizer::FlushWord(Scratch* s, Tokens* out) const {
  if (s->word.empty()) return;
  const std::string_view word = s->word;
  const int32_t word_begin = s->align.front().first;
  const int32_t word_end = s->align.back().second;
  if (s->chars > static_cast<size_t>(options_.max_input_chars_per_word)) {
    out->Push(unk_id_, word_begin, word_end);
    s->Clear();
    return;
  }
  const size_t first_token = out->size();
  size_t start = 0;
  while (start < word.size()) {
    const bool initial = start == 0;
    const PieceTable& pieces = initial ? initial_pieces_ : continuing_pieces_;
    size_t end = std::min(word.size(), start + pieces.max_key_bytes());
    while (end > start && end < word.size() && IsContinuationByte(word[end])) --end;
    int32_t id = -1;
    while (end > start) {
      id = pieces.Find(word.substr(start, end - start));
      if (id >= 0) break;
      do {
        --end;
      } while (end > start && IsContinuationByte(word[end]));
    }
    if (id < 0) {  // some part matches nothing: the whole word is unknown
      out->Truncate(first_token);
      out->Push(unk_id_, word_begin, word_end);
      s->Clear();
      return;
    }
    out->Push(id, s->align[start].first, s->align[end - 1].second);
    start = end;
  }
  s->Clear();
}

}  // namespace nlpflow
