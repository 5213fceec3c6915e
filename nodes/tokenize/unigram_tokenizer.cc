// Unigram encoding. The Viterbi follows Hugging Face's optimized encoder:
// positions are visited left to right on character boundaries; from each,
// every vocabulary piece that starts there (found by walking the trie) may
// improve the best path ending where it ends (strictly greater score wins,
// so on ties the first candidate seen stays); a character no one-character
// piece covers gets an unknown candidate.
#include "nodes/tokenize/unigram_tokenizer.h"

#include <algorithm>
#include <limits>

#include "nodes/tokenize/hf_unicode.h"

namespace nlpflow {
namespace {

constexpr double kUnkPenalty = 10.0;

inline uint64_t EdgeKey(int32_t node, unsigned char b) {
  return static_cast<uint64_t>(static_cast<uint32_t>(node)) << 8 | b;
}

inline uint64_t Mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return k;
}

inline int Utf8LeadLength(unsigned char b) {
  return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

}  // namespace

struct UnigramTokenizer::Scratch {
  NormalizedString segment, tmp, whole;
  std::vector<CharChange> changes;
  std::vector<NormalizedString> pieces, next_pieces;
  struct Node {
    double score;
    int32_t starts_at;  // -1: not reached
    int32_t id;
  };
  std::vector<Node> lattice;
  std::vector<std::pair<int32_t, int32_t>> path;  // (begin, end) per token, reversed
  std::vector<int32_t> path_ids;
};

Result<std::unique_ptr<UnigramTokenizer>> UnigramTokenizer::FromSpec(UnigramSpec spec) {
  const std::string& src = spec.source;
  std::unique_ptr<UnigramTokenizer> t(new UnigramTokenizer());
  if (spec.vocab.empty()) return Status::InvalidArgument(src + ": model.vocab: empty");
  if (spec.unk_id < 0 || static_cast<size_t>(spec.unk_id) >= spec.vocab.size()) {
    return Status::InvalidArgument(src + ": model.unk_id: " + std::to_string(spec.unk_id) +
                                   " is outside the vocabulary");
  }
  size_t total = 0;
  for (const auto& [piece, score] : spec.vocab) total += piece.size();
  t->arena_.reserve(total);
  for (const auto& [piece, score] : spec.vocab) t->arena_ += piece;
  // Trie over every piece; a piece given twice keeps the later id.
  size_t capacity = 1024;
  while (capacity < 2 * total) capacity *= 2;
  t->edges_.assign(capacity, Edge{});
  t->edge_mask_ = capacity - 1;
  t->nodes_.assign(1, TrieNode{});
  std::fill(std::begin(t->root_children_), std::end(t->root_children_), -1);
  double min_score = std::numeric_limits<double>::infinity();
  size_t pos = 0;
  for (size_t id = 0; id < spec.vocab.size(); ++id) {
    const std::string& piece = spec.vocab[id].first;
    t->pieces_.push_back(std::string_view(t->arena_).substr(pos, piece.size()));
    pos += piece.size();
    t->scores_.push_back(spec.vocab[id].second);
    min_score = std::min(min_score, spec.vocab[id].second);
    if (piece.empty()) continue;  // Hugging Face's trie never reaches it
    int32_t node = 0;
    for (char ch : piece) {
      const auto b = static_cast<unsigned char>(ch);
      int32_t child = t->Child(node, b);
      if (child < 0) {
        child = static_cast<int32_t>(t->nodes_.size());
        t->nodes_.push_back(TrieNode{});
        const uint64_t key = EdgeKey(node, b);
        size_t i = Mix(key) & t->edge_mask_;
        while (t->edges_[i].key != ~uint64_t{0}) i = (i + 1) & t->edge_mask_;
        t->edges_[i] = Edge{key, child};
        if (node == 0) t->root_children_[b] = child;
      }
      node = child;
    }
    t->nodes_[node].id = static_cast<int32_t>(id);
  }
  t->unk_score_ = min_score - kUnkPenalty;
  t->unk_id_ = spec.unk_id;
  t->byte_fallback_ = spec.byte_fallback;
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const std::string name = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
    int32_t node = 0;
    for (char ch : name) {
      node = t->Child(node, static_cast<unsigned char>(ch));
      if (node < 0) break;
    }
    t->byte_ids_[b] = node < 0 ? -1 : t->nodes_[node].id;
  }

  int32_t max_id = static_cast<int32_t>(spec.vocab.size()) - 1;
  t->added_tokens_ = std::move(spec.added_tokens);
  for (int kind = 0; kind < 2; ++kind) t->added_by_first_byte_[kind].resize(256);
  for (uint32_t i = 0; i < t->added_tokens_.size(); ++i) {
    const auto& added = t->added_tokens_[i];
    if (added.content.empty()) return Status::InvalidArgument(src + ": added_tokens: empty content");
    if (added.id < 0) return Status::InvalidArgument(src + ": added_tokens: negative id");
    max_id = std::max(max_id, added.id);
    const int kind = added.normalized ? 1 : 0;
    t->added_by_first_byte_[kind][static_cast<unsigned char>(added.content[0])].push_back(i);
    t->has_added_[kind] = true;
  }
  for (auto& lists : t->added_by_first_byte_) {
    for (auto& list : lists) {
      std::stable_sort(list.begin(), list.end(), [&](uint32_t x, uint32_t y) {
        return t->added_tokens_[x].content.size() > t->added_tokens_[y].content.size();
      });
    }
  }
  t->vocab_size_ = static_cast<size_t>(max_id) + 1;
  NLPFLOW_ASSIGN_OR_RETURN(t->post_processor_, PostProcessor::Make(std::move(spec.post_processor),
                                                                   t->vocab_size_, src));
  t->normalizer_ = Normalizer(std::move(spec.normalizers));
  t->pre_tokenizers_ = std::move(spec.pre_tokenizers);
  t->pad_id_ = spec.pad_id;
  return t;
}

int32_t UnigramTokenizer::Child(int32_t node, unsigned char b) const {
  if (node == 0) {
    if (!nodes_.empty() && root_children_[b] >= 0) return root_children_[b];
    if (edges_.empty()) return -1;
  }
  const uint64_t key = EdgeKey(node, b);
  for (size_t i = Mix(key) & edge_mask_;; i = (i + 1) & edge_mask_) {
    const Edge& e = edges_[i];
    if (e.key == key) return e.child;
    if (e.key == ~uint64_t{0}) return -1;
  }
}

std::string UnigramTokenizer::TokenString(int32_t id) const {
  for (const auto& added : added_tokens_) {
    if (added.id == id) return added.content;
  }
  if (id < 0 || static_cast<size_t>(id) >= pieces_.size()) return "";
  return std::string(pieces_[id]);
}

Encoding UnigramTokenizer::Encode(std::string_view text) const {
  return post_processor_.EncodeWith(text, [this](std::string_view t, size_t limit, Tokens* out) {
    TokenizeSequence(t, limit, out);
  });
}

Encoding UnigramTokenizer::EncodePair(std::string_view a, std::string_view b) const {
  return post_processor_.EncodePairWith(a, b, [this](std::string_view t, size_t limit, Tokens* out) {
    TokenizeSequence(t, limit, out);
  });
}

bool UnigramTokenizer::FindAdded(std::string_view s, size_t from, bool normalized,
                                 size_t* match_begin, size_t* match_end, int32_t* id) const {
  const int kind = normalized ? 1 : 0;
  if (!has_added_[kind]) return false;
  for (size_t i = from; i < s.size(); ++i) {
    for (uint32_t index : added_by_first_byte_[kind][static_cast<unsigned char>(s[i])]) {
      const auto& added = added_tokens_[index];
      if (s.compare(i, added.content.size(), added.content) != 0) continue;
      size_t begin = i, end = i + added.content.size();
      if (added.lstrip) {
        // Whitespace before the token, not before `from`.
        while (begin > from) {
          size_t start = begin - 1;
          while (start > from && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
          char32_t cp;
          DecodeUtf8(s, start, &cp);
          if (!hf_unicode::IsWhitespace(cp)) break;
          begin = start;
        }
      }
      if (added.rstrip) {
        while (end < s.size()) {
          char32_t cp;
          const int n = DecodeUtf8(s, end, &cp);
          if (!hf_unicode::IsWhitespace(cp)) break;
          end += static_cast<size_t>(n);
        }
      }
      *match_begin = begin;
      *match_end = end;
      *id = added.id;
      return true;
    }
  }
  return false;
}

void UnigramTokenizer::TokenizeSequence(std::string_view text, size_t limit,
                                        TokenSequence* out) const {
  if (limit == 0) return;
  // A thread's buffers, kept between calls.
  static thread_local Scratch scratch;
  Scratch* s = &scratch;
  // SentencePiece vocabularies average about 3 bytes per token: with this,
  // most records need no regrowth.
  out->ids.reserve(std::min(limit, text.size() / 3 + 8));
  out->offsets.reserve(std::min(limit, text.size() / 3 + 8));
  size_t segment = 0;
  size_t begin, end;
  int32_t id;
  // Raw matches work on bytes; an invalid byte cannot start an added token's
  // content (which is valid UTF-8) in a way that reads out of bounds.
  while (FindAdded(text, segment, /*normalized=*/false, &begin, &end, &id)) {
    if (!TokenizeSegment(text, static_cast<int32_t>(segment), static_cast<int32_t>(begin), limit,
                         s, out)) {
      return;
    }
    out->Push(id, static_cast<int32_t>(begin), static_cast<int32_t>(end));
    if (out->size() >= limit) return;
    segment = end;
  }
  TokenizeSegment(text, static_cast<int32_t>(segment), static_cast<int32_t>(text.size()), limit,
                  s, out);
}

bool UnigramTokenizer::TokenizeSegment(std::string_view text, int32_t begin, int32_t end,
                                       size_t limit, Scratch* s, TokenSequence* out) const {
  if (begin >= end) return out->size() < limit;
  NormalizedString& n = s->segment;
  n.Reset(text, begin, end);
  normalizer_.Normalize(&n, &s->tmp, &s->changes);
  if (!has_added_[1]) return TokenizeNormalized(&n, limit, s, out);
  // Added tokens matched in the normalized text split it further; each part
  // starts (for Metaspace's "first") where its first byte came from.
  NormalizedString& whole = s->whole;
  std::swap(whole, n);
  size_t from = 0, mb, me;
  int32_t id;
  while (FindAdded(whole.text, from, /*normalized=*/true, &mb, &me, &id)) {
    if (mb > from) {
      n.Clear();
      n.original_start = whole.align[from].first;
      n.AppendSlice(whole, from, mb);
      if (!TokenizeNormalized(&n, limit, s, out)) return false;
    }
    const ByteRange r = whole.OriginalRange(mb, me);
    out->Push(id, r.first, r.second);
    if (out->size() >= limit) return false;
    from = me;
  }
  if (from >= whole.text.size()) return out->size() < limit;
  n.Clear();
  n.original_start = whole.align[from].first;
  n.AppendSlice(whole, from, whole.text.size());
  return TokenizeNormalized(&n, limit, s, out);
}

bool UnigramTokenizer::TokenizeNormalized(NormalizedString* n, size_t limit, Scratch* s,
                                          TokenSequence* out) const {
  if (n->text.empty()) return out->size() < limit;
  auto& pieces = s->pieces;
  auto& next = s->next_pieces;
  // Pieces are kept in pools whose strings keep their capacity.
  size_t num = 1;
  if (pieces.empty()) pieces.resize(1);
  std::swap(pieces[0], *n);
  for (const auto& pre : pre_tokenizers_) {
    size_t num_next = 0;
    auto take = [&]() -> NormalizedString& {
      if (num_next == next.size()) next.emplace_back();
      NormalizedString& p = next[num_next++];
      p.Clear();
      return p;
    };
    for (size_t k = 0; k < num; ++k) {
      NormalizedString& p = pieces[k];
      const std::string& t = p.text;
      if (pre.kind == UnigramSpec::PreTokenizer::Kind::kWhitespaceSplit) {
        size_t i = 0;
        while (i < t.size()) {
          char32_t cp;
          int len = DecodeUtf8(t, i, &cp);
          if (hf_unicode::IsWhitespace(cp)) {
            i += static_cast<size_t>(len);
            continue;
          }
          size_t j = i;
          while (j < t.size()) {
            len = DecodeUtf8(t, j, &cp);
            if (hf_unicode::IsWhitespace(cp)) break;
            j += static_cast<size_t>(len);
          }
          NormalizedString& w = take();
          w.original_start = p.align[i].first;
          w.AppendSlice(p, i, j);
          i = j;
        }
        continue;
      }
      // Metaspace: spaces become the replacement, then the prefix, then
      // the split before each replacement.
      NormalizedString& m = s->tmp;
      m.Clear();
      m.original_start = p.original_start;
      std::string rep;
      AppendUtf8(pre.replacement, &rep);
      size_t copied = 0;
      for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] != ' ') continue;
        m.AppendSlice(p, copied, i);
        m.Append(pre.replacement, p.align[i]);
        copied = i + 1;
      }
      if (copied > 0) {
        m.AppendSlice(p, copied, t.size());
        std::swap(m, p);
      }
      const bool starts = p.text.compare(0, rep.size(), rep) == 0;
      using Prepend = UnigramSpec::PreTokenizer::Prepend;
      if (!p.text.empty() && !starts &&
          (pre.prepend == Prepend::kAlways ||
           (pre.prepend == Prepend::kFirst && p.original_start == 0))) {
        m.Clear();
        m.original_start = p.original_start;
        m.Append(pre.replacement, p.align[0]);
        m.AppendSlice(p, 0, p.text.size());
        std::swap(m, p);
      }
      if (!pre.split) {
        std::swap(take(), p);
        continue;
      }
      size_t start = 0;
      for (size_t i = 1; i <= p.text.size(); ++i) {
        if (i < p.text.size() && p.text.compare(i, rep.size(), rep) != 0) continue;
        NormalizedString& w = take();
        w.original_start = p.align[start].first;
        w.AppendSlice(p, start, i);
        start = i;
      }
    }
    std::swap(pieces, next);
    num = num_next;
  }
  for (size_t k = 0; k < num; ++k) {
    const NormalizedString& p = pieces[k];
    if (p.text.empty()) continue;
    TokenizePiece(p, 0, p.text.size(), s, out);
    if (out->size() >= limit) return false;
  }
  return true;
}

void UnigramTokenizer::TokenizePiece(const NormalizedString& n, size_t begin, size_t end,
                                     Scratch* s, TokenSequence* out) const {
  const std::string_view text = std::string_view(n.text).substr(begin, end - begin);
  const size_t size = text.size();
  auto& lattice = s->lattice;
  lattice.assign(size + 1, Scratch::Node{0.0, -1, -1});
  lattice[0].starts_at = 0;
  size_t at = 0;
  while (at < size) {
    const double base = lattice[at].score;
    const size_t char_len = std::min<size_t>(Utf8LeadLength(static_cast<unsigned char>(text[at])),
                                             size - at);
    bool has_single = false;
    int32_t node = 0;
    for (size_t k = at; k < size; ++k) {
      node = Child(node, static_cast<unsigned char>(text[k]));
      if (node < 0) break;
      const int32_t id = nodes_[node].id;
      if (id < 0) continue;
      Scratch::Node& target = lattice[k + 1];
      const double score = base + scores_[id];
      if (target.starts_at < 0 || score > target.score) {
        target.score = score;
        target.starts_at = static_cast<int32_t>(at);
        target.id = id;
      }
      if (k + 1 - at == char_len) has_single = true;
    }
    if (!has_single) {
      Scratch::Node& target = lattice[at + char_len];
      const double score = base + unk_score_;
      if (target.starts_at < 0 || score > target.score) {
        target.score = score;
        target.starts_at = static_cast<int32_t>(at);
        target.id = unk_id_;
      }
    }
    at += char_len;
  }
  // Back from the end; adjacent unknowns fuse into one token.
  auto& path = s->path;
  auto& path_ids = s->path_ids;
  path.clear();
  path_ids.clear();
  size_t e = size;
  int32_t unk_end = -1;
  while (e > 0) {
    const Scratch::Node& node = lattice[e];
    const int32_t b = node.starts_at;
    if (node.id == unk_id_) {
      if (unk_end < 0) unk_end = static_cast<int32_t>(e);
    } else {
      if (unk_end >= 0) {
        path.emplace_back(static_cast<int32_t>(e), unk_end);
        path_ids.push_back(-1);
        unk_end = -1;
      }
      path.emplace_back(b, static_cast<int32_t>(e));
      path_ids.push_back(node.id);
    }
    e = static_cast<size_t>(b);
  }
  if (unk_end >= 0) {
    path.emplace_back(0, unk_end);
    path_ids.push_back(-1);
  }
  for (size_t k = path.size(); k-- > 0;) {
    const auto [tb, te] = path[k];
    const ByteRange r = n.OriginalRange(begin + tb, begin + te);
    int32_t id = path_ids[k];
    if (id < 0) {
      // A fused unknown: its string may still be a piece.
      int32_t node = 0;
      for (int32_t i = tb; i < te && node >= 0; ++i) {
        node = Child(node, static_cast<unsigned char>(text[i]));
      }
      id = node >= 0 ? nodes_[node].id : -1;
    }
    if (id < 0 && byte_fallback_) {
      bool all = true;
      for (int32_t i = tb; i < te && all; ++i) all = byte_ids_[static_cast<unsigned char>(text[i])] >= 0;
      if (all) {
        for (int32_t i = tb; i < te; ++i) {
          out->Push(byte_ids_[static_cast<unsigned char>(text[i])], r.first, r.second);
        }
        continue;
      }
    }
    out->Push(id < 0 ? unk_id_ : id, r.first, r.second);
  }
}

}  // namespace nlpflow
