// Tokenizer: the interface the tokenize node, `nlpflow tokenize` and the
// offline graphs use, whatever the model family (WordPiece for BERT,
// byte-level BPE for RoBERTa/GPT-2), and LoadTokenizer, which picks the
// implementation from a Hugging Face tokenizer.json's model.type.
//
// Threads: a loaded tokenizer is immutable; Encode and EncodePair may run on
// any number of threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <string_view>
#include <utility>
#include <vector>

#include "common/encoding.h"
#include "common/status.h"

namespace nlpflow {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // One sequence, with the file's special tokens, truncated to its
  // max_length. Never padded. Input: UTF-8 (invalid bytes never read out of
  // bounds; what they become is up to the implementation).
  virtual Encoding Encode(std::string_view text) const = 0;
  // A pair, with the file's pair template and longest-first truncation.
  virtual Encoding EncodePair(std::string_view a, std::string_view b) const = 0;

  virtual int32_t pad_id() const = 0;
  // One more than the largest id the tokenizer can produce.
  virtual size_t vocab_size() const = 0;

  // Truncation in tokens, special tokens included (0 = none), replacing the
  // file's own. The model stack sets the model's length with it, whatever
  // the tokenizer type: a file saved without truncation (XLM-R's, RoBERTa's)
  // must not let a long text run past the model's positions. REQUIRES: called
  // before Encode runs on any thread.
  virtual void set_max_length(int max_length) = 0;

  // What mapping results back to text needs (token classification, as
  // Hugging Face's pipeline does it). The defaults suit a tokenizer that
  // cannot say; WordPiece and byte-level BPE implement them.
  //
  // The id of the unknown token; -1 if none.
  virtual int32_t unk_id() const { return -1; }
  // The token of an id as Hugging Face's convert_ids_to_tokens spells it
  // ("##ing"; byte-level BPE: "Ġworld"); "" for an id it does not have.
  virtual std::string TokenString(int32_t id) const { return ""; }
  // Tokens (as TokenString spells them) back to text, as Hugging Face's
  // convert_tokens_to_string does with the tokenizer's decoder.
  virtual std::string DecodeTokens(const std::vector<std::string>& tokens) const;
  // The prefix of word-continuing pieces ("##" for WordPiece); "" when the
  // model has none (byte-level BPE).
  virtual std::string continuing_subword_prefix() const { return ""; }
};

// The padding section of a tokenizer.json. Encode never pads; callers that
// must reproduce Hugging Face's encode() output (`nlpflow tokenize`) apply it
// with Pad.
struct PaddingOptions {
  enum class Strategy { kNone, kBatchLongest, kFixed };
  Strategy strategy = Strategy::kNone;
  int fixed_length = 0;        // kFixed: the length to pad to
  int pad_to_multiple_of = 0;  // 0: none
  bool left = false;           // direction "Left"
  int32_t pad_id = 0;
  int32_t pad_type_id = 0;
};

// Pads one encoding as Hugging Face's encode() does for a batch of one:
// kFixed to fixed_length, kBatchLongest to its own length, then up to a
// multiple of pad_to_multiple_of. Pad tokens get offsets (0, 0). Never
// shortens.
void Pad(const PaddingOptions& padding, Encoding* encoding);

struct LoadedTokenizer {
  std::unique_ptr<Tokenizer> tokenizer;
  PaddingOptions padding;
  std::string model_type;  // "WordPiece", "BPE", "Unigram"
};

// PATH is a tokenizer.json or a model folder holding one (a folder with only
// vocab.txt loads as WordPiece, without padding). model.type "WordPiece",
// "BPE" (byte-level) or "Unigram" (SentencePiece). Errors name the file and the key.
Result<LoadedTokenizer> LoadTokenizer(const std::string& path);

// Hugging Face's LongestFirst truncation of a pair to `budget` tokens (special
// tokens already taken off): the shorter sequence keeps its length if the
// longer one can absorb the cut alone; otherwise both get half the budget,
// the longer one (or b, on a tie) the odd token. Returns {keep_a, keep_b};
// REQUIRES a_len + b_len > budget.
std::pair<size_t, size_t> LongestFirstKeep(size_t a_len, size_t b_len, size_t budget);

}  // namespace nlpflow
