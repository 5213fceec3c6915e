#include "nodes/tokenize/post_processor.h"

#include <limits>

#include "nodes/tokenize/truncation.h"

namespace nlpflow {

Result<PostProcessor> PostProcessor::Make(PostProcessorSpec spec, size_t vocab_size,
                                          const std::string& source) {
  using Kind = TemplatePiece::Kind;
  auto sequence = [](Kind kind, int32_t type_id) {
    TemplatePiece p;
    p.kind = kind;
    p.type_id = type_id;
    return p;
  };
  if (spec.single_template.empty()) spec.single_template = {sequence(Kind::kSequenceA, 0)};
  if (spec.pair_template.empty()) {
    spec.pair_template = {sequence(Kind::kSequenceA, 0), sequence(Kind::kSequenceB, 1)};
  }
  PostProcessor p;
  for (const bool pair : {false, true}) {
    const auto& pieces = pair ? spec.pair_template : spec.single_template;
    const char* name = pair ? "pair template" : "single template";
    int num_a = 0, num_b = 0;
    size_t num_special = 0;
    for (const auto& piece : pieces) {
      num_a += piece.kind == Kind::kSequenceA;
      num_b += piece.kind == Kind::kSequenceB;
      if (piece.kind != Kind::kSpecial) continue;
      if (piece.ids.empty()) {
        return Status::InvalidArgument(source + ": " + name + ": \"" + piece.token +
                                       "\" has no ids");
      }
      for (int32_t id : piece.ids) {
        if (id < 0 || static_cast<size_t>(id) >= vocab_size) {
          return Status::InvalidArgument(source + ": " + name + ": \"" + piece.token +
                                         "\" has id " + std::to_string(id) +
                                         ", outside the vocabulary");
        }
      }
      num_special += piece.ids.size();
    }
    if (num_a != 1 || num_b != (pair ? 1 : 0)) {
      return Status::InvalidArgument(source + ": " + name + ": must contain sequence A once" +
                                     (pair ? " and sequence B once" : " and no sequence B"));
    }
    (pair ? p.num_special_pair_ : p.num_special_single_) = num_special;
  }
  p.single_ = std::move(spec.single_template);
  p.pair_ = std::move(spec.pair_template);
  p.set_max_length(spec.max_length);
  p.add_special_tokens_ = spec.add_special_tokens;
  return p;
}

size_t PostProcessor::NumSpecialTokens(bool pair) const {
  if (!add_special_tokens_) return 0;
  return pair ? num_special_pair_ : num_special_single_;
}

size_t PostProcessor::SingleBudget() const {
  return TruncationBudget(max_length_, NumSpecialTokens(false));
}

Encoding PostProcessor::Single(TokenSequence a) const {
  a.Truncate(SingleBudget());
  Encoding out;
  Assemble(single_, a, nullptr, &out);
  return out;
}

Encoding PostProcessor::Pair(TokenSequence a, TokenSequence b) const {
  const size_t budget = TruncationBudget(max_length_, NumSpecialTokens(true));
  if (a.size() + b.size() > budget) {
    const auto [keep_a, keep_b] = LongestFirstKeep(a.size(), b.size(), budget);
    a.Truncate(keep_a);
    b.Truncate(keep_b);
  }
  Encoding out;
  Assemble(pair_, a, &b, &out);
  return out;
}

void PostProcessor::Assemble(const std::vector<TemplatePiece>& pieces, const TokenSequence& a,
                             const TokenSequence* b, Encoding* out) const {
  const size_t total = a.size() + (b ? b->size() : 0) + NumSpecialTokens(b != nullptr);
  out->ids.reserve(total);
  out->type_ids.reserve(total);
  out->offsets.reserve(total);
  for (const auto& p : pieces) {
    if (p.kind == TemplatePiece::Kind::kSpecial) {
      if (!add_special_tokens_) continue;
      for (int32_t id : p.ids) {
        out->ids.push_back(id);
        out->offsets.emplace_back(0, 0);
      }
      out->type_ids.insert(out->type_ids.end(), p.ids.size(), p.type_id);
      continue;
    }
    const TokenSequence* seq = p.kind == TemplatePiece::Kind::kSequenceA ? &a : b;
    if (seq == nullptr) continue;
    out->ids.insert(out->ids.end(), seq->ids.begin(), seq->ids.end());
    out->offsets.insert(out->offsets.end(), seq->offsets.begin(), seq->offsets.end());
    out->type_ids.insert(out->type_ids.end(), seq->size(), p.type_id);
  }
}

}  // namespace nlpflow
