// Token classification results mapped back to the text: entities from the
// per-token logits, exactly as Hugging Face's TokenClassificationPipeline
// (transformers 4.40, pipelines/token_classification.py) computes them for one
// text that fits the model:
//   - scores: softmax of each token's logits; special tokens are skipped;
//   - none: one entity per token (its best label, score, index, word = the
//     token as convert_ids_to_tokens spells it, the text for [UNK]);
//   - simple: those entities grouped: a token joins the group before it when
//     its tag (label without B-/I-) is the group's and it is not a B- tag;
//     the group's label is the first label after its first "-", its score the
//     mean of its tokens' scores, its word the tokens decoded;
//   - first | average | max: tokens are first merged into words (a token
//     joins the word before it when it is a subword: with a
//     continuing_subword_prefix when its spelling is longer than its text,
//     else when neither it nor the character before it is a space; [UNK]
//     never is); a word's label is that of its first token, of its mean
//     score vector, or of its token with the highest score; then the words
//     are grouped as in simple;
//   - entities whose label (or group) is "O" are dropped.
// start/end are code-point offsets into the text (Python's str indices, as
// the pipeline reports them), byte_start/byte_end the same in UTF-8 bytes.
//
// Special tokens are the ones with an empty offset range (the template's
// [CLS]/[SEP]; no token read from the text is empty). Tokens of a pair's
// second text (type id 1) are skipped too: the pipeline takes one text.
#pragma once

#include <string>
#include <string_view>

#include "common/encoding.h"
#include "common/model_output.h"
#include "common/status.h"
#include "nodes/tokenize/tokenizer.h"

namespace nlpflow {

enum class Aggregation { kNone, kSimple, kFirst, kAverage, kMax };

// "none", "simple", "first", "average" or "max"; INVALID_ARGUMENT otherwise.
Result<Aggregation> ParseAggregation(std::string_view name);
const char* AggregationName(Aggregation aggregation);

// Fills output->entities (and output->grouped) from output->logits.
// INVALID_ARGUMENT when the logits are not one row of num_labels per token
// of `encoding`, or a label id has no name. Thread-safe.
Status AggregateTokens(Aggregation aggregation, const Tokenizer& tokenizer, std::string_view text,
                       const Encoding& encoding, TokenClassificationOutput* output);

}  // namespace nlpflow
