// Every task against Hugging Face's own pipelines, on the random-weight
// checkpoints of odd sizes in tests/fixtures/tasks (written, with the
// pipelines' outputs, by tests/fixtures/make_tasks_reference.py):
// text-classification with softmax (3 labels), multi-label sigmoid (4
// labels), a one-label cross-encoder on sentence pairs, and
// token-classification (7 BIO labels) under every aggregation strategy.
// Each goes model -> typed output -> the encoder's JSON, the way the serve
// graph runs it, and is compared with what the pipeline returned.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nodes/encode/encoder.h"
#include "nodes/infer/batch_runner.h"
#include "nodes/infer/model_loader.h"
#include "nodes/infer/token_aggregation.h"
#include "nodes/tokenize/wordpiece_tokenizer.h"

namespace nlpflow {
namespace {

using ::testing::HasSubstr;

const std::string kTasks = std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/tasks";

const nlohmann::json& Reference() {
  static const nlohmann::json doc = [] {
    std::ifstream in(kTasks + "/reference.json");
    return nlohmann::json::parse(in);
  }();
  return doc;
}

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<WordPieceTokenizer> tokenizer;
};

Loaded Load(const std::string& name) {
  Loaded l;
  auto model = LoadModel({.path = kTasks + "/" + name});
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (model.ok()) l.model = std::move(model->model);
  auto tokenizer = WordPieceTokenizer::FromModelDir(kTasks + "/" + name);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  if (tokenizer.ok()) l.tokenizer = std::move(tokenizer).value();
  return l;
}

// Runs every item of the model's reference through one padded batch and
// returns each record (encoding and output set).
std::vector<RecordPtr> RunAll(const Loaded& l, const nlohmann::json& items) {
  Batch batch;
  for (const auto& item : items) {
    auto r = std::make_shared<Record>();
    r->text = item.at("text").get<std::string>();
    if (item.contains("text_pair")) r->text_pair = item.at("text_pair").get<std::string>();
    r->encoding = r->text_pair ? l.tokenizer->EncodePair(r->text, *r->text_pair)
                               : l.tokenizer->Encode(r->text);
    EXPECT_EQ(std::vector<int64_t>(r->encoding.ids.begin(), r->encoding.ids.end()),
              item.at("input_ids").get<std::vector<int64_t>>())
        << r->text;
    if (item.contains("token_type_ids")) {
      EXPECT_EQ(std::vector<int64_t>(r->encoding.type_ids.begin(), r->encoding.type_ids.end()),
                item.at("token_type_ids").get<std::vector<int64_t>>())
          << r->text;
    }
    batch.records.push_back(r);
  }
  RunBatch(*l.model, l.tokenizer->pad_id(), &batch);
  for (const auto& r : batch.records) EXPECT_FALSE(r->failed) << r->failure_reason;
  return batch.records;
}

nlohmann::json EncodeJson(Record* r) {
  Encoder encoder({OutputFormat::kJson, "m", "v"});
  encoder.EncodeResult(r);
  return nlohmann::json::parse(r->encoded);
}

void ExpectRelativeNear(double got, double want, double rel, const std::string& what) {
  EXPECT_LE(std::fabs(got - want), rel * std::max(1.0, std::fabs(want)))
      << what << ": got " << got << ", want " << want;
}

void CheckClassifier(const std::string& name, ModelTask want_task) {
  const Loaded l = Load(name);
  ASSERT_NE(l.model, nullptr);
  EXPECT_EQ(l.model->task(), want_task);
  const nlohmann::json& items = Reference().at("models").at(name);
  ASSERT_GE(items.size(), 5u);
  std::vector<RecordPtr> records = RunAll(l, items);
  for (size_t i = 0; i < items.size(); ++i) {
    const nlohmann::json& item = items[i];
    const std::string text = item.at("text").get<std::string>();
    const nlohmann::json got = EncodeJson(records[i].get());
    const auto logits = got.at("logits").get<std::vector<double>>();
    const auto want_logits = item.at("logits").get<std::vector<double>>();
    ASSERT_EQ(logits.size(), want_logits.size()) << text;
    for (size_t k = 0; k < logits.size(); ++k) {
      ExpectRelativeNear(logits[k], want_logits[k], 1e-4, name + " logit " + std::to_string(k));
    }
    // The pipeline's every label, best first (top_k=None): same order, same names.
    const nlohmann::json& want = item.at("labels");
    ASSERT_EQ(got.at("labels").size(), want.size()) << text;
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_EQ(got["labels"][k].at("label"), want[k].at("label")) << text << " rank " << k;
      EXPECT_NEAR(got["labels"][k].at("score").get<double>(), want[k].at("score").get<double>(),
                  1e-4)
          << text << " rank " << k;
    }
    EXPECT_EQ(got.at("label"), want[0].at("label")) << text;
    EXPECT_NEAR(got.at("score").get<double>(), want[0].at("score").get<double>(), 1e-4);
  }
}

TEST(TaskParityTest, SequenceClassificationSoftmaxMatchesThePipeline) {
  CheckClassifier("classify3", ModelTask::kSequenceClassification);
}

TEST(TaskParityTest, MultiLabelSigmoidMatchesThePipeline) {
  CheckClassifier("multilabel", ModelTask::kSequenceClassification);
  // Sigmoids per label: they do not sum to 1 (a softmax would).
  const nlohmann::json& first = Reference().at("models").at("multilabel")[0].at("labels");
  double sum = 0;
  for (const auto& l : first) sum += l.at("score").get<double>();
  EXPECT_GT(std::fabs(sum - 1.0), 0.1);
}

TEST(TaskParityTest, OneLabelCrossEncoderOnPairsMatchesThePipeline) {
  CheckClassifier("cross", ModelTask::kSequenceClassification);
  const nlohmann::json& items = Reference().at("models").at("cross");
  ASSERT_TRUE(items[0].contains("text_pair"));
  // One label: the score is the sigmoid of the logit.
  const double logit = items[0].at("logits")[0].get<double>();
  EXPECT_NEAR(items[0].at("labels")[0].at("score").get<double>(), 1 / (1 + std::exp(-logit)), 1e-6);
}

TEST(TaskParityTest, TokenClassificationMatchesThePipelineUnderEveryAggregation) {
  const Loaded l = Load("ner7");
  ASSERT_NE(l.model, nullptr);
  EXPECT_EQ(l.model->task(), ModelTask::kTokenClassification);
  const nlohmann::json& items = Reference().at("models").at("ner7");
  int compared = 0;
  for (const char* mode : {"none", "simple", "first", "average", "max"}) {
    const Aggregation aggregation = ParseAggregation(mode).value();
    std::vector<RecordPtr> records = RunAll(*&l, items);
    for (size_t i = 0; i < items.size(); ++i) {
      Record* r = records[i].get();
      auto& tokens = std::get<TokenClassificationOutput>(r->output);
      // Logits first: within 1e-4 relative of the model run in Python.
      const auto want_logits = items[i].at("logits").get<std::vector<std::vector<double>>>();
      ASSERT_EQ(tokens.logits.size(), want_logits.size() * 7);
      for (size_t t = 0; t < want_logits.size(); ++t) {
        for (size_t k = 0; k < 7; ++k) {
          ExpectRelativeNear(tokens.logits[t * 7 + k], want_logits[t][k], 1e-4, "token logit");
        }
      }
      ASSERT_TRUE(AggregateTokens(aggregation, *l.tokenizer, r->text, r->encoding, &tokens).ok());
      const nlohmann::json got = EncodeJson(r).at("entities");
      const nlohmann::json& want = items[i].at("entities").at(mode);
      const std::string where = std::string(mode) + " '" + r->text + "'";
      ASSERT_EQ(got.size(), want.size()) << where << "\ngot " << got.dump() << "\nwant "
                                         << want.dump();
      for (size_t k = 0; k < want.size(); ++k) {
        const char* label_key = std::string(mode) == "none" ? "entity" : "entity_group";
        EXPECT_EQ(got[k].at(label_key), want[k].at(label_key)) << where << " #" << k;
        EXPECT_EQ(got[k].at("word"), want[k].at("word")) << where << " #" << k;
        EXPECT_EQ(got[k].at("start"), want[k].at("start")) << where << " #" << k;
        EXPECT_EQ(got[k].at("end"), want[k].at("end")) << where << " #" << k;
        if (std::string(mode) == "none") {
          EXPECT_EQ(got[k].at("index"), want[k].at("index")) << where << " #" << k;
        } else {
          EXPECT_FALSE(got[k].contains("index"));
        }
        EXPECT_NEAR(got[k].at("score").get<double>(), want[k].at("score").get<double>(), 1e-4)
            << where << " #" << k;
        // Byte offsets cover the same characters as the code-point offsets.
        const int64_t bs = got[k].at("byte_start"), be = got[k].at("byte_end");
        const int64_t cs = got[k].at("start"), ce = got[k].at("end");
        int64_t cp_before = 0, cp_inside = 0;
        for (int64_t b = 0; b < be; ++b) {
          const bool starts = (static_cast<unsigned char>(r->text[b]) & 0xC0) != 0x80;
          (b < bs ? cp_before : cp_inside) += starts;
        }
        EXPECT_EQ(cp_before, cs) << where;
        EXPECT_EQ(cp_inside, ce - cs) << where;
        ++compared;
      }
    }
  }
  // The fixture must exercise the grouping, not compare empty lists.
  EXPECT_GT(compared, 150);
  std::printf("[ compared ] %d entities over 5 aggregation modes\n", compared);
}

TEST(TaskParityTest, AutoReadsTheArchitectures) {
  EXPECT_EQ(ResolveTask(kTasks + "/classify3", "auto").value(), ModelTask::kSequenceClassification);
  EXPECT_EQ(ResolveTask(kTasks + "/ner7", "auto").value(), ModelTask::kTokenClassification);
  EXPECT_EQ(ResolveTask(kTasks + "/ner7", "embedding").value(), ModelTask::kEmbedding);
  EXPECT_EQ(ResolveTask(kTasks + "/ner7", "tagging").status().message(),
            "model task 'tagging' is not one of auto, embedding, sequence-classification, "
            "token-classification");
  EXPECT_THAT(ResolveTask("/nonexistent", "auto").status().message(),
              HasSubstr("/nonexistent/config.json: cannot open"));
  auto wrong = LoadModel({.path = kTasks + "/ner7", .task = "sequence-classification"});
  EXPECT_EQ(wrong.status().message(),
            kTasks + "/ner7/config.json: model.task is sequence-classification but the "
                     "checkpoint's architectures make it token-classification");
}

TEST(TaskParityTest, AggregationNamesAreChecked) {
  EXPECT_EQ(ParseAggregation("mean").status().message(),
            "aggregation 'mean' is not one of none, simple, first, average, max");
  EXPECT_STREQ(AggregationName(ParseAggregation("average").value()), "average");
}

}  // namespace
}  // namespace nlpflow
