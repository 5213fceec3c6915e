// A fake tokenizer and a fake model for tests of the graphs: no model files,
// no LibTorch, outputs that are a known function of the input, so a test can
// check that every record got its own output.
//
// FakeTokenizer: [CLS]=1, one id per whitespace-separated word (10 + the
// word's length, at most 98; the word "poison" is 99), [SEP]=2; pad id 0.
// FakeModel: for each row, from its real ids:
//   embedding:               {number of ids, sum of ids}
//   sequence-classification: logits {0, number of ids, sum of ids / 10}
//   token-classification:    per token, logits {id, 0, 0} (labels O, B-X, I-X)
// A batch holding id 99 fails: INTERNAL "fake model: poison in row R".
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/infer/model.h"
#include "nodes/tokenize/tokenizer.h"

namespace nlpflow::testing {

class FakeTokenizer : public Tokenizer {
 public:
  Encoding Encode(std::string_view text) const override {
    Encoding e;
    Add(&e, 1, 0, {0, 0});
    Words(text, 0, &e);
    Add(&e, 2, 0, {0, 0});
    return e;
  }
  Encoding EncodePair(std::string_view a, std::string_view b) const override {
    Encoding e = Encode(a);
    Words(b, 1, &e);
    Add(&e, 2, 1, {0, 0});
    return e;
  }
  int32_t pad_id() const override { return 0; }
  size_t vocab_size() const override { return 100; }
  void set_max_length(int) override {}

 private:
  static void Add(Encoding* e, int32_t id, int32_t type, std::pair<int32_t, int32_t> offset) {
    e->ids.push_back(id);
    e->type_ids.push_back(type);
    e->offsets.push_back(offset);
  }
  static void Words(std::string_view text, int32_t type, Encoding* e) {
    size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && text[i] == ' ') ++i;
      const size_t begin = i;
      while (i < text.size() && text[i] != ' ') ++i;
      if (i == begin) break;
      const std::string_view word = text.substr(begin, i - begin);
      const int32_t id = word == "poison" ? 99 : static_cast<int32_t>(std::min<size_t>(98, 10 + word.size()));
      Add(e, id, type, {static_cast<int32_t>(begin), static_cast<int32_t>(i)});
    }
  }
};

class FakeModel : public Model {
 public:
  explicit FakeModel(ModelTask task = ModelTask::kEmbedding) : task_(task) {
    if (task != ModelTask::kEmbedding) {
      labels_ = std::make_shared<const std::vector<std::string>>(
          task == ModelTask::kTokenClassification
              ? std::vector<std::string>{"O", "B-X", "I-X"}
              : std::vector<std::string>{"none", "short", "long"});
    }
  }
  ModelTask task() const override { return task_; }
  const std::vector<std::string>& labels() const override { return *labels_; }
  int64_t max_positions() const override { return 512; }

  Result<std::vector<ModelOutput>> Run(const TokenBatch& b) const override {
    NLPFLOW_RETURN_IF_ERROR(ValidateTokenBatch(b, 512, 100, 2));
    batches_.fetch_add(1);
    std::vector<ModelOutput> out;
    for (int64_t r = 0; r < b.batch; ++r) {
      std::vector<int64_t> ids;
      for (int64_t t = 0; t < b.seq_len && b.attention_mask[r * b.seq_len + t] == 1; ++t) {
        ids.push_back(b.input_ids[r * b.seq_len + t]);
      }
      float sum = 0;
      for (int64_t id : ids) {
        if (id == 99) return Status::Internal("fake model: poison in row " + std::to_string(r));
        sum += static_cast<float>(id);
      }
      const float n = static_cast<float>(ids.size());
      if (task_ == ModelTask::kEmbedding) {
        out.emplace_back(EmbeddingOutput{{n, sum}});
      } else if (task_ == ModelTask::kSequenceClassification) {
        ClassificationOutput c;
        c.logits = {0.f, n, sum / 10.f};
        float total = 0;
        for (float l : c.logits) total += std::exp(l);
        for (float l : c.logits) c.scores.push_back(std::exp(l) / total);
        c.labels = labels_;
        out.emplace_back(std::move(c));
      } else {
        TokenClassificationOutput t;
        t.num_labels = 3;
        t.labels = labels_;
        for (int64_t id : ids) t.logits.insert(t.logits.end(), {static_cast<float>(id), 0.f, 0.f});
        out.emplace_back(std::move(t));
      }
    }
    return out;
  }

  // Batches Run was called with (failed ones included).
  int64_t batches() const { return batches_.load(); }

 private:
  const ModelTask task_;
  LabelNames labels_ = std::make_shared<const std::vector<std::string>>();
  mutable std::atomic<int64_t> batches_{0};
};

}  // namespace nlpflow::testing
