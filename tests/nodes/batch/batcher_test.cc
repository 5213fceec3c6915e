#include "nodes/batch/batcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace nlpflow {
namespace {

// Collects emitted batches; the test decides when infer "finishes" them.
struct Sink {
  std::mutex mu;
  std::vector<BatchPtr> batches;
  void Emit(BatchPtr b) {
    std::lock_guard<std::mutex> lock(mu);
    batches.push_back(std::move(b));
  }
  std::vector<size_t> Sizes() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<size_t> s;
    for (auto& b : batches) s.push_back(b->records.size());
    return s;
  }
  bool WaitFor(size_t n, std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (batches.size() >= n) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
};

RecordPtr Rec(uint64_t seq) {
  auto r = std::make_shared<Record>();
  r->sequence = seq;
  r->times.tokenized_us = NowMicros();
  return r;
}

TEST(BatcherTest, LoneRecordOnIdleStreamGoesAtOnce) {
  Sink sink;
  BatcherOptions o;
  o.max_queue_delay_us = 10'000'000;  // would be 10 s if it waited
  Batcher b(o, [&](BatchPtr x) { sink.Emit(std::move(x)); });
  b.Start();
  b.ExpectUpstream();
  b.Add(Rec(0));
  ASSERT_TRUE(sink.WaitFor(1, std::chrono::milliseconds(1000)));
  EXPECT_EQ(sink.Sizes(), std::vector<size_t>{1});
  b.BatchDone();
  b.Stop();
}

TEST(BatcherTest, WaitsForAnnouncedRecordsUpToMaxBatch) {
  Sink sink;
  BatcherOptions o;
  o.max_batch_size = 4;
  o.max_queue_delay_us = 10'000'000;
  Batcher b(o, [&](BatchPtr x) { sink.Emit(std::move(x)); });
  b.Start();
  for (int i = 0; i < 6; ++i) b.ExpectUpstream();
  for (int i = 0; i < 3; ++i) b.Add(Rec(i));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(sink.Sizes().empty()) << "3 of 4 with 3 more on the way must wait";
  b.Add(Rec(3));
  ASSERT_TRUE(sink.WaitFor(1));
  EXPECT_EQ(sink.Sizes(), std::vector<size_t>{4});
  b.BatchDone();
  b.Add(Rec(4));
  b.DropUpstream();  // the sixth became a dead letter: nothing more is coming
  ASSERT_TRUE(sink.WaitFor(2));
  EXPECT_EQ(sink.Sizes(), (std::vector<size_t>{4, 1}));
  b.BatchDone();
  b.Stop();
}

TEST(BatcherTest, QueueDelayClosesAPartialBatch) {
  Sink sink;
  BatcherOptions o;
  o.max_batch_size = 100;
  o.max_queue_delay_us = 20'000;
  Batcher b(o, [&](BatchPtr x) { sink.Emit(std::move(x)); });
  b.Start();
  for (int i = 0; i < 10; ++i) b.ExpectUpstream();  // more announced than sent
  const int64_t start = NowMicros();
  for (int i = 0; i < 3; ++i) b.Add(Rec(i));
  ASSERT_TRUE(sink.WaitFor(1));
  const int64_t waited = NowMicros() - start;
  EXPECT_EQ(sink.Sizes(), std::vector<size_t>{3});
  EXPECT_GE(waited, 19'000);
  b.BatchDone();
  b.Stop();
}

TEST(BatcherTest, BusyModelLetsBatchesGrowAndKeepsOrder) {
  Sink sink;
  BatcherOptions o;
  o.max_batch_size = 8;
  o.max_queue_delay_us = 0;
  Batcher b(o, [&](BatchPtr x) { sink.Emit(std::move(x)); });
  b.Start();
  b.ExpectUpstream();
  b.Add(Rec(0));
  ASSERT_TRUE(sink.WaitFor(1));
  // The only slot is busy: the next 20 records must wait, then leave as 8, 8, 4.
  for (int i = 1; i <= 20; ++i) {
    b.ExpectUpstream();
    b.Add(Rec(i));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(sink.Sizes().size(), 1u);
  for (int k = 0; k < 3; ++k) {
    b.BatchDone();
    ASSERT_TRUE(sink.WaitFor(2 + k));
  }
  EXPECT_EQ(sink.Sizes(), (std::vector<size_t>{1, 8, 8, 4}));
  uint64_t expect = 0;
  for (auto& batch : sink.batches) {
    for (auto& r : batch->records) {
      EXPECT_EQ(r->sequence, expect++);
      EXPECT_GT(r->times.batched_us, 0);
    }
  }
  b.BatchDone();
  b.Stop();
}

TEST(BatcherTest, StopFlushesEverythingWaiting) {
  Sink sink;
  BatcherOptions o;
  o.max_batch_size = 2;
  Batcher b(o, [&](BatchPtr x) { sink.Emit(std::move(x)); });
  b.Start();
  b.ExpectUpstream();
  b.Add(Rec(0));
  ASSERT_TRUE(sink.WaitFor(1));
  for (int i = 1; i <= 5; ++i) {
    b.ExpectUpstream();
    b.Add(Rec(i));
  }
  b.Stop();  // slot still busy: Stop sends them anyway
  EXPECT_EQ(sink.Sizes(), (std::vector<size_t>{1, 2, 2, 1}));
}

}  // namespace
}  // namespace nlpflow
