// The HTTP inference endpoints over a real serve graph with the fake
// tokenizer and models (tests/testing/fake_model.h), no server: exact answers
// of every endpoint, the task checks (422), and 503 before Open and after
// Close. The wire (status codes through cpp-httplib, 413, 429, the OpenAI
// client, the stream's vectors) is tests/scripts/http_inference_test.py.
#include "pipeline/http_inference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <nlohmann/json.hpp>
#include <tuple>

#include "nodes/batch/batcher.h"
#include "nodes/decode/decoder.h"
#include "nodes/encode/encoder.h"
#include "nodes/infer/token_batch.h"
#include "pipeline/serve_graph.h"
#include "tests/testing/fake_model.h"

namespace nlpflow {
namespace {

using json = nlohmann::json;

// One label, logit = the row's number of ids: the longer the pair, the
// better it ranks.
class FakeCrossEncoder : public Model {
 public:
  ModelTask task() const override { return ModelTask::kSequenceClassification; }
  const std::vector<std::string>& labels() const override { return *labels_; }
  int64_t max_positions() const override { return 512; }
  Result<std::vector<ModelOutput>> Run(const TokenBatch& b) const override {
    std::vector<ModelOutput> out;
    for (int64_t r = 0; r < b.batch; ++r) {
      float n = 0;
      for (int64_t t = 0; t < b.seq_len; ++t) n += b.attention_mask[r * b.seq_len + t] == 1;
      ClassificationOutput c;
      c.logits = {n};
      c.scores = {1.f / (1.f + std::exp(-n))};
      c.labels = labels_;
      out.emplace_back(std::move(c));
    }
    return out;
  }

 private:
  LabelNames labels_ = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"LABEL_0"});
};

// Counts what reaches it: requests never should.
class CountingSink : public ResultSink {
 public:
  void Publish(RecordPtr) override { calls.fetch_add(1); }
  void PublishDeadLetter(RecordPtr, std::string) override { calls.fetch_add(1); }
  std::atomic<int> calls{0};
};

class HttpInferenceTest : public ::testing::Test {
 protected:
  // Builds the graph around `model` and opens the endpoints on it.
  void Serve(const Model* model, bool normalized = false) {
    graph_ = ServeGraph::Create(ServeGraphOptions{}, DecodeOptions{}, &tokenizer_,
                                BatcherOptions{}, model,
                                EncodeOptions{OutputFormat::kJson, "fake", "1"}, &sink_)
                 .value();
    graph_->Start();
    HttpInferenceBackend b;
    b.tokenizer = &tokenizer_;
    b.task = model->task();
    b.num_labels = model->labels().size();
    b.normalized = normalized;
    b.model_name = "fake-model";
    b.put = [this](RecordPtr r) { graph_->PutRequest(std::move(r)); };
    http_.Open(std::move(b));
  }

  void TearDown() override {
    http_.Close();
    if (graph_) {
      EXPECT_TRUE(graph_->Drain(10000).ok());
    }
    EXPECT_EQ(sink_.calls.load(), 0);
  }

  static json Body(const HttpResponse& r) { return json::parse(r.body); }

  MetricsRegistry registry_;
  HttpInference http_{HttpInferenceOptions{}, &registry_};
  testing::FakeTokenizer tokenizer_;
  CountingSink sink_;
  std::unique_ptr<ServeGraph> graph_;
};

TEST_F(HttpInferenceTest, BeforeOpenEveryEndpointAnswers503) {
  HttpResponse r = http_.Embed({R"({"inputs": "a"})"});
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Body(r), json({{"error", "not ready: loading the model"}, {"error_type", "unavailable"}}));
  EXPECT_EQ(http_.Routes().routes.size(), 5u);
}

TEST_F(HttpInferenceTest, EmbeddingsAsOpenAiWritesThem) {
  testing::FakeModel model(ModelTask::kEmbedding);
  Serve(&model);
  // "a bb": ids 1, 11, 12, 2 -> {4 ids, sum 26}.
  HttpResponse r = http_.Embeddings({R"({"input": ["a bb", "ccc"], "model": "x"})"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r), json::parse(R"({"object": "list", "model": "fake-model",
      "data": [{"object": "embedding", "embedding": [4.0, 26.0], "index": 0},
               {"object": "embedding", "embedding": [3.0, 16.0], "index": 1}],
      "usage": {"prompt_tokens": 7, "total_tokens": 7}})"));
  // 4.0f = 00 00 80 40, 26.0f = 00 00 d0 41, little-endian.
  r = http_.Embeddings({R"({"input": "a bb", "encoding_format": "base64"})"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["data"][0]["embedding"], "AACAQAAA0EE=");
  r = http_.Embeddings({R"({"input": "a", "encoding_format": "int8"})"});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Body(r)["error"]["message"], "'encoding_format' must be \"float\" or \"base64\"");
}

TEST_F(HttpInferenceTest, EmbedNormalizesUnlessTheModelDid) {
  testing::FakeModel model(ModelTask::kEmbedding);
  Serve(&model, /*normalized=*/false);
  HttpResponse r = http_.Embed({R"({"inputs": "a bb"})"});
  ASSERT_EQ(r.status, 200) << r.body;
  const double norm = std::sqrt(4.0 * 4 + 26.0 * 26);
  const std::vector<float> want = {static_cast<float>(4 / norm), static_cast<float>(26 / norm)};
  EXPECT_EQ(Body(r)[0].get<std::vector<float>>(), want);
  r = http_.Embed({R"({"inputs": ["a bb"], "normalize": false, "truncate": true})"});
  EXPECT_EQ(Body(r), json::parse("[[4.0, 26.0]]"));
  r = http_.Embed({R"({"inputs": "a", "normalize": "yes"})"});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Body(r)["error"], "'normalize' must be true or false");
}

TEST_F(HttpInferenceTest, PredictGivesEveryLabelBestFirst) {
  testing::FakeModel model(ModelTask::kSequenceClassification);
  Serve(&model);
  // "a bb ccc": 5 ids, sum 39 -> logits {0, 5, 3.9}: short, long, none.
  HttpResponse r = http_.Predict({R"({"inputs": "a bb ccc"})"});
  ASSERT_EQ(r.status, 200) << r.body;
  const json got = Body(r);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0]["label"], "short");
  EXPECT_EQ(got[1]["label"], "long");
  EXPECT_EQ(got[2]["label"], "none");
  const float total = std::exp(0.f) + std::exp(5.f) + std::exp(3.9f);
  EXPECT_EQ(got[0]["score"].get<float>(), std::exp(5.f) / total);
  r = http_.Predict({R"({"inputs": "a bb ccc", "raw_scores": true})"});
  EXPECT_EQ(Body(r)[1]["label"], "long");
  EXPECT_EQ(Body(r)[1]["score"].get<float>(), 3.9f);
  // A list: one answer per entry; a [text, pair] entry is a pair.
  r = http_.Predict({R"({"inputs": ["a", ["a", "b"]], "raw_scores": true})"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)[0][0], json({{"label", "short"}, {"score", 3.0f}}));
  EXPECT_EQ(Body(r)[1][0], json({{"label", "short"}, {"score", 5.0f}}));
  r = http_.Predict({R"({"inputs": [["a"]]})"});
  EXPECT_EQ(r.status, 400);
  // Not an embedding model, not a cross-encoder.
  r = http_.Embeddings({R"({"input": "a"})"});
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(Body(r)["error"]["message"],
            "/v1/embeddings needs an embedding model; the model's task is sequence-classification");
  r = http_.Rerank({R"({"query": "q", "texts": ["a"]})"});
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(Body(r)["error"],
            "/rerank needs a cross-encoder (a classifier with one label); the model has 3 labels");
}

TEST_F(HttpInferenceTest, RerankOrdersTextsBestFirst) {
  FakeCrossEncoder model;
  Serve(&model);
  // [CLS] q [SEP] words [SEP]: 4 ids + one per word.
  HttpResponse r =
      http_.Rerank({R"({"query": "q", "texts": ["a", "a b c", "a b"], "return_text": true})"});
  ASSERT_EQ(r.status, 200) << r.body;
  auto sigmoid = [](float n) { return 1.f / (1.f + std::exp(-n)); };
  const json got = Body(r);
  ASSERT_EQ(got.size(), 3u);
  const std::vector<std::tuple<int, float, std::string>> want = {
      {1, sigmoid(7), "a b c"}, {2, sigmoid(6), "a b"}, {0, sigmoid(5), "a"}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i]["index"], std::get<0>(want[i]));
    EXPECT_EQ(got[i]["score"].get<float>(), std::get<1>(want[i]));
    EXPECT_EQ(got[i]["text"], std::get<2>(want[i]));
  }
  r = http_.Rerank({R"({"query": "q", "texts": ["a"], "raw_scores": true})"});
  EXPECT_EQ(Body(r), json::parse(R"([{"index": 0, "score": 5.0}])"));
  r = http_.Rerank({R"({"texts": ["a"]})"});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Body(r)["error"], "'query' must be a string");
}

TEST_F(HttpInferenceTest, TokenizeAndMalformedBodies) {
  testing::FakeModel model(ModelTask::kEmbedding);
  Serve(&model);
  HttpResponse r = http_.Tokenize({R"({"inputs": "ab c"})"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r), json::parse(R"([[
      {"id": 1, "text": null, "special": true, "start": 0, "stop": 0},
      {"id": 12, "text": "ab", "special": false, "start": 0, "stop": 2},
      {"id": 11, "text": "c", "special": false, "start": 3, "stop": 4},
      {"id": 2, "text": null, "special": true, "start": 0, "stop": 0}]])"));
  r = http_.Tokenize({R"({"inputs": ["c"], "add_special_tokens": false})"});
  EXPECT_EQ(Body(r), json::parse(R"([[{"id": 11, "text": "c", "special": false, "start": 0,
                                       "stop": 1}]])"));
  r = http_.Embed({"{\"inputs\": "});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Body(r), json({{"error", "malformed JSON in the request body"},
                           {"error_type", "invalid_request_error"}}));
  r = http_.Embed({"[1]"});
  EXPECT_EQ(Body(r)["error"], "the request body must be a JSON object");
  r = http_.Embed({"{}"});
  EXPECT_EQ(Body(r)["error"], "missing field 'inputs'");
  r = http_.Embeddings({"{\"input\": [\"a\", 3]}"});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Body(r)["error"]["message"], "'input' must be a string or a non-empty list of strings");
}

TEST_F(HttpInferenceTest, AfterCloseRequestsAreTurnedAway) {
  testing::FakeModel model(ModelTask::kEmbedding);
  Serve(&model);
  ASSERT_EQ(http_.Embed({R"({"inputs": "a"})"}).status, 200);
  http_.Close();
  HttpResponse r = http_.Embed({R"({"inputs": "a"})"});
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Body(r)["error"], "stopping");
  EXPECT_EQ(graph_->counts().in, 1);
}

}  // namespace
}  // namespace nlpflow
