#include "nodes/batch/batcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nlpflow {
namespace {

using Seqs = std::vector<uint64_t>;

// Time stands still until the test moves it.
class FakeClock : public BatcherClock {
 public:
  int64_t SteadyMicros() const override { return steady_us; }
  int64_t UnixMillis() const override { return unix_ms; }
  void AdvanceMicros(int64_t us) {
    steady_us += us;
    unix_ms += us / 1000;
  }
  int64_t steady_us = 1'000'000;
  int64_t unix_ms = 1'700'000'000'000;
};

constexpr int64_t kT0 = 1'000'000;  // FakeClock's first steady time

// A batcher driven by Poll() on the test's thread, with a fake clock: every
// decision below happens at an exact, chosen time.
class PolicyTest : public ::testing::Test {
 protected:
  void Make(BatcherOptions o) {
    o.clock = &clock_;
    batcher_ = std::make_unique<Batcher>(
        o, [this](BatchPtr b) { batches_.push_back(std::move(b)); },
        [this](RecordPtr r) { expired_.push_back(std::move(r)); });
  }

  static RecordPtr Rec(uint64_t seq, int tokens) {
    auto r = std::make_shared<Record>();
    r->sequence = seq;
    r->encoding.ids.assign(static_cast<size_t>(tokens), 7);
    return r;
  }

  // Announces and adds a record in one go.
  void Add(RecordPtr r) {
    batcher_->ExpectUpstream();
    batcher_->Add(std::move(r));
  }
  void Add(uint64_t seq, int tokens) { Add(Rec(seq, tokens)); }

  // The sequence numbers of each emitted batch, in batch order.
  std::vector<Seqs> Batches() const {
    std::vector<Seqs> out;
    for (const auto& b : batches_) {
      Seqs s;
      for (const auto& r : b->records) s.push_back(r->sequence);
      out.push_back(s);
    }
    return out;
  }
  Seqs Expired() const {
    Seqs s;
    for (const auto& r : expired_) s.push_back(r->sequence);
    return s;
  }

  FakeClock clock_;
  std::vector<BatchPtr> batches_;
  std::vector<RecordPtr> expired_;
  std::unique_ptr<Batcher> batcher_;
};

TEST_F(PolicyTest, ClosesOnSize) {
  BatcherOptions o;
  o.max_batch_size = 4;
  o.max_queue_delay_us = 10'000;
  Make(o);
  for (int i = 0; i < 10; ++i) batcher_->ExpectUpstream();  // more on the way
  for (uint64_t i = 0; i < 3; ++i) batcher_->Add(Rec(i, 8));
  Batcher::PollResult r = batcher_->Poll();
  EXPECT_EQ(r.batch_size, 0u);
  EXPECT_EQ(r.retry_at_us, kT0 + 10'000);
  batcher_->Add(Rec(3, 8));
  r = batcher_->Poll();  // same instant: size alone closes it
  EXPECT_EQ(r.batch_size, 4u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0, 1, 2, 3}}));
  EXPECT_EQ(batches_[0]->closed_us, kT0);
  EXPECT_EQ(batches_[0]->records[0]->times.batched_us, kT0);
}

TEST_F(PolicyTest, ClosesOnTokenBudget) {
  BatcherOptions o;
  o.max_batch_size = 32;
  o.max_batch_tokens = 40;  // 4 records of 10 tokens
  o.max_queue_delay_us = 10'000;
  Make(o);
  for (int i = 0; i < 10; ++i) batcher_->ExpectUpstream();
  for (uint64_t i = 0; i < 3; ++i) batcher_->Add(Rec(i, 10));
  EXPECT_EQ(batcher_->Poll().batch_size, 0u) << "3 x 10 = 30 tokens: a fourth still fits";
  batcher_->Add(Rec(3, 10));
  EXPECT_EQ(batcher_->Poll().batch_size, 4u) << "4 x 10 = 40: nothing more fits";
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0, 1, 2, 3}}));
}

TEST_F(PolicyTest, TokenBudgetCountsTheLongestRecordTimesTheBatch) {
  BatcherOptions o;
  o.max_batch_tokens = 40;
  o.max_queue_delay_us = 10'000;
  Make(o);
  for (int i = 0; i < 10; ++i) batcher_->ExpectUpstream();
  batcher_->Add(Rec(0, 10));
  batcher_->Add(Rec(1, 10));
  EXPECT_EQ(batcher_->Poll().batch_size, 0u);
  // 3 x 30 = 90 > 40: the 30-token record cannot join; the batch is full.
  batcher_->Add(Rec(2, 30));
  EXPECT_EQ(batcher_->Poll().batch_size, 2u);
  batcher_->BatchDone();
  // 2 x 30 = 60 > 40: it goes alone, at once.
  EXPECT_EQ(batcher_->Poll().batch_size, 1u);
  // Longer than the whole budget on its own: alone, at once.
  batcher_->BatchDone();
  batcher_->Add(Rec(3, 50));
  EXPECT_EQ(batcher_->Poll().batch_size, 1u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0, 1}, {2}, {3}}));
}

TEST_F(PolicyTest, ClosesOnRealTokenBudget) {
  BatcherOptions o;
  o.max_batch_size = 32;
  o.max_batch_real_tokens = 100;  // the sum of token counts, not x longest
  o.max_queue_delay_us = 10'000;
  Make(o);
  for (int i = 0; i < 10; ++i) batcher_->ExpectUpstream();
  batcher_->Add(Rec(0, 60));
  batcher_->Add(Rec(1, 10));
  batcher_->Add(Rec(2, 10));
  // 60 + 10 + 10 = 80: the records x longest count would be 3 x 60 = 180,
  // but only real tokens count here, and 20 more still fit.
  EXPECT_EQ(batcher_->Poll().batch_size, 0u);
  batcher_->Add(Rec(3, 20));
  EXPECT_EQ(batcher_->Poll().batch_size, 4u) << "80 + 20 = 100: nothing more fits";
  batcher_->BatchDone();
  // A record over the whole budget goes alone, at once; the short one that
  // would not fit beside it waits for the next batch.
  batcher_->Add(Rec(4, 150));
  batcher_->Add(Rec(5, 5));
  EXPECT_EQ(batcher_->Poll().batch_size, 1u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{1, 2, 3, 0}, {4}}));
}

TEST_F(PolicyTest, FixedPolicyStopsAtTheFirstRecordOverTheRealTokenBudget) {
  BatcherOptions o;
  o.policy = BatchPolicy::kFixed;
  o.max_batch_size = 32;
  o.max_batch_real_tokens = 50;
  o.max_queue_delay_us = 10'000;
  Make(o);
  for (int i = 0; i < 10; ++i) batcher_->ExpectUpstream();
  batcher_->Add(Rec(0, 20));
  batcher_->Add(Rec(1, 40));  // 60 > 50: does not fit
  batcher_->Add(Rec(2, 10));  // would fit, but fixed keeps arrival order
  EXPECT_EQ(batcher_->Poll().batch_size, 1u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0}}));
}

TEST_F(PolicyTest, ClosesOnDelayOfTheOldestRecord) {
  BatcherOptions o;
  o.max_batch_size = 32;
  o.max_queue_delay_us = 5'000;
  Make(o);
  for (int i = 0; i < 10; ++i) batcher_->ExpectUpstream();
  batcher_->Add(Rec(0, 8));
  clock_.AdvanceMicros(3'000);
  batcher_->Add(Rec(1, 8));
  clock_.AdvanceMicros(1'999);  // the oldest has waited 4,999 µs
  Batcher::PollResult r = batcher_->Poll();
  EXPECT_EQ(r.batch_size, 0u);
  EXPECT_EQ(r.retry_at_us, kT0 + 5'000);
  clock_.AdvanceMicros(1);
  r = batcher_->Poll();
  EXPECT_EQ(r.batch_size, 2u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0, 1}}));
  EXPECT_EQ(batches_[0]->closed_us, kT0 + 5'000);
}

TEST_F(PolicyTest, LoneRecordOnIdleQueueGoesAtOnce) {
  BatcherOptions o;
  o.max_queue_delay_us = 10'000'000;  // 10 s if it waited
  Make(o);
  Add(0, 8);  // nothing else announced
  const Batcher::PollResult r = batcher_->Poll();
  EXPECT_EQ(r.batch_size, 1u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0}}));
  EXPECT_EQ(batches_[0]->closed_us, kT0);  // no time passed
}

TEST_F(PolicyTest, DroppedUpstreamRecordReleasesTheWaitingOnes) {
  BatcherOptions o;
  o.max_queue_delay_us = 10'000'000;
  Make(o);
  batcher_->ExpectUpstream();
  batcher_->ExpectUpstream();
  batcher_->Add(Rec(0, 8));
  EXPECT_EQ(batcher_->Poll().batch_size, 0u) << "one more is on its way";
  batcher_->DropUpstream();  // it became a dead letter upstream
  EXPECT_EQ(batcher_->Poll().batch_size, 1u);
}

TEST_F(PolicyTest, WaitsForAFreeInferSlot) {
  BatcherOptions o;
  o.max_batch_size = 8;
  o.max_queue_delay_us = 0;
  o.max_in_flight_batches = 2;
  Make(o);
  Add(0, 8);
  EXPECT_EQ(batcher_->Poll().batch_size, 1u);
  Add(1, 8);
  EXPECT_EQ(batcher_->Poll().batch_size, 1u);  // the second slot
  for (uint64_t i = 2; i < 12; ++i) Add(i, 8);
  const Batcher::PollResult r = batcher_->Poll();
  EXPECT_EQ(r.batch_size, 0u);
  EXPECT_EQ(r.retry_at_us, Batcher::kNever) << "only BatchDone can change this";
  batcher_->BatchDone();
  EXPECT_EQ(batcher_->Poll().batch_size, 8u);  // grown while the model was busy
  EXPECT_EQ(batcher_->Poll().batch_size, 0u);
  batcher_->BatchDone();
  EXPECT_EQ(batcher_->Poll().batch_size, 2u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0}, {1}, {2, 3, 4, 5, 6, 7, 8, 9}, {10, 11}}));
  EXPECT_EQ(batcher_->batches_emitted(), 4);
}

TEST_F(PolicyTest, FixedPolicyWaitsEvenWhenIdle) {
  BatcherOptions o;
  o.policy = BatchPolicy::kFixed;
  o.max_batch_size = 4;
  o.max_queue_delay_us = 2'000;
  Make(o);
  Add(0, 8);  // nothing else announced: dynamic would send it now
  Batcher::PollResult r = batcher_->Poll();
  EXPECT_EQ(r.batch_size, 0u);
  EXPECT_EQ(r.retry_at_us, kT0 + 2'000);
  clock_.AdvanceMicros(2'000);
  EXPECT_EQ(batcher_->Poll().batch_size, 1u);
  batcher_->BatchDone();
  for (uint64_t i = 1; i <= 4; ++i) Add(i, 8);
  EXPECT_EQ(batcher_->Poll().batch_size, 4u);  // full: at once
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0}, {1, 2, 3, 4}}));
}

TEST_F(PolicyTest, FixedPolicyKeepsArrivalOrder) {
  BatcherOptions o;
  o.policy = BatchPolicy::kFixed;
  o.max_batch_size = 2;
  Make(o);
  const int lengths[] = {5, 50, 6, 51};
  for (uint64_t i = 0; i < 4; ++i) Add(i, lengths[i]);
  EXPECT_EQ(batcher_->Poll().batch_size, 2u);
  batcher_->BatchDone();
  EXPECT_EQ(batcher_->Poll().batch_size, 2u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0, 1}, {2, 3}}));
}

TEST_F(PolicyTest, LengthGroupingPutsSimilarLengthsTogether) {
  BatcherOptions o;
  o.max_batch_size = 3;
  Make(o);
  const int lengths[] = {10, 100, 12, 98, 11, 101};
  for (uint64_t i = 0; i < 6; ++i) Add(i, lengths[i]);
  EXPECT_EQ(batcher_->Poll().batch_size, 3u);
  batcher_->BatchDone();
  EXPECT_EQ(batcher_->Poll().batch_size, 3u);
  // Anchor 10: then 11 (distance 1) and 12 (2). Anchor 100: 101 (1), 98 (2).
  // Each batch is in length order.
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0, 4, 2}, {3, 1, 5}}));
  // Padded to the longest record: 3 x 12 + 3 x 101 tokens, against
  // 3 x 100 + 3 x 101 in arrival order.
}

TEST_F(PolicyTest, LengthGroupingBreaksTiesByAge) {
  BatcherOptions o;
  o.max_batch_size = 3;
  Make(o);
  const int lengths[] = {20, 21, 19, 19, 21};
  for (uint64_t i = 0; i < 5; ++i) Add(i, lengths[i]);
  EXPECT_EQ(batcher_->Poll().batch_size, 3u);
  // 0 and the two oldest at distance 1 (1 and 2), in length order.
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{2, 0, 1}}));
}

// Padded tokens (batch size x longest record) over real tokens, for 64
// records of mixed lengths queued while the model was busy, in batches of 16.
double PaddedOverReal(BatchPolicy policy) {
  FakeClock clock;
  std::vector<BatchPtr> batches;
  BatcherOptions o;
  o.policy = policy;
  o.max_batch_size = 16;
  o.max_queue_delay_us = 0;
  o.clock = &clock;
  Batcher b(o, [&](BatchPtr x) { batches.push_back(std::move(x)); });
  b.ExpectUpstream();
  auto busy = std::make_shared<Record>();
  busy->encoding.ids.assign(5, 7);
  b.Add(busy);
  EXPECT_EQ(b.Poll().batch_size, 1u);  // occupies the only slot
  int64_t real = 0;
  for (int i = 0; i < 64; ++i) {
    // Short sentences (12-26 tokens) and long e-mails (200-256), mixed.
    const int tokens = i % 3 == 0 ? 200 + (i * 37) % 57 : 12 + (i * 11) % 15;
    real += tokens;
    auto r = std::make_shared<Record>();
    r->sequence = static_cast<uint64_t>(i);
    r->encoding.ids.assign(static_cast<size_t>(tokens), 7);
    b.ExpectUpstream();
    b.Add(r);
  }
  int64_t padded = 0;
  for (int k = 0; k < 4; ++k) {
    b.BatchDone();
    EXPECT_EQ(b.Poll().batch_size, 16u);
    size_t longest = 0;
    for (const auto& r : batches.back()->records) longest = std::max(longest, r->encoding.ids.size());
    padded += static_cast<int64_t>(longest * batches.back()->records.size());
  }
  b.BatchDone();
  return static_cast<double>(padded) / static_cast<double>(real);
}

TEST(BatcherPaddingTest, LengthGroupingCutsPadding) {
  const double fixed = PaddedOverReal(BatchPolicy::kFixed);
  const double dynamic = PaddedOverReal(BatchPolicy::kDynamic);
  // Arrival order puts a long record in every batch: each is padded to ~250.
  EXPECT_GT(fixed, 2.5) << "fixed " << fixed;
  // Grouped: 16 of the 22 long records, then two batches of 16 short ones;
  // only the last batch (the 6 long ones left and 10 short) is mixed.
  EXPECT_LT(dynamic, 1.6) << "dynamic " << dynamic;
  std::printf("padded/real tokens: fixed %.3f, dynamic %.3f\n", fixed, dynamic);
}

TEST_F(PolicyTest, DynamicBatchIsInLengthOrderFixedInArrivalOrder) {
  const int lengths[] = {30, 10, 20, 10, 30};
  BatcherOptions o;
  Make(o);
  for (uint64_t i = 0; i < 5; ++i) Add(i, lengths[i]);
  EXPECT_EQ(batcher_->Poll().batch_size, 5u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{1, 3, 2, 0, 4}}));
  batcher_->Stop();
  batches_.clear();
  o.policy = BatchPolicy::kFixed;
  o.max_queue_delay_us = 0;
  Make(o);
  for (uint64_t i = 0; i < 5; ++i) Add(i, lengths[i]);
  EXPECT_EQ(batcher_->Poll().batch_size, 5u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0, 1, 2, 3, 4}}));
}

TEST_F(PolicyTest, OldestRecordNeverStarves) {
  BatcherOptions o;
  o.max_batch_size = 2;
  Make(o);
  Add(0, 10);
  Add(1, 100);  // an outlier among short records
  Add(2, 10);
  Add(3, 10);
  EXPECT_EQ(batcher_->Poll().batch_size, 2u);
  batcher_->BatchDone();
  // More short records keep coming; grouping by length alone would keep
  // pairing them and leave the long one behind.
  Add(4, 10);
  Add(5, 10);
  EXPECT_EQ(batcher_->Poll().batch_size, 2u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0, 2}, {3, 1}}));
}

TEST_F(PolicyTest, ExpiredRecordsAreDeadLettered) {
  BatcherOptions o;
  o.deadline_ms = 1'000;
  Make(o);
  const int64_t now = clock_.unix_ms;
  auto at_deadline = Rec(0, 8);
  at_deadline->timestamp_ms = now - 1'000;  // exactly at its deadline: not past it
  auto past = Rec(1, 8);
  past->timestamp_ms = now - 1'001;
  auto no_timestamp = Rec(2, 8);  // timestamp -1: no deadline
  auto fresh = Rec(3, 8);
  fresh->timestamp_ms = now;
  for (auto* r : {&at_deadline, &past, &no_timestamp, &fresh}) Add(std::move(*r));
  const Batcher::PollResult r = batcher_->Poll();
  EXPECT_EQ(r.expired, 1u);
  EXPECT_EQ(r.batch_size, 3u);
  EXPECT_EQ(Expired(), (Seqs{1}));
  ASSERT_EQ(expired_.size(), 1u);
  EXPECT_TRUE(expired_[0]->failed);
  EXPECT_EQ(expired_[0]->failed_stage, Stage::kBatch);
  EXPECT_EQ(expired_[0]->failure_reason, "expired");
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0, 2, 3}}));
  EXPECT_EQ(batcher_->records_expired(), 1);
}

TEST_F(PolicyTest, RecordsExpireWhileTheModelIsBusy) {
  BatcherOptions o;
  o.deadline_ms = 1'000;
  Make(o);
  auto first = Rec(0, 8);
  first->timestamp_ms = clock_.unix_ms;
  Add(first);
  EXPECT_EQ(batcher_->Poll().batch_size, 1u);
  auto second = Rec(1, 8);
  second->timestamp_ms = clock_.unix_ms;
  Add(second);
  clock_.AdvanceMicros(1'001'000);  // the only slot stays busy past its deadline
  EXPECT_EQ(batcher_->Poll().expired, 0u) << "checked when it would be batched";
  batcher_->BatchDone();
  const Batcher::PollResult r = batcher_->Poll();
  EXPECT_EQ(r.expired, 1u);
  EXPECT_EQ(r.batch_size, 0u);
  EXPECT_EQ(Expired(), (Seqs{1}));
  EXPECT_EQ(batcher_->waiting(), 0u);
}

TEST_F(PolicyTest, ExpiredRecordsAreProcessedWhenConfigured) {
  BatcherOptions o;
  o.deadline_ms = 1'000;
  o.on_expired = ExpiredAction::kProcess;
  Make(o);
  auto past = Rec(0, 8);
  past->timestamp_ms = clock_.unix_ms - 5'000;
  Add(past);
  Add(1, 8);
  EXPECT_EQ(batcher_->Poll().batch_size, 2u);
  EXPECT_TRUE(expired_.empty());
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0, 1}}));
  EXPECT_FALSE(batches_[0]->records[0]->failed);
  EXPECT_EQ(batcher_->expired_processed(), 1);
  EXPECT_EQ(batcher_->records_expired(), 0);
}

RecordPtr WithHeader(RecordPtr r, const std::string& key, const std::string& value) {
  r->headers.push_back({key, value});
  return r;
}

TEST_F(PolicyTest, HighPriorityGoesFirst) {
  BatcherOptions o;
  o.max_batch_size = 2;
  Make(o);
  Add(0, 8);
  Add(WithHeader(Rec(1, 8), "nlpflow-priority", "normal"));
  Add(WithHeader(Rec(2, 30), "nlpflow-priority", "high"));
  Add(WithHeader(Rec(3, 8), "nlpflow-priority", "HIGH"));  // only "high" is high
  Add(WithHeader(Rec(4, 8), "nlpflow-priority", "high"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_GT(batcher_->Poll().batch_size, 0u);
    batcher_->BatchDone();
  }
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{4, 2}, {0, 1}, {3}}));
}

TEST_F(PolicyTest, HighPriorityBatchIsFilledWithNormalRecords) {
  BatcherOptions o;
  o.max_batch_size = 3;
  Make(o);
  Add(0, 40);
  Add(1, 9);
  Add(WithHeader(Rec(2, 10), "nlpflow-priority", "high"));
  EXPECT_EQ(batcher_->Poll().batch_size, 3u);
  // The high one anchors; normal ones fill, closest in length first (the
  // batch itself is in length order).
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{1, 2, 0}}));
}

TEST_F(PolicyTest, PriorityHeaderCanBeRenamedOrTurnedOff) {
  BatcherOptions o;
  o.max_batch_size = 1;
  o.priority_header = "";
  Make(o);
  Add(0, 8);
  Add(WithHeader(Rec(1, 8), "nlpflow-priority", "high"));
  EXPECT_EQ(batcher_->Poll().batch_size, 1u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0}}));

  batcher_->Stop();  // flushes record 1
  batches_.clear();
  o.priority_header = "x-prio";
  Make(o);
  Add(0, 8);
  Add(WithHeader(Rec(1, 8), "nlpflow-priority", "high"));
  Add(WithHeader(Rec(2, 8), "x-prio", "high"));
  EXPECT_EQ(batcher_->Poll().batch_size, 1u);
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{2}}));
}

TEST_F(PolicyTest, StopFlushesEverythingWaiting) {
  BatcherOptions o;
  o.max_batch_size = 2;
  o.deadline_ms = 1'000;
  Make(o);
  Add(0, 8);
  EXPECT_EQ(batcher_->Poll().batch_size, 1u);
  for (uint64_t i = 1; i <= 5; ++i) Add(i, 8);
  auto past = Rec(6, 8);
  past->timestamp_ms = clock_.unix_ms - 2'000;
  Add(past);
  batcher_->Stop();  // the slot is still busy: Stop sends them anyway
  EXPECT_EQ(Batches(), (std::vector<Seqs>{{0}, {1, 2}, {3, 4}, {5}}));
  EXPECT_EQ(Expired(), (Seqs{6}));
}

// The real thread and clock: the thread acts on the same decisions.
struct Collector {
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
  bool WaitFor(size_t n) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
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

RecordPtr RealRec(uint64_t seq) {
  auto r = std::make_shared<Record>();
  r->sequence = seq;
  r->encoding.ids = {101, 7, 102};
  return r;
}

TEST(BatcherThreadTest, LoneRecordGoesAtOnceAndDelayClosesPartialBatches) {
  Collector sink;
  BatcherOptions o;
  o.max_batch_size = 100;
  o.max_queue_delay_us = 20'000;
  Batcher b(o, [&](BatchPtr x) { sink.Emit(std::move(x)); });
  b.Start();
  b.ExpectUpstream();
  const int64_t start = NowMicros();
  b.Add(RealRec(0));
  ASSERT_TRUE(sink.WaitFor(1));
  EXPECT_LT(NowMicros() - start, 20'000) << "a lone record must not wait for its delay";
  b.BatchDone();
  for (int i = 0; i < 10; ++i) b.ExpectUpstream();  // more announced than sent
  const int64_t start2 = NowMicros();
  for (uint64_t i = 1; i <= 3; ++i) b.Add(RealRec(i));
  ASSERT_TRUE(sink.WaitFor(2));
  EXPECT_GE(NowMicros() - start2, 19'000);
  EXPECT_EQ(sink.Sizes(), (std::vector<size_t>{1, 3}));
  b.BatchDone();
  b.Stop();
}

TEST(BatcherThreadTest, BusyModelLetsBatchesGrowAndStopFlushes) {
  Collector sink;
  BatcherOptions o;
  o.max_batch_size = 8;
  o.max_queue_delay_us = 0;
  Batcher b(o, [&](BatchPtr x) { sink.Emit(std::move(x)); });
  b.Start();
  b.ExpectUpstream();
  b.Add(RealRec(0));
  ASSERT_TRUE(sink.WaitFor(1));
  for (uint64_t i = 1; i <= 20; ++i) {
    b.ExpectUpstream();
    b.Add(RealRec(i));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(sink.Sizes().size(), 1u) << "the only slot is busy";
  b.BatchDone();
  ASSERT_TRUE(sink.WaitFor(2));
  b.Stop();  // the slot is busy again: Stop sends the rest anyway
  EXPECT_EQ(sink.Sizes(), (std::vector<size_t>{1, 8, 8, 4}));
  uint64_t expect = 0;
  for (auto& batch : sink.batches) {
    for (auto& r : batch->records) EXPECT_EQ(r->sequence, expect++);
  }
}

}  // namespace
}  // namespace nlpflow
