// Byte-level BPE (GPT-2 / RoBERTa family) with exact Hugging Face parity.
//
// Reproduces Hugging Face `tokenizers` (0.19.1) for a tokenizer.json with no
// normalizer, a ByteLevel pre-tokenizer, a BPE model and a RobertaProcessing,
// TemplateProcessing, ByteLevel or no post-processor:
//   1. added tokens are matched verbatim in the raw text (leftmost, longest)
//      and become their ids; the text between them is tokenized on its own;
//   2. the GPT-2 split pattern
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      cuts each piece of text into words (implemented with utf8proc
//      categories, not a regex engine: see byte_level.h);
//   3. each word's bytes are merged by rank (lowest first, leftmost on ties).
// The vocabulary's byte-to-unicode spelling ("Ġthe") is undone at load time,
// so encoding works on the text's own bytes and never builds strings.
//
// Invalid UTF-8 needs no repair here: an invalid byte counts as one
// character of its own (neither letter, number nor space) and is encoded as
// its byte, as every byte has a token.
//
// Offsets: byte ranges of each token in the original text; with trim_offsets
// (RoBERTa's default) a leading space is left out of a word's first token.
//
// Threads: immutable after construction; Encode may run on many threads.
//
// Not supported (the loader refuses rather than approximate): normalizers,
// pre-tokenizers other than ByteLevel, dropout, continuing_subword_prefix,
// end_of_word_suffix, byte_fallback, added tokens with lstrip, rstrip,
// single_word or normalized=true.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "nodes/tokenize/piece_table.h"
#include "nodes/tokenize/post_processor.h"
#include "nodes/tokenize/tokenizer.h"

namespace nlpflow {

// A piece of the post-processing template (post_processor.h).
using BpeTemplatePiece = TemplatePiece;

// Everything a BPE tokenizer is built from, as the file spells it; the loader
// fills it in and FromSpec validates it.
struct BpeSpec {
  // Tokens in byte-to-unicode spelling ("Ġthe"), ids >= 0.
  std::vector<std::pair<std::string, int32_t>> vocab;
  // Merges in rank order, both sides in byte-to-unicode spelling.
  std::vector<std::pair<std::string, std::string>> merges;
  struct AddedToken {
    std::string content;  // raw UTF-8
    int32_t id = 0;
  };
  std::vector<AddedToken> added_tokens;
  std::optional<std::string> unk_token;
  bool ignore_merges = false;     // a word found whole in the vocab is one token
  bool add_prefix_space = false;  // ByteLevel: prepend " " to each text segment
  bool use_regex = true;          // ByteLevel: split with the GPT-2 pattern
  bool trim_offsets = true;
  std::vector<BpeTemplatePiece> single_template;  // empty: no special tokens
  std::vector<BpeTemplatePiece> pair_template;
  int max_length = 0;  // truncation, special tokens included; 0 = none
  int32_t pad_id = 0;
  std::string source;  // prefixed to error messages
};

class BpeTokenizer final : public Tokenizer {
 public:
  // A tokenizer.json with model.type "BPE". Errors name the file and key.
  static Result<std::unique_ptr<BpeTokenizer>> FromTokenizerJson(const std::string& path);
  static Result<std::unique_ptr<BpeTokenizer>> FromSpec(BpeSpec spec);

  BpeTokenizer(const BpeTokenizer&) = delete;
  BpeTokenizer& operator=(const BpeTokenizer&) = delete;

  Encoding Encode(std::string_view text) const override;
  Encoding EncodePair(std::string_view a, std::string_view b) const override;
  int32_t pad_id() const override { return pad_id_; }
  size_t vocab_size() const override { return vocab_size_; }
  void set_max_length(int max_length) override { post_processor_.set_max_length(max_length); }

 private:
  using Tokens = TokenSequence;
  struct Scratch;
  BpeTokenizer() = default;

  // Appends the tokens of text, stopping once out holds `limit`.
  void TokenizeSequence(std::string_view text, size_t limit, Tokens* out) const;
  // A stretch of text between added tokens.
  bool TokenizeSegment(std::string_view text, size_t begin, size_t end, size_t limit,
                       Scratch* s, Tokens* out) const;
  // One word: merges its bytes. word[k] is at byte offset + k of the text;
  // offsets are clamped to min_offset (a prefix space has no bytes there).
  void TokenizeWord(std::string_view word, int32_t offset, int32_t min_offset, Scratch* s,
                    Tokens* out) const;

  // Merge table: (left id, right id) -> rank and merged id, open addressing.
  struct MergeSlot {
    uint64_t key = ~uint64_t{0};  // left << 32 | right; all ones: empty
    int32_t rank = 0;
    int32_t merged = 0;
  };
  const MergeSlot* FindMerge(int32_t left, int32_t right) const;

  std::string arena_;      // raw bytes of every token
  PieceTable vocab_;       // raw bytes -> id
  int32_t byte_ids_[256];  // the id of each single byte, -1 if none
  std::vector<MergeSlot> merges_;
  uint64_t merge_mask_ = 0;

  std::vector<BpeSpec::AddedToken> added_tokens_;
  std::vector<std::vector<uint32_t>> added_by_first_byte_;  // longest first

  PostProcessor post_processor_;  // templates and truncation
  int32_t unk_id_ = -1;
  bool ignore_merges_ = false;
  bool add_prefix_space_ = false;
  bool use_regex_ = true;
  bool trim_offsets_ = true;
  int32_t pad_id_ = 0;
  size_t vocab_size_ = 0;
};

}  // namespace nlpflow
