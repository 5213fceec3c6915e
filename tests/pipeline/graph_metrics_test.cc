// The graph's counters and histograms, with the real model and a sink that
// records what it gets; the infer stage can be stalled with a gate.
#include "pipeline/graph_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "nodes/batch/batcher.h"
#include "nodes/decode/decoder.h"
#include "nodes/encode/encoder.h"
#include "pipeline/config.h"
#include "pipeline/serve_graph.h"
#include "pipeline/graph_options.h"
#include "pipeline/model_stack.h"
#include "tests/testing/fake_model.h"

namespace nlpflow {
namespace {

using ::testing::HasSubstr;

// Closed: infer threads wait in before_infer until it opens.
class Gate {
 public:
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> l(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void Pass() {
    std::unique_lock<std::mutex> l(mu_);
    waiting_++;
    cv_.notify_all();
    cv_.wait(l, [&] { return open_; });
    waiting_--;
  }
  // Waits until n threads are held at the gate.
  bool WaitForWaiting(int n) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(60), [&] { return waiting_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int waiting_ = 0;
};

class RecordingSink : public ResultSink {
 public:
  void Publish(RecordPtr r) override {
    std::lock_guard<std::mutex> l(mu_);
    ++results_[r->sequence];
    total_.fetch_add(1);
  }
  void PublishDeadLetter(RecordPtr r, std::string) override {
    std::lock_guard<std::mutex> l(mu_);
    ++dead_[r->sequence];
    total_.fetch_add(1);
  }
  std::map<uint64_t, int> results() {
    std::lock_guard<std::mutex> l(mu_);
    return results_;
  }
  std::map<uint64_t, int> dead() {
    std::lock_guard<std::mutex> l(mu_);
    return dead_;
  }
  int64_t total() const { return total_.load(); }

 private:
  std::mutex mu_;
  std::map<uint64_t, int> results_, dead_;
  std::atomic<int64_t> total_{0};
};

class GraphMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = ParseConfig("", {"model.instances=2", "batch.max_batch_size=8"});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    config_ = *c;
    metrics_ = GraphMetrics::Register(&registry_);
    ServeGraphOptions o = GraphOptionsFrom(config_);
    o.metrics = &metrics_;
    o.before_infer = [this] { gate_.Pass(); };
    auto g = ServeGraph::Create(o, DecodeOptionsFrom(config_), &tokenizer_,
                                BatcherOptionsFrom(config_), &model_,
                                EncodeOptions{OutputFormat::kJson, "fake", "1"}, &sink_);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    graph_ = std::move(g).value();
    graph_->Start();
  }

  void Put(uint64_t seq, std::string text) {
    auto r = std::make_shared<Record>();
    r->sequence = seq;
    r->coords = {"t", 0, static_cast<int64_t>(seq)};
    r->payload = std::move(text);
    r->times.arrived_us = NowMicros();
    graph_->Put(std::move(r));
  }

  static bool IsPoison(int i) { return i % 20 == 7; }

  Config config_;
  // Metrics and stalls are the graph's: a fake model will do.
  testing::FakeTokenizer tokenizer_;
  testing::FakeModel model_;
  MetricsRegistry registry_;
  GraphMetrics metrics_;
  Gate gate_;
  RecordingSink sink_;
  std::unique_ptr<ServeGraph> graph_;
};

TEST_F(GraphMetricsTest, StalledInferHoldsRecordsInFlightAndReleasingLosesNothing) {
  gate_.Close();
  const int n = 100;
  for (int i = 0; i < n; ++i) Put(i, IsPoison(i) ? "" : "record number " + std::to_string(i));
  // Both instances hold a batch at the gate; the poison records (empty text)
  // leave at decode as dead letters meanwhile.
  ASSERT_TRUE(gate_.WaitForWaiting(2));
  const int poison = 5;
  for (int tries = 0; sink_.total() < poison && tries < 6000; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  GraphCounts c = graph_->counts();
  EXPECT_EQ(c.in, n);
  EXPECT_EQ(c.out, 0);
  EXPECT_EQ(c.dead[static_cast<int>(Stage::kDecode)], poison);
  EXPECT_EQ(c.dead_total(), poison);
  EXPECT_EQ(c.in_flight(), n - poison);
  EXPECT_EQ(graph_->in_graph(), n - poison);
  EXPECT_EQ(sink_.total(), poison);

  gate_.Open();
  ASSERT_TRUE(graph_->Drain(60000).ok());
  c = graph_->counts();
  EXPECT_EQ(c.in, n);
  EXPECT_EQ(c.out, n - poison);
  EXPECT_EQ(c.dead_total(), poison);
  EXPECT_EQ(c.in_flight(), 0);
  // Every record exactly once, each where it belongs.
  auto results = sink_.results();
  auto dead = sink_.dead();
  ASSERT_EQ(results.size() + dead.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto& where = IsPoison(i) ? dead : results;
    ASSERT_EQ(where.count(i), 1u) << i;
    EXPECT_EQ(where[i], 1) << i;
  }

  // One observation per result in each stage histogram, one per batch in
  // the batch histograms.
  const std::string text = registry_.Render();
  for (const char* stage : {"decode", "tokenize", "batch", "infer", "encode"}) {
    EXPECT_THAT(text, HasSubstr(std::string("nlpflow_stage_queue_seconds_count{stage=\"") +
                                stage + "\"} 95\n"));
  }
  for (const char* stage : {"decode", "tokenize", "infer", "encode"}) {
    EXPECT_THAT(text, HasSubstr(std::string("nlpflow_stage_compute_seconds_count{stage=\"") +
                                stage + "\"} 95\n"));
  }
  // Nothing acknowledged here: the sink stage is the serve app's.
  EXPECT_THAT(text, HasSubstr("nlpflow_stage_compute_seconds_count{stage=\"sink\"} 0\n"));
  const Histogram::Snapshot sizes = metrics_.batch_size->snapshot();
  EXPECT_EQ(sizes.sum, 95);
  EXPECT_GE(sizes.count, 95u / 8);
  const Histogram::Snapshot real = metrics_.batch_real_tokens->snapshot();
  const Histogram::Snapshot padded = metrics_.batch_padded_tokens->snapshot();
  EXPECT_EQ(real.count, sizes.count);
  EXPECT_EQ(padded.count, sizes.count);
  EXPECT_LE(real.sum, padded.sum);
  // "record number N": [CLS] record number N [SEP] -> 5 tokens each.
  EXPECT_EQ(real.sum, 95 * 5);
}

TEST_F(GraphMetricsTest, EverySnapshotAddsUpWhileRecordsFlow) {
  const int n = 400;
  std::atomic<int64_t> put{0};
  std::atomic<bool> done{false};
  int snapshots = 0, bad = 0;
  std::thread scraper([&] {
    while (!done.load()) {
      GraphCounts c = graph_->counts();
      // The counts held at one instant between these reads.
      const int64_t published = sink_.total();
      const int64_t entered = put.load();
      ++snapshots;
      if (c.in_flight() < 0 || c.out + c.dead_total() > published || c.in > entered) ++bad;
    }
  });
  for (int i = 0; i < n; ++i) {
    put.fetch_add(1);
    Put(i, IsPoison(i) ? "" : "text " + std::to_string(i));
  }
  ASSERT_TRUE(graph_->Drain(60000).ok());
  done.store(true);
  scraper.join();
  EXPECT_EQ(bad, 0) << "of " << snapshots << " snapshots";
  EXPECT_GT(snapshots, 10);
  const GraphCounts c = graph_->counts();
  EXPECT_EQ(c.in, n);
  EXPECT_EQ(c.out + c.dead_total(), n);
  EXPECT_EQ(c.dead[static_cast<int>(Stage::kDecode)], n / 20);
}

}  // namespace
}  // namespace nlpflow
