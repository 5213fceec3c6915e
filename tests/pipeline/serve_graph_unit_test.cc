// The serve graph. With the real model and a file sink: every record comes
// out once, in input order, bad records as dead letters in their place; the
// same result whether the graph runs narrow (1 worker, 1 instance) or wide.
// With a fake model and tokenizer (tests/testing/fake_model.h): ordering,
// dead letters of every stage, expiry, backpressure and typed outputs.
#include "pipeline/serve_graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <tuple>

#include "pipeline/config.h"
#include "pipeline/embed_command.h"
#include "pipeline/graph_options.h"
#include "pipeline/model_stack.h"
#include "tests/testing/fake_model.h"

namespace nlpflow {
namespace {

using ::testing::HasSubstr;

Config TestConfig(const std::vector<std::string>& sets) {
  std::vector<std::string> all = {"model.path=" + std::string(NLPFLOW_SOURCE_DIR) +
                                  "/models/all-MiniLM-L6-v2"};
  all.insert(all.end(), sets.begin(), sets.end());
  auto c = ParseConfig("", all);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.value();
}

std::string Input() {
  std::ostringstream in;
  for (int i = 0; i < 150; ++i) {
    if (i % 37 == 5) {
      in << "\n";  // empty line: a dead letter
    } else if (i % 41 == 7) {
      in << "bad \xff byte\n";
    } else {
      in << "sentence number " << i << " is about " << (i % 3 == 0 ? "cats" : "trains") << "\n";
    }
  }
  return in.str();
}

std::vector<nlohmann::json> RunEmbed(const std::vector<std::string>& sets) {
  Config config = TestConfig(sets);
  auto stack = LoadModelStack(config);
  EXPECT_TRUE(stack.ok()) << stack.status().ToString();
  std::istringstream in(Input());
  std::ostringstream out;
  auto stats = EmbedStream(config, *stack, in, out);
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  std::vector<nlohmann::json> lines;
  std::istringstream result(out.str());
  for (std::string l; std::getline(result, l);) lines.push_back(nlohmann::json::parse(l));
  return lines;
}

void CheckLines(const std::vector<nlohmann::json>& lines) {
  ASSERT_EQ(lines.size(), 150u);
  for (int i = 0; i < 150; ++i) {
    const auto& j = lines[i];
    const int offset = j.contains("offset") ? j.at("offset").get<int>()
                                            : j.at("source").at("offset").get<int>();
    EXPECT_EQ(offset, i);
    if (i % 37 == 5) {
      EXPECT_EQ(j.at("reason"), "empty text") << i;
    } else if (i % 41 == 7) {
      EXPECT_EQ(j.at("reason"), "invalid UTF-8 at byte 4") << i;
    } else {
      auto e = j.at("embedding").get<std::vector<float>>();
      ASSERT_EQ(e.size(), 384u) << i;
      double norm = 0;
      for (float x : e) norm += double(x) * x;
      EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5);
    }
  }
}

TEST(ServeGraphTest, NarrowGraphKeepsOrderAndDeadLetters) {
  CheckLines(RunEmbed({"pipeline.tokenize_concurrency=1", "model.instances=1",
                       "batch.max_batch_size=1"}));
}

TEST(ServeGraphTest, WideGraphGivesTheSameVectors) {
  auto narrow = RunEmbed({"pipeline.tokenize_concurrency=1", "model.instances=1",
                          "batch.max_batch_size=1"});
  auto wide = RunEmbed({"model.instances=2", "batch.max_batch_size=16"});
  CheckLines(wide);
  float worst = 0;
  for (size_t i = 0; i < narrow.size() && i < wide.size(); ++i) {
    if (!narrow[i].contains("embedding")) continue;
    auto a = narrow[i]["embedding"].get<std::vector<float>>();
    auto b = wide[i]["embedding"].get<std::vector<float>>();
    for (size_t k = 0; k < a.size(); ++k) worst = std::max(worst, std::abs(a[k] - b[k]));
  }
  // Batch 1 against padded batches of 16: only float rounding may differ.
  EXPECT_LT(worst, 1e-5);
}

// What reached the sink, in order: (partition, sequence, dead letter?).
class ArrivalSink : public ResultSink {
 public:
  using Entry = std::tuple<int32_t, uint64_t, bool>;
  void Publish(RecordPtr r) override { Add(*r, false); }
  void PublishDeadLetter(RecordPtr r, std::string) override { Add(*r, true); }
  std::vector<Entry> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  void Add(const Record& r, bool dead) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.emplace_back(r.coords.partition, r.sequence, dead);
  }
  std::mutex mu_;
  std::vector<Entry> seen_;
};

// 30 records on 3 partitions, two model instances; the batch holding record 0
// is held back 400 ms on its instance (a test jitter) while the other
// instance runs the rest, and record 3 (partition 0, empty) is a dead letter
// of decode: without ordering, both overtake record 0.
std::vector<ArrivalSink::Entry> RunJittered(bool ordered) {
  Config config = TestConfig({"model.instances=2", "batch.max_batch_size=4",
                              std::string("pipeline.ordered_per_partition=") +
                                  (ordered ? "true" : "false")});
  testing::FakeTokenizer tokenizer;
  testing::FakeModel model;
  ServeGraphOptions options = GraphOptionsFrom(config);
  options.after_infer_for_test = [](const Batch& b) {
    for (const auto& r : b.records) {
      if (r->sequence == 0) std::this_thread::sleep_for(std::chrono::milliseconds(400));
    }
  };
  ArrivalSink sink;
  auto graph = ServeGraph::Create(options, DecodeOptionsFrom(config), &tokenizer,
                                  BatcherOptionsFrom(config), &model,
                                  EncodeOptions{OutputFormat::kJson, "fake", "1"}, &sink);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  if (!graph.ok()) return {};
  (*graph)->Start();
  for (int i = 0; i < 30; ++i) {
    auto r = std::make_shared<Record>();
    r->sequence = static_cast<uint64_t>(i);
    r->coords = {"texts", i % 3, i / 3};
    r->payload = i == 3 ? "" : "record " + std::to_string(i) + std::string(i % 5, '!') + " words";
    r->times.arrived_us = NowMicros();
    (*graph)->Put(std::move(r));
  }
  const Status drained = (*graph)->Drain(60000);
  EXPECT_TRUE(drained.ok()) << drained.ToString();
  return sink.seen();
}

std::map<int32_t, std::vector<uint64_t>> ByPartition(const std::vector<ArrivalSink::Entry>& seen) {
  std::map<int32_t, std::vector<uint64_t>> out;
  for (const auto& [partition, sequence, dead] : seen) out[partition].push_back(sequence);
  return out;
}

TEST(ServeGraphTest, OrderedPerPartitionKeepsArrivalOrderWhenBatchesFinishOutOfOrder) {
  const auto seen = RunJittered(/*ordered=*/true);
  ASSERT_EQ(seen.size(), 30u);
  const auto parts = ByPartition(seen);
  ASSERT_EQ(parts.size(), 3u);
  for (const auto& [partition, seqs] : parts) {
    std::vector<uint64_t> expect;
    for (uint64_t s = static_cast<uint64_t>(partition); s < 30; s += 3) expect.push_back(s);
    EXPECT_EQ(seqs, expect) << "partition " << partition;
  }
  int dead = 0;
  for (const auto& [partition, sequence, is_dead] : seen) {
    if (is_dead) {
      ++dead;
      EXPECT_EQ(sequence, 3u);
    }
  }
  EXPECT_EQ(dead, 1);
}

TEST(ServeGraphTest, WithoutOrderingTheJitterReordersResults) {
  // The control for the test above: the jitter does reorder.
  const auto seen = RunJittered(/*ordered=*/false);
  ASSERT_EQ(seen.size(), 30u);
  const auto parts = ByPartition(seen);
  ASSERT_EQ(parts.count(0), 1u);
  EXPECT_NE(parts.at(0).front(), 0u) << "record 0 was held back 400 ms";
}

// Captures dead letters as the graph encodes them.
class DeadLetterSink : public ResultSink {
 public:
  void Publish(RecordPtr r) override {
    std::lock_guard<std::mutex> lock(mu_);
    results_.push_back(r->sequence);
  }
  void PublishDeadLetter(RecordPtr r, std::string encoded) override {
    std::lock_guard<std::mutex> lock(mu_);
    dead_[r->sequence] = nlohmann::json::parse(encoded);
  }
  std::mutex mu_;
  std::vector<uint64_t> results_;
  std::map<uint64_t, nlohmann::json> dead_;
};

TEST(ServeGraphTest, ExpiredRecordsBecomeDeadLettersOfStageBatch) {
  Config config = TestConfig({"batch.deadline_ms=1000", "batch.on_expired=dead_letter"});
  testing::FakeTokenizer tokenizer;
  testing::FakeModel model;
  DeadLetterSink sink;
  auto graph = ServeGraph::Create(GraphOptionsFrom(config), DecodeOptionsFrom(config),
                                  &tokenizer, BatcherOptionsFrom(config), &model,
                                  EncodeOptions{OutputFormat::kJson, "fake", "1"}, &sink);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  (*graph)->Start();
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  for (int i = 0; i < 6; ++i) {
    auto r = std::make_shared<Record>();
    r->sequence = static_cast<uint64_t>(i);
    r->coords = {"texts", 0, i};
    r->payload = "text number " + std::to_string(i);
    // Odd records were produced a minute ago: far past a 1 s budget.
    r->timestamp_ms = i % 2 == 1 ? now_ms - 60'000 : now_ms;
    (*graph)->Put(std::move(r));
  }
  ASSERT_TRUE((*graph)->Drain(60000).ok());
  std::sort(sink.results_.begin(), sink.results_.end());
  EXPECT_EQ(sink.results_, (std::vector<uint64_t>{0, 2, 4}));
  ASSERT_EQ(sink.dead_.size(), 3u);
  for (uint64_t seq : {1u, 3u, 5u}) {
    ASSERT_EQ(sink.dead_.count(seq), 1u) << seq;
    EXPECT_EQ(sink.dead_[seq].at("stage"), "batch");
    EXPECT_EQ(sink.dead_[seq].at("reason"), "expired");
  }
}

TEST(ServeGraphTest, MissingModelIsNamed) {
  auto c = ParseConfig("", {"model.path=/nonexistent/m"});
  ASSERT_TRUE(c.ok());
  auto stack = LoadModelStack(*c);
  ASSERT_FALSE(stack.ok());
  EXPECT_EQ(stack.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(stack.status().message(), HasSubstr("model.path /nonexistent/m is not a folder"));
}

// Keeps the encoded bytes of results and dead letters, and the order in
// which each partition's records reached it.
class EncodedSink : public ResultSink {
 public:
  void Publish(RecordPtr r) override { Add(*r, r->encoded, false); }
  void PublishDeadLetter(RecordPtr r, std::string encoded) override {
    Add(*r, std::move(encoded), true);
  }
  struct Entry {
    std::string encoded;
    bool dead = false;
  };
  std::mutex mu_;
  std::map<uint64_t, Entry> by_sequence_;
  std::map<int32_t, std::vector<uint64_t>> order_;

 private:
  void Add(const Record& r, std::string encoded, bool dead) {
    std::lock_guard<std::mutex> lock(mu_);
    by_sequence_[r.sequence] = {std::move(encoded), dead};
    order_[r.coords.partition].push_back(r.sequence);
  }
};

struct FakeRun {
  std::unique_ptr<EncodedSink> sink = std::make_unique<EncodedSink>();
  int64_t batches = 0;
};

// Runs `payloads` through a graph with the fake tokenizer and model.
FakeRun RunFake(const std::vector<std::string>& payloads, const std::vector<std::string>& sets,
                ModelTask task = ModelTask::kEmbedding, int partitions = 1,
                std::function<void(const Batch&)> jitter = nullptr) {
  Config config = TestConfig(sets);
  testing::FakeTokenizer tokenizer;
  testing::FakeModel model(task);
  ServeGraphOptions options = GraphOptionsFrom(config);
  options.after_infer_for_test = std::move(jitter);
  FakeRun run;
  auto graph = ServeGraph::Create(options, DecodeOptionsFrom(config), &tokenizer,
                                  BatcherOptionsFrom(config), &model,
                                  EncodeOptions{OutputFormat::kJson, "fake", "1"},
                                  run.sink.get());
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  if (!graph.ok()) return run;
  (*graph)->Start();
  for (size_t i = 0; i < payloads.size(); ++i) {
    auto r = std::make_shared<Record>();
    r->sequence = i;
    r->coords = {"texts", static_cast<int32_t>(i % partitions), static_cast<int64_t>(i)};
    r->payload = payloads[i];
    r->times.arrived_us = NowMicros();
    (*graph)->Put(std::move(r));
  }
  const Status drained = (*graph)->Drain(60000);
  EXPECT_TRUE(drained.ok()) << drained.ToString();
  run.batches = model.batches();
  return run;
}

TEST(ServeGraphFakeModelTest, EveryRecordGetsItsOwnOutputInPartitionOrderUnderJitter) {
  std::vector<std::string> payloads;
  for (int i = 0; i < 300; ++i) {
    if (i % 17 == 5) {
      payloads.push_back("");  // a dead letter of decode
    } else {
      std::string text;
      for (int w = 0; w <= i % 7; ++w) text += std::string(1 + (i + w) % 5, 'a') + " ";
      payloads.push_back(text);
    }
  }
  // Batches finish out of order: each sleeps 0-3 ms, by its first record.
  auto jitter = [](const Batch& b) {
    std::this_thread::sleep_for(std::chrono::milliseconds((b.records[0]->sequence * 7) % 4));
  };
  FakeRun run = RunFake(payloads,
                        {"model.instances=3", "batch.max_batch_size=8",
                         "pipeline.ordered_per_partition=true"},
                        ModelTask::kEmbedding, /*partitions=*/4, jitter);
  ASSERT_EQ(run.sink->by_sequence_.size(), payloads.size());
  // 282 records to infer: batched (at most 8 per batch), not one by one.
  EXPECT_GE(run.batches, 36);
  EXPECT_LT(run.batches, 282);
  testing::FakeTokenizer tokenizer;
  for (size_t i = 0; i < payloads.size(); ++i) {
    const auto& entry = run.sink->by_sequence_[i];
    const nlohmann::json j = nlohmann::json::parse(entry.encoded);
    if (i % 17 == 5) {
      EXPECT_TRUE(entry.dead) << i;
      EXPECT_EQ(j.at("stage"), "decode");
      EXPECT_EQ(j.at("reason"), "empty text");
      continue;
    }
    ASSERT_FALSE(entry.dead) << i << ": " << entry.encoded;
    const Encoding e = tokenizer.Encode(payloads[i]);
    float sum = 0;
    for (int32_t id : e.ids) sum += static_cast<float>(id);
    EXPECT_EQ(j.at("embedding").get<std::vector<float>>(),
              (std::vector<float>{static_cast<float>(e.ids.size()), sum}))
        << i;
    EXPECT_EQ(j.at("num_tokens"), e.ids.size());
    EXPECT_EQ(j.at("source").at("offset"), i);
  }
  for (const auto& [partition, seqs] : run.sink->order_) {
    EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end())) << "partition " << partition;
    EXPECT_EQ(seqs.size(), 75u);
  }
}

TEST(ServeGraphFakeModelTest, AFailedBatchIsDeadLettersOfStageInferAndTheRestGoOn) {
  FakeRun run = RunFake({"one two", "x poison y", "three", "poison"},
                        {"batch.max_batch_size=1", "model.instances=2"});
  auto& seen = run.sink->by_sequence_;
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_FALSE(seen[0].dead);
  EXPECT_FALSE(seen[2].dead);
  for (uint64_t s : {1u, 3u}) {
    ASSERT_TRUE(seen[s].dead) << s;
    const nlohmann::json j = nlohmann::json::parse(seen[s].encoded);
    EXPECT_EQ(j.at("stage"), "infer");
    EXPECT_THAT(j.at("reason").get<std::string>(), HasSubstr("fake model: poison in row 0"));
    EXPECT_EQ(j.at("offset"), s);
  }
}

// Requests (PutRequest, from another thread while the source Puts) come back
// through their reply with the same output the stream gets for the same text;
// the sink, behind the reorder stage, sees the stream's records only, each
// partition in order.
TEST(ServeGraphFakeModelTest, RequestsComeBackThroughTheirReplyNeverThroughTheSink) {
  Config config = TestConfig({"pipeline.ordered_per_partition=true", "model.instances=2"});
  testing::FakeTokenizer tokenizer;
  testing::FakeModel model(ModelTask::kEmbedding);
  EncodedSink sink;
  auto graph = ServeGraph::Create(GraphOptionsFrom(config), DecodeOptionsFrom(config),
                                  &tokenizer, BatcherOptionsFrom(config), &model,
                                  EncodeOptions{OutputFormat::kJson, "fake", "1"}, &sink);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  (*graph)->Start();
  auto text_of = [](int i) { return std::string(1 + i % 5, 'a') + " bb " + std::to_string(i); };
  std::mutex mu;
  std::map<int, std::vector<float>> replies;
  std::map<int, std::string> failures;
  constexpr int kRequests = 200;
  std::thread requests([&] {
    for (int i = 0; i < kRequests; ++i) {
      auto r = std::make_shared<Record>();
      // "poison" fails its batch: the request gets its record back failed.
      r->text = i == 17 ? "poison" : text_of(i);
      r->headers = {{"nlpflow-priority", "high"}};
      r->times.arrived_us = NowMicros();
      r->reply = [&, i](RecordPtr done) {
        std::lock_guard<std::mutex> lock(mu);
        if (done->failed) {
          failures[i] = done->failure_reason;
        } else {
          replies[i] = std::get<EmbeddingOutput>(done->output).values;
        }
      };
      (*graph)->PutRequest(std::move(r));
    }
  });
  for (int i = 0; i < kRequests; ++i) {
    auto r = std::make_shared<Record>();
    r->sequence = i;
    r->coords = {"texts", i % 3, i / 3};
    r->payload = text_of(i);
    r->times.arrived_us = NowMicros();
    (*graph)->Put(std::move(r));
  }
  requests.join();
  ASSERT_TRUE((*graph)->Drain(60000).ok());
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(replies.size() + failures.size(), static_cast<size_t>(kRequests));
  // A batch with the poison record fails whole: record 17 and its batch mates.
  ASSERT_TRUE(failures.count(17));
  EXPECT_THAT(failures[17], HasSubstr("fake model: poison in row"));
  ASSERT_GE(replies.size(), static_cast<size_t>(kRequests) / 2);
  std::lock_guard<std::mutex> sink_lock(sink.mu_);
  // Only the stream's records, each partition in arrival order.
  int64_t published = 0;
  for (const auto& [partition, order] : sink.order_) {
    EXPECT_TRUE(std::is_sorted(order.begin(), order.end())) << "partition " << partition;
    published += static_cast<int64_t>(order.size());
  }
  EXPECT_EQ(published, kRequests);
  for (const auto& [i, values] : replies) {
    const auto& entry = sink.by_sequence_.at(static_cast<uint64_t>(i));
    if (entry.dead) continue;  // its stream twin shared a batch with the poison
    // The stream's result for the same text holds the same vector.
    const auto json = nlohmann::json::parse(entry.encoded);
    EXPECT_EQ(json["embedding"].get<std::vector<float>>(), values) << "request " << i;
  }
  EXPECT_EQ((*graph)->counts().in, 2 * kRequests);
  EXPECT_EQ((*graph)->counts().in_flight(), 0);
}

TEST(ServeGraphFakeModelTest, ClassificationResultsAreTypedEndToEnd) {
  FakeRun run = RunFake({"a bb ccc"}, {}, ModelTask::kSequenceClassification);
  ASSERT_EQ(run.sink->by_sequence_.size(), 1u);
  const nlohmann::json j = nlohmann::json::parse(run.sink->by_sequence_[0].encoded);
  // ids 1, 11, 12, 13, 2: logits {0, 5, 3.9}.
  EXPECT_EQ(j.at("logits").get<std::vector<float>>(), (std::vector<float>{0.f, 5.f, 39.f / 10.f}));
  const double z = std::exp(0.0) + std::exp(5.0) + std::exp(3.9);
  EXPECT_EQ(j.at("label"), "short");
  EXPECT_NEAR(j.at("score").get<double>(), std::exp(5.0) / z, 1e-6);
  ASSERT_EQ(j.at("labels").size(), 3u);
  EXPECT_EQ(j.at("labels")[0].at("label"), "short");
  EXPECT_EQ(j.at("labels")[1].at("label"), "long");
  EXPECT_EQ(j.at("labels")[2].at("label"), "none");
  EXPECT_NEAR(j.at("labels")[2].at("score").get<double>(), 1.0 / z, 1e-6);
  EXPECT_FALSE(j.contains("embedding"));
}

// `nlpflow embed` with model.runtime torchscript: the traced classify3 and
// ner7 of tests/fixtures/tasks (tests/fixtures/make_torchscript_tasks.py)
// through the whole graph, against transformers' logits and pipelines.
std::vector<nlohmann::json> RunTorchScript(const std::string& name,
                                           const std::vector<std::string>& sets,
                                           const nlohmann::json& items) {
  const std::string dir = std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/tasks";
  std::vector<std::string> all = {"model.runtime=torchscript", "model.path=" + dir + "/" + name + ".pt",
                                  "tokenizer.path=" + dir + "/" + name, "batch.max_batch_size=4"};
  all.insert(all.end(), sets.begin(), sets.end());
  auto config = ParseConfig("", all);
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  auto stack = LoadModelStack(*config);
  EXPECT_TRUE(stack.ok()) << stack.status().ToString();
  if (!stack.ok()) return {};
  std::ostringstream in_text;
  for (const auto& item : items) in_text << item.at("text").get<std::string>() << "\n";
  std::istringstream in(in_text.str());
  std::ostringstream out;
  auto stats = EmbedStream(*config, *stack, in, out);
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  std::vector<nlohmann::json> lines;
  std::istringstream result(out.str());
  for (std::string l; std::getline(result, l);) lines.push_back(nlohmann::json::parse(l));
  return lines;
}

const nlohmann::json& TaskReference() {
  static const nlohmann::json doc = [] {
    std::ifstream in(std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/tasks/reference.json");
    return nlohmann::json::parse(in);
  }();
  return doc;
}

TEST(ServeGraphTorchScriptTest, ATracedClassifierMatchesPython) {
  const nlohmann::json& items = TaskReference().at("models").at("classify3");
  const auto lines = RunTorchScript(
      "classify3", {"model.task=sequence-classification", "model.labels=[negative, neutral, positive]"},
      items);
  ASSERT_EQ(lines.size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const auto logits = lines[i].at("logits").get<std::vector<double>>();
    const auto want = items[i].at("logits").get<std::vector<double>>();
    ASSERT_EQ(logits.size(), want.size()) << lines[i].dump();
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_LE(std::fabs(logits[k] - want[k]), 1e-4 * std::max(1.0, std::fabs(want[k])));
    }
    EXPECT_EQ(lines[i].at("label"), items[i].at("labels")[0].at("label"));
    EXPECT_NEAR(lines[i].at("score").get<double>(),
                items[i].at("labels")[0].at("score").get<double>(), 1e-4);
  }
}

TEST(ServeGraphTorchScriptTest, ATracedTokenTaggerGivesThePipelinesEntities) {
  const nlohmann::json& items = TaskReference().at("models").at("ner7");
  const auto lines = RunTorchScript(
      "ner7",
      {"model.task=token-classification", "model.aggregation=average",
       "model.labels=[O, B-PER, I-PER, B-LOC, I-LOC, B-ORG, I-ORG]"},
      items);
  ASSERT_EQ(lines.size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const nlohmann::json& want = items[i].at("entities").at("average");
    const nlohmann::json& got = lines[i].at("entities");
    ASSERT_EQ(got.size(), want.size()) << got.dump() << "\n" << want.dump();
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_EQ(got[k].at("entity_group"), want[k].at("entity_group"));
      EXPECT_EQ(got[k].at("word"), want[k].at("word"));
      EXPECT_EQ(got[k].at("start"), want[k].at("start"));
      EXPECT_EQ(got[k].at("end"), want[k].at("end"));
    }
  }
}

TEST(ServeGraphTorchScriptTest, ErrorsNameTheFile) {
  const std::string dir = std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/tasks";
  auto wrong_labels = ParseConfig(
      "", {"model.runtime=torchscript", "model.path=" + dir + "/classify3.pt",
           "tokenizer.path=" + dir + "/classify3", "model.task=sequence-classification",
           "model.labels=[a, b]"});
  ASSERT_TRUE(wrong_labels.ok());
  EXPECT_EQ(LoadModelStack(*wrong_labels).status().message(),
            "model: " + dir + "/classify3.pt: model.labels names 2 labels but the module returns 3");
  auto no_tokenizer = ParseConfig("", {"model.runtime=torchscript",
                                       "model.path=" + dir + "/classify3.pt"});
  ASSERT_TRUE(no_tokenizer.ok());
  EXPECT_THAT(LoadModelStack(*no_tokenizer).status().message(),
              HasSubstr("tokenizer.path: required with model.runtime torchscript"));
  auto missing = ParseConfig("", {"model.runtime=torchscript", "model.path=" + dir + "/none.pt",
                                  "tokenizer.path=" + dir + "/classify3"});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(LoadModelStack(*missing).status().message(),
            "model.path " + dir + "/none.pt is not a file (model.runtime torchscript loads a .pt file)");
}

}  // namespace
}  // namespace nlpflow
