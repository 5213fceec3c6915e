#include "nodes/infer/token_aggregation.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace nlpflow {
namespace {

// Code points in a UTF-8 string (a continuation byte starts none).
int64_t CodePoints(std::string_view s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

struct PreEntity {
  std::string word;
  std::vector<float> scores;  // softmax over the labels
  int64_t index = 0;
  int64_t start = 0, end = 0;            // code points
  int64_t byte_start = 0, byte_end = 0;  // bytes
  bool is_subword = false;
};

// An entity before grouping: a token (none, simple) or a word.
struct Tagged {
  std::string entity;
  float score = 0;
  std::string word;
  int64_t index = -1;
  int64_t start = 0, end = 0, byte_start = 0, byte_end = 0;
};

size_t ArgMax(const std::vector<float>& v) {
  return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// The pipeline's get_tag: ("B", tag), ("I", tag), or ("I", label) without a prefix.
std::pair<char, std::string_view> Tag(std::string_view label) {
  if (label.substr(0, 2) == "B-") return {'B', label.substr(2)};
  if (label.substr(0, 2) == "I-") return {'I', label.substr(2)};
  return {'I', label};
}

}  // namespace

Result<Aggregation> ParseAggregation(std::string_view name) {
  if (name == "none") return Aggregation::kNone;
  if (name == "simple") return Aggregation::kSimple;
  if (name == "first") return Aggregation::kFirst;
  if (name == "average") return Aggregation::kAverage;
  if (name == "max") return Aggregation::kMax;
  return Status::InvalidArgument("aggregation '" + std::string(name) +
                                 "' is not one of none, simple, first, average, max");
}

const char* AggregationName(Aggregation aggregation) {
  switch (aggregation) {
    case Aggregation::kNone: return "none";
    case Aggregation::kSimple: return "simple";
    case Aggregation::kFirst: return "first";
    case Aggregation::kAverage: return "average";
    case Aggregation::kMax: return "max";
  }
  return "?";
}

Status AggregateTokens(Aggregation aggregation, const Tokenizer& tokenizer, std::string_view text,
                       const Encoding& encoding, TokenClassificationOutput* output) {
  const int64_t n_labels = output->num_labels;
  const size_t n_tokens = encoding.ids.size();
  if (n_labels <= 0 || output->logits.size() != n_tokens * static_cast<size_t>(n_labels)) {
    return Status::InvalidArgument("token classification: " +
                                   std::to_string(output->logits.size()) + " logits for " +
                                   std::to_string(n_tokens) + " tokens of " +
                                   std::to_string(n_labels) + " labels");
  }
  if (output->labels == nullptr || static_cast<int64_t>(output->labels->size()) != n_labels) {
    return Status::InvalidArgument("token classification: " + std::to_string(n_labels) +
                                   " labels without as many names");
  }
  const std::vector<std::string>& names = *output->labels;
  output->grouped = aggregation != Aggregation::kNone;
  output->entities.clear();

  // Code point index of every byte boundary of the text.
  std::vector<int64_t> cp(text.size() + 1, 0);
  for (size_t b = 0; b < text.size(); ++b) {
    cp[b + 1] = cp[b] + ((static_cast<unsigned char>(text[b]) & 0xC0) != 0x80);
  }
  auto code_point = [&](int32_t byte) {
    return cp[std::clamp<size_t>(static_cast<size_t>(std::max(byte, 0)), 0, text.size())];
  };
  const std::string prefix = tokenizer.continuing_subword_prefix();

  // gather_pre_entities
  std::vector<PreEntity> pre;
  for (size_t i = 0; i < n_tokens; ++i) {
    const auto [b, e] = encoding.offsets[i];
    const bool second_text = i < encoding.type_ids.size() && encoding.type_ids[i] != 0;
    if (b >= e || second_text) continue;
    PreEntity p;
    const float* l = &output->logits[i * n_labels];
    // As the pipeline's numpy: exp(logits - max) / sum, in float.
    const float m = *std::max_element(l, l + n_labels);
    float sum = 0;
    p.scores.resize(static_cast<size_t>(n_labels));
    for (int64_t k = 0; k < n_labels; ++k) sum += p.scores[k] = std::exp(l[k] - m);
    for (float& s : p.scores) s /= sum;
    p.index = static_cast<int64_t>(i);
    p.byte_start = b;
    p.byte_end = e;
    p.start = code_point(b);
    p.end = code_point(e);
    const std::string_view word_ref =
        text.substr(static_cast<size_t>(b), static_cast<size_t>(e - b));
    p.word = tokenizer.TokenString(encoding.ids[i]);
    if (!prefix.empty()) {
      p.is_subword = CodePoints(p.word) != CodePoints(word_ref);
    } else {
      // " " not in sentence[start - 1 : start + 1]; a space is one byte.
      p.is_subword = b > 0 && text[static_cast<size_t>(b) - 1] != ' ' &&
                     text[static_cast<size_t>(b)] != ' ';
    }
    if (encoding.ids[i] == tokenizer.unk_id()) {
      p.word = std::string(word_ref);
      p.is_subword = false;
    }
    pre.push_back(std::move(p));
  }

  // aggregate: tokens (none, simple) or words (first, average, max).
  std::vector<Tagged> tagged;
  auto from_scores = [&](const std::vector<float>& scores, Tagged* t) {
    const size_t best = ArgMax(scores);
    t->entity = names[best];
    t->score = scores[best];
  };
  if (aggregation == Aggregation::kNone || aggregation == Aggregation::kSimple) {
    for (const PreEntity& p : pre) {
      Tagged t;
      from_scores(p.scores, &t);
      t.index = p.index;
      t.word = p.word;
      t.start = p.start, t.end = p.end, t.byte_start = p.byte_start, t.byte_end = p.byte_end;
      tagged.push_back(std::move(t));
    }
  } else {
    auto word_of = [&](size_t first, size_t last) {  // pre[first, last)
      Tagged t;
      std::vector<std::string> tokens;
      for (size_t i = first; i < last; ++i) tokens.push_back(pre[i].word);
      t.word = tokenizer.DecodeTokens(tokens);
      if (aggregation == Aggregation::kFirst) {
        from_scores(pre[first].scores, &t);
      } else if (aggregation == Aggregation::kMax) {
        size_t best = first;
        float best_score = *std::max_element(pre[first].scores.begin(), pre[first].scores.end());
        for (size_t i = first + 1; i < last; ++i) {
          const float s = *std::max_element(pre[i].scores.begin(), pre[i].scores.end());
          if (s > best_score) best = i, best_score = s;
        }
        from_scores(pre[best].scores, &t);
      } else {
        std::vector<float> mean(static_cast<size_t>(n_labels), 0.f);
        for (size_t i = first; i < last; ++i) {
          for (int64_t k = 0; k < n_labels; ++k) mean[k] += pre[i].scores[k];
        }
        for (float& v : mean) v /= static_cast<float>(last - first);
        from_scores(mean, &t);
      }
      t.start = pre[first].start, t.byte_start = pre[first].byte_start;
      t.end = pre[last - 1].end, t.byte_end = pre[last - 1].byte_end;
      return t;
    };
    size_t begin = 0;
    for (size_t i = 1; i <= pre.size(); ++i) {
      if (i == pre.size() || !pre[i].is_subword) {
        if (i > begin) tagged.push_back(word_of(begin, i));
        begin = i;
      }
    }
  }

  if (aggregation == Aggregation::kNone) {
    for (Tagged& t : tagged) {
      if (t.entity == "O") continue;
      output->entities.push_back({std::move(t.entity), t.score, std::move(t.word), t.index,
                                  t.start, t.end, t.byte_start, t.byte_end});
    }
    return Status::Ok();
  }

  // group_entities
  auto flush = [&](size_t first, size_t last) {  // tagged[first, last)
    TokenEntity g;
    const std::string& label = tagged[first].entity;
    const size_t dash = label.find('-');
    g.entity = dash == std::string::npos ? label : label.substr(dash + 1);
    float sum = 0;
    std::vector<std::string> words;
    for (size_t i = first; i < last; ++i) {
      sum += tagged[i].score;
      words.push_back(tagged[i].word);
    }
    g.score = sum / static_cast<float>(last - first);
    g.word = tokenizer.DecodeTokens(words);
    g.start = tagged[first].start, g.byte_start = tagged[first].byte_start;
    g.end = tagged[last - 1].end, g.byte_end = tagged[last - 1].byte_end;
    if (g.entity != "O") output->entities.push_back(std::move(g));
  };
  size_t begin = 0;
  for (size_t i = 1; i <= tagged.size(); ++i) {
    if (i == tagged.size()) {
      if (i > begin) flush(begin, i);
      break;
    }
    const auto [bi, tag] = Tag(tagged[i].entity);
    const auto [last_bi, last_tag] = Tag(tagged[i - 1].entity);
    if (!(tag == last_tag && bi != 'B')) {
      flush(begin, i);
      begin = i;
    }
  }
  return Status::Ok();
}

}  // namespace nlpflow
