// Byte-level BPE encoding. The merge loop follows the classic priority-queue
// formulation: every adjacent pair with a merge is a candidate keyed by
// (rank, position); the lowest is applied, candidates made stale by earlier
// merges are skipped when popped, and the merge creates at most two new
// candidates. That is O(n log n) per word, where rescanning all pairs after
// each merge would be quadratic on long words.
#include "nodes/tokenize/bpe_tokenizer.h"

#include <algorithm>
#include <limits>

#include "nodes/tokenize/byte_level.h"

namespace nlpflow {

struct BpeTokenizer::Scratch {
  struct Symbol {
    int32_t id;
    int32_t begin;  // byte offset in the word
    int32_t len;    // bytes; 0 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t merged;
    // std::push_heap builds a max-heap: invert so the lowest rank, then the
    // leftmost position, is on top.
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::string prefixed;  // " " + segment, for add_prefix_space
};

namespace {

inline uint64_t MergeKey(int32_t left, int32_t right) {
  return static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32 | static_cast<uint32_t>(right);
}

inline uint64_t MixKey(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return k;
}

}  // namespace

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromSpec(BpeSpec spec) {
  const std::string& src = spec.source;
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  // Raw bytes of every token, in one arena so the table's keys stay put.
  std::vector<std::string> raw(spec.vocab.size());
  size_t total = 0;
  for (size_t i = 0; i < spec.vocab.size(); ++i) {
    if (!byte_level::Decode(spec.vocab[i].first, &raw[i])) {
      return Status::InvalidArgument(src + ": model.vocab: \"" + spec.vocab[i].first +
                                     "\" is not in the byte-level alphabet");
    }
    total += raw[i].size();
  }
  t->arena_.reserve(total);
  for (const auto& r : raw) t->arena_ += r;
  std::vector<std::pair<std::string_view, int32_t>> entries;
  entries.reserve(raw.size());
  size_t pos = 0;
  int32_t max_id = -1;
  for (size_t i = 0; i < raw.size(); ++i) {
    entries.emplace_back(std::string_view(t->arena_).substr(pos, raw[i].size()),
                         spec.vocab[i].second);
    pos += raw[i].size();
    max_id = std::max(max_id, spec.vocab[i].second);
  }
  t->vocab_.Build(entries);
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    t->byte_ids_[b] = t->vocab_.Find(std::string_view(&c, 1));
  }

  // Merges: both sides and the result must be in the vocabulary.
  size_t capacity = 16;
  while (capacity < 2 * spec.merges.size()) capacity *= 2;
  t->merges_.assign(capacity, MergeSlot{});
  t->merge_mask_ = capacity - 1;
  std::string left_raw, right_raw;
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const auto& [left, right] = spec.merges[rank];
    const std::string where = src + ": model.merges[" + std::to_string(rank) + "]";
    if (!byte_level::Decode(left, &left_raw) || !byte_level::Decode(right, &right_raw)) {
      return Status::InvalidArgument(where + ": not in the byte-level alphabet");
    }
    const int32_t l = t->vocab_.Find(left_raw);
    const int32_t r = t->vocab_.Find(right_raw);
    const int32_t m = t->vocab_.Find(left_raw + right_raw);
    if (l < 0 || r < 0 || m < 0) {
      return Status::InvalidArgument(where + ": \"" + left + " " + right +
                                     "\" uses a token missing from model.vocab");
    }
    const uint64_t key = MergeKey(l, r);
    size_t i = MixKey(key) & t->merge_mask_;
    while (t->merges_[i].key != ~uint64_t{0} && t->merges_[i].key != key) {
      i = (i + 1) & t->merge_mask_;
    }
    if (t->merges_[i].key == key) continue;  // the first (lowest) rank wins
    t->merges_[i] = MergeSlot{key, static_cast<int32_t>(rank), m};
  }

  if (spec.unk_token) {
    t->unk_id_ = t->vocab_.Find(*spec.unk_token);
    if (t->unk_id_ < 0) {
      return Status::InvalidArgument(src + ": model.unk_token \"" + *spec.unk_token +
                                     "\" is not in model.vocab");
    }
  }

  t->added_tokens_ = std::move(spec.added_tokens);
  t->added_by_first_byte_.resize(256);
  for (uint32_t i = 0; i < t->added_tokens_.size(); ++i) {
    const auto& added = t->added_tokens_[i];
    if (added.content.empty()) {
      return Status::InvalidArgument(src + ": added_tokens: empty content");
    }
    max_id = std::max(max_id, added.id);
    t->added_by_first_byte_[static_cast<unsigned char>(added.content[0])].push_back(i);
  }
  for (auto& list : t->added_by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](uint32_t x, uint32_t y) {
      return t->added_tokens_[x].content.size() > t->added_tokens_[y].content.size();
    });
  }
  t->vocab_size_ = static_cast<size_t>(max_id + 1);
  PostProcessorSpec post;
  post.single_template = std::move(spec.single_template);
  post.pair_template = std::move(spec.pair_template);
  post.max_length = spec.max_length;
  NLPFLOW_ASSIGN_OR_RETURN(t->post_processor_,
                           PostProcessor::Make(std::move(post), t->vocab_size_, src));
  t->ignore_merges_ = spec.ignore_merges;
  t->add_prefix_space_ = spec.add_prefix_space;
  t->use_regex_ = spec.use_regex;
  t->trim_offsets_ = spec.trim_offsets;
  t->pad_id_ = spec.pad_id;
  return t;
}

const BpeTokenizer::MergeSlot* BpeTokenizer::FindMerge(int32_t left, int32_t right) const {
  const uint64_t key = MergeKey(left, right);
  for (size_t i = MixKey(key) & merge_mask_;; i = (i + 1) & merge_mask_) {
    const MergeSlot& s = merges_[i];
    if (s.key == key) return &s;
    if (s.key == ~uint64_t{0}) return nullptr;
  }
}

Encoding BpeTokenizer::Encode(std::string_view text) const {
  return post_processor_.EncodeWith(text, [this](std::string_view t, size_t limit, Tokens* out) {
    TokenizeSequence(t, limit, out);
  });
}

Encoding BpeTokenizer::EncodePair(std::string_view a, std::string_view b) const {
  return post_processor_.EncodePairWith(a, b, [this](std::string_view t, size_t limit, Tokens* out) {
    TokenizeSequence(t, limit, out);
  });
}

void BpeTokenizer::TokenizeSequence(std::string_view text, size_t limit, Tokens* out) const {
  if (limit == 0) return;
  // A thread's buffers, kept between calls: encoding allocates only when a
  // word is longer than any seen before on this thread.
  static thread_local Scratch scratch;
  Scratch* s = &scratch;
  // Added tokens split the text; each stretch between them is tokenized on
  // its own (its own prefix space, its own pattern matches).
  size_t segment = 0;
  size_t i = 0;
  while (i < text.size()) {
    const BpeSpec::AddedToken* match = nullptr;
    if (!added_tokens_.empty()) {
      for (uint32_t index : added_by_first_byte_[static_cast<unsigned char>(text[i])]) {
        const auto& added = added_tokens_[index];
        if (text.substr(i, added.content.size()) == added.content) {
          match = &added;
          break;
        }
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    if (!TokenizeSegment(text, segment, i, limit, s, out)) return;
    out->ids.push_back(match->id);
    out->offsets.emplace_back(static_cast<int32_t>(i),
                              static_cast<int32_t>(i + match->content.size()));
    if (out->size() >= limit) return;
    i += match->content.size();
    segment = i;
  }
  TokenizeSegment(text, segment, text.size(), limit, s, out);
}

bool BpeTokenizer::TokenizeSegment(std::string_view text, size_t begin, size_t end, size_t limit,
                                   Scratch* s, Tokens* out) const {
  if (begin >= end) return out->size() < limit;
  std::string_view segment = text.substr(begin, end - begin);
  int32_t base = static_cast<int32_t>(begin);  // offset of segment[0] in text
  // ByteLevel's add_prefix_space: Hugging Face prepends " " to a segment
  // that does not start with one and matches the pattern on the result; so
  // does this (the copy is the only allocation, and only with this option).
  if (add_prefix_space_ && segment[0] != ' ') {
    s->prefixed.assign(1, ' ');
    s->prefixed.append(segment);
    segment = s->prefixed;
    base -= 1;
  }
  const int32_t min_offset = static_cast<int32_t>(begin);
  if (!use_regex_) {
    TokenizeWord(segment, base, min_offset, s, out);
    return out->size() < limit;
  }
  size_t i = 0;
  while (i < segment.size()) {
    const size_t j = byte_level::MatchGpt2(segment, i, segment.size());
    TokenizeWord(segment.substr(i, j - i), base + static_cast<int32_t>(i), min_offset, s, out);
    if (out->size() >= limit) return false;
    i = j;
  }
  return out->size() < limit;
}

void BpeTokenizer::TokenizeWord(std::string_view word, int32_t offset, int32_t min_offset,
                                Scratch* s, Tokens* out) const {
  // Byte range [b, e) of the word becomes the token's offsets in the text.
  const auto push = [&](int32_t id, int32_t b, int32_t e) {
    if (trim_offsets_) {
      while (b < e && word[b] == ' ') ++b;
    }
    out->ids.push_back(id);
    out->offsets.emplace_back(std::max(min_offset, offset + b), std::max(min_offset, offset + e));
  };
  if (ignore_merges_) {
    const int32_t id = vocab_.Find(word);
    if (id >= 0) {
      push(id, 0, static_cast<int32_t>(word.size()));
      return;
    }
  }
  auto& sym = s->symbols;
  sym.clear();
  for (size_t k = 0; k < word.size(); ++k) {
    sym.push_back({byte_ids_[static_cast<uint8_t>(word[k])], static_cast<int32_t>(k), 1, -1, -1});
  }
  // A byte without a token: Hugging Face's BPE uses unk_token if it has
  // one and otherwise drops it. (A byte-level vocabulary has all 256.)
  size_t n = 0;
  for (size_t k = 0; k < sym.size(); ++k) {
    if (sym[k].id < 0) {
      if (unk_id_ < 0) continue;
      sym[k].id = unk_id_;
    }
    sym[n++] = sym[k];
  }
  sym.resize(n);
  for (size_t k = 0; k < n; ++k) {
    sym[k].prev = static_cast<int32_t>(k) - 1;
    sym[k].next = k + 1 < n ? static_cast<int32_t>(k + 1) : -1;
  }
  auto& heap = s->heap;
  heap.clear();
  for (size_t k = 0; k + 1 < n; ++k) {
    if (const MergeSlot* m = FindMerge(sym[k].id, sym[k + 1].id)) {
      heap.push_back({m->rank, static_cast<int32_t>(k), m->merged});
    }
  }
  std::make_heap(heap.begin(), heap.end());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Scratch::Candidate top = heap.back();
    heap.pop_back();
    auto& left = sym[top.pos];
    if (left.len == 0 || left.next < 0) continue;
    const int32_t right_pos = left.next;
    const auto& right = sym[right_pos];
    const MergeSlot* m = FindMerge(left.id, right.id);
    if (m == nullptr || m->merged != top.merged) continue;  // stale
    left.id = top.merged;
    left.len += right.len;
    left.next = right.next;
    sym[right_pos].len = 0;
    if (left.next >= 0) sym[left.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const MergeSlot* p = FindMerge(sym[left.prev].id, left.id)) {
        heap.push_back({p->rank, left.prev, p->merged});
        std::push_heap(heap.begin(), heap.end());
      }
    }
    if (left.next >= 0) {
      if (const MergeSlot* p = FindMerge(left.id, sym[left.next].id)) {
        heap.push_back({p->rank, top.pos, p->merged});
        std::push_heap(heap.begin(), heap.end());
      }
    }
  }
  for (int32_t k = n > 0 ? 0 : -1; k >= 0; k = sym[k].next) {
    push(sym[k].id, sym[k].begin, sym[k].begin + sym[k].len);
  }
}

}  // namespace nlpflow
