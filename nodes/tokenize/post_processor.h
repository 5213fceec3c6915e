// PostProcessor: what every tokenizer does after its model (WordPiece, BPE,
// Unigram): truncation to max_length with the template's special tokens
// counted in (Hugging Face's LongestFirst for pairs) and the single or pair
// template (TemplateProcessing, BertProcessing, RobertaProcessing), which
// wraps the sequences in special tokens and sets their type ids.
//
// Threads: immutable once built; Single and Pair may run on many threads.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "nodes/tokenize/tokenizer.h"

namespace nlpflow {

// One sequence's tokens, before post-processing.
struct TokenSequence {
  std::vector<int32_t> ids;
  std::vector<std::pair<int32_t, int32_t>> offsets;

  size_t size() const { return ids.size(); }
  void Push(int32_t id, int32_t begin, int32_t end) {
    ids.push_back(id);
    offsets.emplace_back(begin, end);
  }
  void Truncate(size_t n) {
    if (ids.size() > n) {
      ids.resize(n);
      offsets.resize(n);
    }
  }
};

// A piece of a post-processing template: special tokens, or one of the two
// input sequences.
struct TemplatePiece {
  enum class Kind { kSpecial, kSequenceA, kSequenceB };
  Kind kind = Kind::kSpecial;
  std::vector<int32_t> ids;  // kSpecial: its ids (usually one)
  int32_t type_id = 0;
  std::string token;  // kSpecial: its name ("[CLS]"), for error messages
};

struct PostProcessorSpec {
  // Empty: the sequence(s) alone, A with type id 0 and B with 1.
  std::vector<TemplatePiece> single_template;
  std::vector<TemplatePiece> pair_template;
  // The most tokens an encoding has, special tokens included; 0 = none.
  // Negative values are treated as 0.
  int max_length = 0;
  // False: templates' special tokens are left out (and not counted).
  bool add_special_tokens = true;
};

class PostProcessor {
 public:
  PostProcessor() = default;
  // Validates that each template holds A once (and B once in the pair one,
  // never in the single one) and that every special id is below vocab_size.
  // Errors are prefixed with `source`.
  static Result<PostProcessor> Make(PostProcessorSpec spec, size_t vocab_size,
                                    const std::string& source);

  // Tokens of the text itself that Single keeps: what a tokenizer may stop
  // at (SIZE_MAX without truncation).
  size_t SingleBudget() const;
  size_t NumSpecialTokens(bool pair) const;

  // Encode and EncodePair of a tokenizer whose model is
  // tokenize(std::string_view text, size_t limit, TokenSequence* out), which
  // may stop once out holds `limit` tokens: a single text is tokenized up to
  // SingleBudget(); a pair completely (longest-first truncation needs both
  // lengths), then truncated.
  template <typename TokenizeFn>
  Encoding EncodeWith(std::string_view text, const TokenizeFn& tokenize) const {
    TokenSequence a;
    tokenize(text, SingleBudget(), &a);
    return Single(std::move(a));
  }
  template <typename TokenizeFn>
  Encoding EncodePairWith(std::string_view a_text, std::string_view b_text,
                          const TokenizeFn& tokenize) const {
    TokenSequence a, b;
    tokenize(a_text, std::numeric_limits<size_t>::max(), &a);
    tokenize(b_text, std::numeric_limits<size_t>::max(), &b);
    return Pair(std::move(a), std::move(b));
  }

  // Truncates a to SingleBudget() and lays out the single template.
  Encoding Single(TokenSequence a) const;
  // Longest-first truncation of both, then the pair template.
  Encoding Pair(TokenSequence a, TokenSequence b) const;

  const std::vector<TemplatePiece>& single_template() const { return single_; }
  const std::vector<TemplatePiece>& pair_template() const { return pair_; }
  int max_length() const { return max_length_; }
  void set_max_length(int max_length) { max_length_ = max_length < 0 ? 0 : max_length; }
  bool add_special_tokens() const { return add_special_tokens_; }

 private:
  void Assemble(const std::vector<TemplatePiece>& pieces, const TokenSequence& a,
                const TokenSequence* b, Encoding* out) const;

  std::vector<TemplatePiece> single_;
  std::vector<TemplatePiece> pair_;
  size_t num_special_single_ = 0;
  size_t num_special_pair_ = 0;
  int max_length_ = 0;
  bool add_special_tokens_ = true;
};

}  // namespace nlpflow
