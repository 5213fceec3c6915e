// Labelled texts for `nlpflow finetune`: JSON lines {"text": "...", "label":
// NAME or ID}, and the label set they are trained under.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace nlpflow {

struct LabeledText {
  std::string text;
  // The line's "label": a string is a name (label_id -1 until resolved), a
  // non-negative integer an id (label_name empty).
  std::string label_name;
  int64_t label_id = -1;
  int64_t line = 0;  // 1-based line number in the file
};

// Every non-blank line of `path` must be a JSON object with a string "text"
// and a "label" that is a string or a non-negative integer; other keys are
// ignored. `limit` > 0 keeps the first `limit` texts. Errors are one line
// naming the file and line ("train.jsonl:3: ..."): NOT_FOUND when the file
// cannot be read, INVALID_ARGUMENT for a malformed line or a file without
// any text (empty).
Result<std::vector<LabeledText>> ReadLabeledTexts(const std::string& path, int64_t limit = 0);

// The label names by id for `train` (read from `train_path`):
// - `given` non-empty (--labels): those names, in that order; a label name
//   must be one of them, an id must be below their number.
// - otherwise, names only: the distinct names, sorted (so "ham" is 0 and
//   "spam" 1); ids only: 0..largest id, named LABEL_<id> as transformers
//   names them. Names and ids mixed need `given`.
// Then every text of `train` gets its label_id. INVALID_ARGUMENT, one line
// naming the file and line, for an unknown name, an id out of range, a
// duplicate in `given`, a mix of names and ids, or a training set of one
// class only.
Result<std::vector<std::string>> ResolveLabels(const std::string& train_path,
                                               std::vector<LabeledText>* train,
                                               const std::vector<std::string>& given);

// Sets the label_id of every text of `texts` (read from `path`) under
// `labels`; INVALID_ARGUMENT naming the file and line for a name not among
// them or an id out of range.
Status ApplyLabels(const std::string& path, const std::vector<std::string>& labels,
                   std::vector<LabeledText>* texts);

}  // namespace nlpflow
