// WordPiece tokenizer with exact Hugging Face parity for BERT-family models.
//
// Reproduces Hugging Face `tokenizers` (0.19.1): BertNormalizer, then
// BertPreTokenizer, then the WordPiece model, then the BERT template
// ([CLS] A [SEP], [CLS] A [SEP] B [SEP]) and longest-first truncation.
// Special-token strings written in the input ("[SEP]", "[MASK]") are matched
// before normalization and become their ids, as in Hugging Face, unless
// WordPieceOptions::split_special_tokens is set (so by default a user can
// put [SEP] or [MASK] into a text). Outputs are not padded.
//
// Threads: after construction (and set_max_length, if used) the tokenizer is
// immutable; Encode and EncodePair may run on any number of threads at once.
//
// Input: valid UTF-8 shorter than 2 GiB (offsets are int32); the decode node
// rejects anything else. Encode still never reads out of bounds on invalid
// UTF-8: each invalid byte reads as one U+FFFD, which clean_text (the
// default) then removes as Hugging Face would, so invalid bytes vanish from
// the tokens (without clean_text they end up in an [UNK]).
//
// Unicode: character classes, NFD, combining classes and lowercase come from
// utf8proc, corrected to Hugging Face's older tables where they differ (see
// hf_unicode.h). Checked against Hugging Face on every code point.
//
// Not supported (the loaders refuse them rather than approximate): added
// tokens with single_word, or with normalized=true unless their content is
// lowercase ASCII (all-mpnet-base-v2's "<unk>": matched case-insensitively,
// which is what matching in the lowercased text does for ASCII; a non-ASCII
// character that normalizes into one of its letters, e.g. "<ünk>", is not
// matched); truncation strategies other than LongestFirst, or from the left.
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

struct WordPieceOptions {
  // Remove NUL, U+FFFD and control/format characters; map every whitespace
  // character (\t \n \r included) to a space.
  bool clean_text = true;
  // Put spaces around CJK ideographs so that each becomes a word of its own.
  bool handle_chinese_chars = true;
  // Lowercase (Rust char::to_lowercase: full mapping, no context).
  bool lowercase = true;
  // NFD and drop nonspacing marks (café -> cafe). Unset: follows lowercase,
  // as Hugging Face's BertNormalizer does.
  std::optional<bool> strip_accents;

  // Special tokens, looked up in the vocabulary. unk_token must be present;
  // cls, sep and pad must be present for FromVocabFile; mask_token is
  // optional (used only to recognise "[MASK]" written in the input).
  std::string unk_token = "[UNK]";
  std::string cls_token = "[CLS]";
  std::string sep_token = "[SEP]";
  std::string pad_token = "[PAD]";
  std::string mask_token = "[MASK]";

  // Prefix of word-internal pieces ("##ing").
  std::string continuing_subword_prefix = "##";
  // Words longer than this (in code points, after normalization) become a
  // single unk_token without trying to split them.
  int max_input_chars_per_word = 100;

  // Wrap sequences in the template: [CLS] A [SEP] and [CLS] A [SEP] B [SEP].
  bool add_special_tokens = true;
  // If true, special-token strings in the input ("[SEP]") are tokenized as
  // ordinary text. False (Hugging Face's default): they become their ids.
  bool split_special_tokens = false;

  // Truncation: the most tokens an encoding has, special tokens included;
  // pairs are cut longest-first. 0 = no truncation. A value smaller than the
  // number of special tokens leaves only the special tokens. Negative values
  // are treated as 0.
  int max_length = 512;
};

// A piece of the post-processing template (post_processor.h).
using WordPieceTemplatePiece = TemplatePiece;

// A string matched verbatim in the raw input, before normalization, and
// turned into its id (Hugging Face's added tokens with normalized=false).
struct WordPieceAddedToken {
  std::string content;
  int32_t id = 0;
  // Special tokens are skipped when WordPieceOptions::split_special_tokens.
  bool special = true;
  // normalized=true with lowercase ASCII content: matched ignoring ASCII case.
  bool ascii_case_insensitive = false;
};

// Everything a tokenizer is built from; the loaders fill it in and
// WordPieceTokenizer::FromSpec validates it. Tests build small ones by hand.
struct WordPieceSpec {
  WordPieceOptions options;
  std::vector<std::pair<std::string, int32_t>> vocab;  // token, id (ids >= 0)
  std::vector<WordPieceAddedToken> added_tokens;
  // The post-processor. Unset: the BERT template from options.cls_token and
  // options.sep_token. Set and empty: no special tokens at all.
  std::optional<std::vector<WordPieceTemplatePiece>> single_template;
  std::optional<std::vector<WordPieceTemplatePiece>> pair_template;
  // Where the spec came from, prefixed to error messages ("x/vocab.txt").
  std::string source;
};

class WordPieceTokenizer final : public Tokenizer {
 public:
  // A vocab.txt: one token per line, the line number is the id. Options give
  // the normalization and the special tokens. Errors: NotFound naming the
  // path; InvalidArgument naming a special token missing from the vocab.
  static Result<std::unique_ptr<WordPieceTokenizer>> FromVocabFile(const std::string& vocab_path,
                                                                   WordPieceOptions options);

  // A Hugging Face tokenizer.json with a BertNormalizer (or none), a
  // BertPreTokenizer, a WordPiece model and a TemplateProcessing or
  // BertProcessing post-processor (or none). Takes the vocabulary, special
  // tokens, added tokens and truncation max_length from the file (0 when
  // truncation is null); padding is ignored except for its pad token. Errors
  // name the file and the offending key.
  static Result<std::unique_ptr<WordPieceTokenizer>> FromTokenizerJson(const std::string& path);

  // A model folder: tokenizer.json if present, else vocab.txt with options
  // from tokenizer_config.json when present (do_lower_case, strip_accents,
  // tokenize_chinese_chars, the special tokens, model_max_length).
  static Result<std::unique_ptr<WordPieceTokenizer>> FromModelDir(const std::string& dir);

  // Validates a spec (unk token present, template ids known, ...) and builds
  // the tokenizer. Errors name spec.source and the offending item.
  static Result<std::unique_ptr<WordPieceTokenizer>> FromSpec(WordPieceSpec spec);

  WordPieceTokenizer(const WordPieceTokenizer&) = delete;
  WordPieceTokenizer& operator=(const WordPieceTokenizer&) = delete;

  // One sequence: [CLS] text [SEP], truncated to max_length(). Offsets:
  // pieces of one character (a Hangul syllable split into jamo, "İ"
  // lowercased to two code points) each carry the whole character's range.
  Encoding Encode(std::string_view text) const override;
  // A pair: [CLS] a [SEP] b [SEP] with type ids 0 then 1; truncation removes
  // tokens from the longer sequence first (Hugging Face's LongestFirst).
  Encoding EncodePair(std::string_view a, std::string_view b) const override;

  // Sets truncation (0 = none). Not thread-safe with concurrent Encode; call
  // before sharing the tokenizer.
  void set_max_length(int max_length) override;
  int max_length() const { return options_.max_length; }

  int32_t pad_id() const override { return pad_id_; }
  int32_t cls_id() const { return cls_id_; }  // -1 if the template has none
  int32_t sep_id() const { return sep_id_; }  // -1 if the template has none
  int32_t unk_id() const override { return unk_id_; }
  // One more than the largest id the tokenizer can produce (vocabulary plus
  // added tokens): the size an embedding table must have.
  size_t vocab_size() const override { return vocab_size_; }
  const WordPieceOptions& options() const { return options_; }

  // The token string of an id, or "" if there is none. For tests and logs.
  std::string_view IdToToken(int32_t id) const;

  // IdToToken as a string.
  std::string TokenString(int32_t id) const override { return std::string(IdToToken(id)); }
  // As the tokenizers library's WordPiece decoder with cleanup (what BERT
  // tokenizer.json files name): a piece after the first loses its
  // continuing_subword_prefix, any other is preceded by a space; then " ."
  // becomes ".", " n't" "n't" and so on, per piece.
  std::string DecodeTokens(const std::vector<std::string>& tokens) const override;
  std::string continuing_subword_prefix() const override {
    return options_.continuing_subword_prefix;
  }

 private:
  using Tokens = TokenSequence;  // ids and offsets of one sequence
  struct Scratch;                // per-call buffers

  WordPieceTokenizer() = default;

  // Appends the tokens of text to *out, stopping once *out holds `limit`
  // tokens (SIZE_MAX: no limit).
  void TokenizeSequence(std::string_view text, size_t limit, Tokens* out) const;
  // Returns false once out holds `limit` tokens.
  bool TokenizeSegment(std::string_view text, size_t begin, size_t end, size_t limit,
                       Scratch* s, Tokens* out) const;
  // One non-ASCII character of the original text, at bytes [begin, end).
  void NormalizeChar(char32_t cp, int32_t begin, int32_t end, Scratch* s, Tokens* out) const;
  // Emits the combining marks held back for canonical reordering.
  void FlushMarks(Scratch* s, Tokens* out) const;
  // One normalized code point with the byte range it came from.
  void EmitNormalized(char32_t cp, std::pair<int32_t, int32_t> source, Scratch* s,
                      Tokens* out) const;
  // Tokenizes the word collected in s and clears it.
  void FlushWord(Scratch* s, Tokens* out) const;

  WordPieceOptions options_;
  bool strip_accents_ = true;  // options_.strip_accents resolved

  // Token bytes live in arena_; the tables' keys view into it.
  std::string arena_;
  std::vector<std::string_view> id_to_token_;
  // Word-initial pieces keyed by their text; word-internal pieces keyed by
  // their text without the prefix ("##ing" under "ing"), so that lookups are
  // slices of the word and never build a string.
  PieceTable initial_pieces_;
  PieceTable continuing_pieces_;

  // Added tokens by first byte, longest first (leftmost-longest matching).
  std::vector<WordPieceAddedToken> added_tokens_;
  std::vector<std::vector<uint32_t>> added_by_first_byte_;  // 256 lists of indexes

  // Templates and truncation (max_length mirrors options_.max_length).
  PostProcessor post_processor_;

  // What each ASCII byte does, resolved from the options (the fast path).
  enum class AsciiAction : uint8_t { kDrop, kSplit, kPunctuation, kAppend };
  struct AsciiEntry {
    AsciiAction action = AsciiAction::kAppend;
    char mapped = 0;  // the byte to append (lowercased)
  };
  AsciiEntry ascii_[128];

  int32_t unk_id_ = -1;
  int32_t cls_id_ = -1;
  int32_t sep_id_ = -1;
  int32_t pad_id_ = -1;
  size_t vocab_size_ = 0;
};

}  // namespace nlpflow
