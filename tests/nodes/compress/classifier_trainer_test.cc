// FinetuneClassifier on the tiny BERT of tests/fixtures/heads/sequence
// (2 layers, hidden 32): the loss falls, the folder has Hugging Face's
// BertForSequenceClassification layout, nodes/infer's BertClassifier loads
// it with the trainer's logits, and bad inputs fail with one line.
// (transformers' logits of the same folder: finetune_parity_test.cc.)
#include "nodes/compress/classifier_trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nodes/infer/bert_classifier.h"
#include "nodes/infer/safetensors.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kFixture = std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/heads/sequence";

std::string TempPath(const std::string& name) {
  return (fs::temp_directory_path() / ("nlpflow_ct_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string Temp(const std::string& name) {
  fs::remove_all(TempPath(name));
  return TempPath(name);
}

// A separable task over the fixture's vocabulary (ids 5..129): label 0
// texts use ids 5..40, label 1 texts 41..76, label 2 texts 77..112, each
// [CLS] ... [SEP] with 2 to 9 tokens between.
std::vector<ClassifierExample> Examples(int n, int labels, int salt) {
  std::vector<ClassifierExample> out;
  for (int i = 0; i < n; ++i) {
    ClassifierExample e;
    e.label = i % labels;
    e.ids.push_back(2);
    const int len = 2 + (i * 7 + salt) % 8;
    for (int t = 0; t < len; ++t) e.ids.push_back(5 + 36 * e.label + (i * 13 + t * 5 + salt) % 36);
    e.ids.push_back(3);
    out.push_back(std::move(e));
  }
  return out;
}

// The fixture with config.json's initializer_range at transformers' 0.02
// (the fixture has 0.5, for logits that differ clearly): the new classifier
// then starts near chance (loss ln 3), so a falling loss means learning.
std::string Encoder() {
  static const std::string dir = [] {
    const std::string d = Temp("encoder");
    fs::copy(kFixture, d, fs::copy_options::recursive);
    std::ifstream in(d + "/config.json");
    nlohmann::json j = nlohmann::json::parse(in);
    j["initializer_range"] = 0.02;
    std::ofstream(d + "/config.json") << j.dump(2);
    std::atexit([] { fs::remove_all(TempPath("encoder")); });
    return d;
  }();
  return dir;
}

FinetuneOptions Options(const std::string& out) {
  FinetuneOptions o;
  o.encoder_dir = Encoder();
  o.out_dir = out;
  o.labels = {"a", "b", "c"};
  o.epochs = 12;
  o.batch_size = 8;
  o.learning_rate = 3e-3;
  o.dropout = 0;
  return o;
}

// BertClassifier's logits of `examples`, one right-padded batch.
std::vector<float> ServedLogits(const std::string& dir,
                                const std::vector<ClassifierExample>& examples) {
  ClassifierOptions co;
  co.path = dir;
  auto model = BertClassifier::Load(co);
  EXPECT_TRUE(model.ok()) << model.status().message();
  if (!model.ok()) return {};
  EXPECT_EQ((*model)->task(), ModelTask::kSequenceClassification);
  TokenBatch b;
  b.batch = static_cast<int64_t>(examples.size());
  for (const auto& e : examples) b.seq_len = std::max<int64_t>(b.seq_len, e.ids.size());
  for (const auto& e : examples) {
    for (int64_t t = 0; t < b.seq_len; ++t) {
      const bool real = t < static_cast<int64_t>(e.ids.size());
      b.input_ids.push_back(real ? e.ids[t] : 0);
      b.attention_mask.push_back(real ? 1 : 0);
    }
  }
  auto rows = (*model)->Run(b);
  EXPECT_TRUE(rows.ok()) << rows.status().message();
  std::vector<float> logits;
  if (rows.ok()) {
    for (const ModelOutput& r : *rows) {
      const auto* c = std::get_if<ClassificationOutput>(&r);
      EXPECT_NE(c, nullptr);
      if (c != nullptr) logits.insert(logits.end(), c->logits.begin(), c->logits.end());
    }
  }
  return logits;
}

TEST(ClassifierTrainer, LossFallsAndTheFolderServesTheTrainersLogits) {
  const std::string out = Temp("model");
  const auto train = Examples(48, 3, 0);
  const auto eval = Examples(12, 3, 5);
  std::vector<int64_t> progress_steps;
  std::vector<int> epochs_done;
  FinetuneOptions o = Options(out);
  o.progress = [&](const TrainProgress& p) { progress_steps.push_back(p.step); };
  o.epoch_done = [&](int epoch, double, const ClassifierMetrics& m) {
    epochs_done.push_back(epoch);
    EXPECT_EQ(m.texts, 12);
  };
  auto report = FinetuneClassifier(o, train, eval);
  ASSERT_TRUE(report.ok()) << report.status().message();

  EXPECT_EQ(report->train.steps, 12 * 6);
  EXPECT_EQ(progress_steps.size(), 72u);
  EXPECT_EQ(progress_steps.back(), 72);
  EXPECT_EQ(epochs_done.size(), 12u);
  EXPECT_EQ(epochs_done.back(), 12);
  ASSERT_EQ(report->train.epoch_losses.size(), 12u);
  // Chance is ln 3 = 1.10; the task is separable by token ids.
  EXPECT_NEAR(report->train.first_loss, std::log(3.0), 0.1);
  EXPECT_LT(report->train.last_loss, 0.5 * report->train.first_loss);
  EXPECT_LT(report->train.epoch_losses.back(), 0.5 * report->train.epoch_losses.front());
  ASSERT_EQ(report->epoch_eval.size(), 12u);
  EXPECT_EQ(report->epoch_eval.back().label_f1.size(), 3u);
  EXPECT_EQ(report->eval_predicted.size(), 12u);

  // config.json: the head's keys, the encoder's sizes.
  std::ifstream in(out + "/config.json");
  const nlohmann::json config = nlohmann::json::parse(in);
  EXPECT_EQ(config["architectures"], nlohmann::json({"BertForSequenceClassification"}));
  EXPECT_EQ(config["id2label"], nlohmann::json({{"0", "a"}, {"1", "b"}, {"2", "c"}}));
  EXPECT_EQ(config["label2id"], nlohmann::json({{"a", 0}, {"b", 1}, {"c", 2}}));
  EXPECT_EQ(config["num_labels"], 3);
  EXPECT_EQ(config["hidden_size"], 32);
  EXPECT_EQ(config["num_hidden_layers"], 2);
  // Weights under Hugging Face's names; the tokenizer copied.
  auto file = SafetensorsFile::Open(out + "/model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().message();
  for (const char* name : {"bert.embeddings.word_embeddings.weight",
                           "bert.encoder.layer.1.output.LayerNorm.bias",
                           "bert.pooler.dense.weight", "bert.pooler.dense.bias",
                           "classifier.weight", "classifier.bias"}) {
    EXPECT_NE((*file)->Find(name), nullptr) << name;
  }
  EXPECT_EQ((*file)->Find("embeddings.word_embeddings.weight"), nullptr);
  EXPECT_EQ((*file)->Find("classifier.weight")->shape, (std::vector<int64_t>{3, 32}));
  for (const char* f : {"tokenizer.json", "vocab.txt", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  }

  // The runtime's classifier computes the trainer's logits.
  const std::vector<float> served = ServedLogits(out, eval);
  ASSERT_EQ(served.size(), report->eval_logits.size());
  for (size_t i = 0; i < served.size(); ++i) {
    EXPECT_NEAR(served[i], report->eval_logits[i], 1e-4 * std::max(1.0f, std::abs(served[i])))
        << i;
  }
  fs::remove_all(out);
}

TEST(ClassifierTrainer, SameSeedSameModel) {
  const auto train = Examples(16, 2, 1);
  FinetuneOptions o = Options(Temp("seed1"));
  o.labels = {"a", "b"};
  o.epochs = 2;
  o.dropout = 0.1;
  auto a = FinetuneClassifier(o, train, train);
  o.out_dir = Temp("seed2");
  auto b = FinetuneClassifier(o, train, train);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->eval_logits, b->eval_logits);
  EXPECT_EQ(a->train.epoch_losses, b->train.epoch_losses);
  fs::remove_all(Temp("seed1"));
  fs::remove_all(Temp("seed2"));
}

TEST(ClassifierTrainer, BadInputsFailWithOneLine) {
  const std::string out = Temp("bad");
  auto train = Examples(8, 2, 0);
  auto message = [&](FinetuneOptions o, const std::vector<ClassifierExample>& t) {
    auto r = FinetuneClassifier(o, t, {});
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : r.status().message();
  };
  FinetuneOptions o = Options(out);
  o.labels = {"a", "b"};
  std::vector<ClassifierExample> one_class = train;
  for (auto& e : one_class) e.label = 1;
  EXPECT_EQ(message(o, one_class),
            "finetune: every training example has label 'b'; a classifier needs at least two "
            "classes to learn from");
  std::vector<ClassifierExample> out_of_range = train;
  out_of_range[3].label = 2;
  EXPECT_EQ(message(o, out_of_range),
            "finetune: training example 3 has label id 2; ids are 0..1");
  EXPECT_EQ(message(o, {}), "finetune: no training texts");
  FinetuneOptions one_label = o;
  one_label.labels = {"a"};
  EXPECT_EQ(message(one_label, train), "finetune: a classifier needs at least 2 labels, got 1");
  FinetuneOptions missing = o;
  missing.encoder_dir = out + "/nowhere";
  EXPECT_THAT(message(missing, train), HasSubstr("nowhere' does not exist"));
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace nlpflow
