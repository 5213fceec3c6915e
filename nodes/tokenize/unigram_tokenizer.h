// SentencePiece Unigram tokenizer (XLM-R, multilingual-e5, ALBERT, T5 and
// other SentencePiece models) with exact Hugging Face parity.
//
// Reproduces Hugging Face `tokenizers` (0.19.1) for a tokenizer.json with
// model.type "Unigram":
//   1. added tokens with normalized=false are matched in the raw text
//      (leftmost, longest; lstrip/rstrip take the whitespace next to them);
//      each stretch between them is handled on its own:
//   2. the normalizers (normalizer.h: Precompiled, NFKC, Lowercase, Strip,
//      Replace, in a Sequence or alone), then added tokens with
//      normalized=true matched in the normalized text;
//   3. the pre-tokenizers: WhitespaceSplit, and Metaspace (spaces become the
//      replacement "▁", which is prepended per prepend_scheme always / first
//      / never, and the text split before each "▁"), alone or in a Sequence;
//   4. each piece is segmented by Viterbi over the vocabulary (a byte trie):
//      the segmentation with the highest total score, a character with no
//      piece of its own scoring min_score - 10 as unknown; adjacent unknown
//      characters are fused into one token; with byte_fallback a token that
//      is not in the vocabulary becomes its bytes' <0xXX> pieces, otherwise
//      unk_id;
//   5. the post-processor (post_processor.h) and truncation.
// Ties, duplicate pieces (the later id wins, as in Hugging Face's map) and
// vocabulary entries such as "<s>" or "<0x41>" taking part in the Viterbi
// are all as Hugging Face has them.
//
// Offsets: byte ranges in the original text through the normalizers'
// alignments; a prepended "▁" shares the range of the character after it;
// byte-fallback tokens each carry the range of the whole unknown piece.
// Input: invalid UTF-8 bytes each read as U+FFFD.
//
// Threads: immutable after construction; Encode may run on many threads.
//
// Not supported (the loader refuses rather than approximate): other
// normalizers and pre-tokenizers, unk_id null, added tokens with
// single_word, truncation other than LongestFirst from the right.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "nodes/tokenize/normalizer.h"
#include "nodes/tokenize/post_processor.h"
#include "nodes/tokenize/tokenizer.h"

namespace nlpflow {

struct UnigramSpec {
  std::vector<std::pair<std::string, double>> vocab;  // piece, score; id = index
  int32_t unk_id = 0;
  bool byte_fallback = false;
  std::vector<NormalizerStep> normalizers;
  struct PreTokenizer {
    enum class Kind { kWhitespaceSplit, kMetaspace };
    enum class Prepend { kAlways, kFirst, kNever };
    Kind kind = Kind::kMetaspace;
    char32_t replacement = U'\u2581';
    Prepend prepend = Prepend::kAlways;
    bool split = true;
  };
  std::vector<PreTokenizer> pre_tokenizers;
  struct AddedToken {
    std::string content;
    int32_t id = 0;
    bool normalized = false;  // matched in the normalized text
    bool lstrip = false;
    bool rstrip = false;
  };
  std::vector<AddedToken> added_tokens;
  PostProcessorSpec post_processor;
  int32_t pad_id = 0;
  std::string source;  // prefixed to error messages
};

// A JSON number's text read as serde_json (Hugging Face's JSON reader) reads
// it without its float_roundtrip feature: the decimal digits as a u64 (digits
// beyond its range dropped), then one multiplication or division by a power
// of ten, so up to one ulp away from the correctly rounded value. Unigram
// scores must be read this way for Viterbi ties to break as in Hugging Face.
double SerdeF64(std::string_view text);

class UnigramTokenizer final : public Tokenizer {
 public:
  // A tokenizer.json with model.type "Unigram". Errors name the file and key.
  static Result<std::unique_ptr<UnigramTokenizer>> FromTokenizerJson(const std::string& path);
  static Result<std::unique_ptr<UnigramTokenizer>> FromSpec(UnigramSpec spec);

  UnigramTokenizer(const UnigramTokenizer&) = delete;
  UnigramTokenizer& operator=(const UnigramTokenizer&) = delete;

  Encoding Encode(std::string_view text) const override;
  Encoding EncodePair(std::string_view a, std::string_view b) const override;
  int32_t pad_id() const override { return pad_id_; }
  size_t vocab_size() const override { return vocab_size_; }
  void set_max_length(int max_length) override { post_processor_.set_max_length(max_length); }
  int32_t unk_id() const override { return unk_id_; }
  // The piece of an id ("▁world", "<0x41>"), or an added token's content.
  // DecodeTokens keeps the interface's default (the Metaspace and
  // ByteFallback decoders are not implemented).
  std::string TokenString(int32_t id) const override;

 private:
  using Tokens = TokenSequence;
  struct Scratch;
  struct TrieNode {
    int32_t id = -1;  // the piece ending here, or -1
  };
  UnigramTokenizer() : normalizer_({}) {}

  // Appends the tokens of text, stopping once out holds `limit`.
  void TokenizeSequence(std::string_view text, size_t limit, TokenSequence* out) const;
  // One stretch between raw added tokens: normalize, normalized added
  // tokens, pre-tokenize, model. Returns false once out holds `limit`.
  bool TokenizeSegment(std::string_view text, int32_t begin, int32_t end, size_t limit,
                       Scratch* s, TokenSequence* out) const;
  // Pre-tokenizers and model on one normalized stretch.
  bool TokenizeNormalized(NormalizedString* n, size_t limit, Scratch* s, TokenSequence* out) const;
  // Viterbi over one pre-tokenized piece.
  void TokenizePiece(const NormalizedString& n, size_t begin, size_t end, Scratch* s,
                     TokenSequence* out) const;
  // Finds the next added token of `normalized` kind in s[from, ...): its
  // match range after lstrip/rstrip, or false.
  bool FindAdded(std::string_view s, size_t from, bool normalized, size_t* match_begin,
                 size_t* match_end, int32_t* id) const;

  // Child of `node` on byte b, or -1.
  int32_t Child(int32_t node, unsigned char b) const;

  // Trie: nodes_ with edges in an open-addressing table keyed by
  // node << 8 | byte.
  std::vector<TrieNode> nodes_;
  struct Edge {
    uint64_t key = ~uint64_t{0};
    int32_t child = -1;
  };
  std::vector<Edge> edges_;
  uint64_t edge_mask_ = 0;
  int32_t root_children_[256];  // the root's edges, looked up most often

  std::vector<double> scores_;  // per id
  std::string arena_;
  std::vector<std::string_view> pieces_;  // per id
  double unk_score_ = 0;
  int32_t unk_id_ = 0;
  bool byte_fallback_ = false;
  int32_t byte_ids_[256];  // <0xXX>, -1 if absent

  Normalizer normalizer_;
  std::vector<UnigramSpec::PreTokenizer> pre_tokenizers_;
  std::vector<UnigramSpec::AddedToken> added_tokens_;
  // Added tokens by first byte, longest first, for each kind (0 raw, 1
  // normalized).
  std::vector<std::vector<uint32_t>> added_by_first_byte_[2];
  bool has_added_[2] = {false, false};
  PostProcessor post_processor_;
  int32_t pad_id_ = 0;
  size_t vocab_size_ = 0;
};

}  // namespace nlpflow
