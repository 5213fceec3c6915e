// A fine-tuned folder in transformers: FinetuneClassifier trains on texts
// tokenized by nlpflow's WordPiece tokenizer, then finetune_reference.py
// (run now, with .venv's transformers) loads the folder with
// AutoModelForSequenceClassification and AutoTokenizer. Checked: no weight
// missing or unused, the same label names, the same token ids, and logits
// equal to the trainer's and to nodes/infer's BertClassifier's within 1e-4
// relative (to the row's largest |logit|).
//
// Two encoders: the tiny BERT of tests/fixtures/heads/sequence (3 labels;
// names under "bert.") and all-MiniLM-L6-v2 (2 labels; a BertModel
// folder: names without "bert.", its own pooler), skipped when absent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nodes/compress/classifier_trainer.h"
#include "nodes/infer/bert_classifier.h"
#include "nodes/tokenize/wordpiece_tokenizer.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;

const std::string kSource = NLPFLOW_SOURCE_DIR;

std::string Temp(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("nlpflow_fp_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  return p.string();
}

struct Labelled {
  std::string text;
  int64_t label;
};

// Sentiment-like texts over words both vocabularies have.
std::vector<Labelled> Texts(int n, int labels, int salt) {
  const std::vector<std::vector<std::string>> words = {
      {"bad", "terrible", "hate", "not"}, {"the", "a", "meeting", "monday"},
      {"good", "great", "love", "very"}};
  const std::vector<std::string> filler = {"the", "model", "record", "text", "stream", "is"};
  std::vector<Labelled> out;
  for (int i = 0; i < n; ++i) {
    const int label = i % labels;
    const auto& w = words[labels == 2 ? label * 2 : label];
    std::string text;
    for (int t = 0; t < 3 + (i + salt) % 5; ++t) {
      text += (t % 2 == 0 ? w[(i + t + salt) % w.size()] : filler[(i * 3 + t) % filler.size()]);
      text += t == 0 ? " " : (t % 3 == 2 ? ", " : " ");
    }
    out.push_back({text + "!", label});
  }
  return out;
}

void CheckAgainstTransformers(const std::string& encoder, const std::vector<std::string>& labels,
                              int max_length, int epochs, double lr) {
  const std::string python =
      fs::exists(kSource + "/.venv/bin/python") ? kSource + "/.venv/bin/python" : "";
  if (python.empty()) GTEST_SKIP() << ".venv/bin/python (transformers) is not set up";
  const int k = static_cast<int>(labels.size());
  const std::vector<Labelled> train = Texts(24, k, 0), eval = Texts(9, k, 3);
  auto tokenizer = WordPieceTokenizer::FromModelDir(encoder);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  (*tokenizer)->set_max_length(max_length);
  auto encode = [&](const std::vector<Labelled>& texts) {
    std::vector<ClassifierExample> out;
    for (const auto& t : texts) out.push_back({(*tokenizer)->Encode(t.text).ids, t.label});
    return out;
  };
  const std::vector<ClassifierExample> eval_examples = encode(eval);

  const std::string out = Temp("model");
  FinetuneOptions o;
  o.encoder_dir = encoder;
  o.out_dir = out;
  o.labels = labels;
  o.epochs = epochs;
  o.batch_size = 8;
  o.learning_rate = lr;
  auto report = FinetuneClassifier(o, encode(train), eval_examples);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_LT(report->train.last_loss, report->train.first_loss);

  const std::string texts_path = Temp("texts.json"), ref_path = Temp("reference.json");
  nlohmann::json texts = nlohmann::json::array();
  for (const auto& t : eval) texts.push_back(t.text);
  std::ofstream(texts_path) << texts.dump();
  const std::string command = python + " " + kSource +
                              "/tests/nodes/compress/finetune_reference.py " + out + " " +
                              texts_path + " " + ref_path + " " + std::to_string(max_length);
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream in(ref_path);
  const nlohmann::json ref = nlohmann::json::parse(in);
  EXPECT_EQ(ref["architecture"], "BertForSequenceClassification");
  EXPECT_EQ(ref["missing"], nlohmann::json::array());
  EXPECT_EQ(ref["unexpected"], nlohmann::json::array());
  EXPECT_EQ(ref["num_labels"], k);
  for (int i = 0; i < k; ++i) EXPECT_EQ(ref["id2label"][std::to_string(i)], labels[i]);

  // The runtime's classifier on the same ids, one padded batch.
  ClassifierOptions co;
  co.path = out;
  auto served = BertClassifier::Load(co);
  ASSERT_TRUE(served.ok()) << served.status().message();
  TokenBatch b;
  b.batch = static_cast<int64_t>(eval_examples.size());
  for (const auto& e : eval_examples) b.seq_len = std::max<int64_t>(b.seq_len, e.ids.size());
  for (const auto& e : eval_examples) {
    for (int64_t t = 0; t < b.seq_len; ++t) {
      const bool real = t < static_cast<int64_t>(e.ids.size());
      b.input_ids.push_back(real ? e.ids[t] : 0);
      b.attention_mask.push_back(real ? 1 : 0);
    }
  }
  auto rows = (*served)->Run(b);
  ASSERT_TRUE(rows.ok()) << rows.status().message();

  ASSERT_EQ(ref["logits"].size(), eval.size());
  for (size_t r = 0; r < eval.size(); ++r) {
    const std::vector<int32_t> ids = ref["ids"][r].get<std::vector<int32_t>>();
    EXPECT_EQ(ids, eval_examples[r].ids) << eval[r].text;
    const std::vector<float> expected = ref["logits"][r].get<std::vector<float>>();
    ASSERT_EQ(expected.size(), static_cast<size_t>(k));
    const auto* served_output = std::get_if<ClassificationOutput>(&(*rows)[r]);
    ASSERT_NE(served_output, nullptr);
    const std::vector<float>& served_logits = served_output->logits;
    ASSERT_EQ(served_logits.size(), static_cast<size_t>(k));
    float scale = 0;
    for (float v : expected) scale = std::max(scale, std::abs(v));
    for (int j = 0; j < k; ++j) {
      EXPECT_NEAR(report->eval_logits[r * k + j], expected[j], 1e-4 * scale)
          << "trainer, text " << r << " label " << j;
      EXPECT_NEAR(served_logits[j], expected[j], 1e-4 * scale)
          << "BertClassifier, text " << r << " label " << j;
    }
  }
  for (const auto& p : {out, texts_path, ref_path}) fs::remove_all(p);
}

TEST(FinetuneParity, TinyBertThreeLabels) {
  CheckAgainstTransformers(kSource + "/tests/fixtures/heads/sequence",
                           {"negative", "neutral", "positive"}, 24, 3, 1e-3);
}

TEST(FinetuneParity, MiniLmTwoLabels) {
  const std::string minilm = kSource + "/models/all-MiniLM-L6-v2";
  if (!fs::exists(minilm + "/model.safetensors")) GTEST_SKIP() << minilm << " is not fetched";
  CheckAgainstTransformers(minilm, {"ham", "spam"}, 32, 1, 1e-4);
}

}  // namespace
}  // namespace nlpflow
