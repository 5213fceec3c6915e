#include "connectors/kafka/offset_tracker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace nlpflow {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using TPO = TopicPartitionOffset;

TEST(OffsetTrackerTest, InOrderCompletionAdvancesThePosition) {
  OffsetTracker t;
  for (int64_t o = 0; o < 5; ++o) ASSERT_TRUE(t.Track("in", 0, o).ok());
  EXPECT_EQ(t.in_flight(), 5);
  EXPECT_THAT(t.TakeCommittable(), IsEmpty());

  ASSERT_TRUE(t.MarkDone("in", 0, 0).ok());
  ASSERT_TRUE(t.MarkDone("in", 0, 1).ok());
  EXPECT_EQ(t.in_flight(), 3);
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 0, 2}));
  // Taken: nothing new until it advances again.
  EXPECT_THAT(t.TakeCommittable(), IsEmpty());

  ASSERT_TRUE(t.MarkDone("in", 0, 2).ok());
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 0, 3}));
}

TEST(OffsetTrackerTest, OutOfOrderCompletionWaitsForTheOldest) {
  OffsetTracker t;
  for (int64_t o = 10; o < 15; ++o) ASSERT_TRUE(t.Track("in", 3, o).ok());

  ASSERT_TRUE(t.MarkDone("in", 3, 12).ok());
  ASSERT_TRUE(t.MarkDone("in", 3, 13).ok());
  EXPECT_EQ(t.in_flight(), 3);
  EXPECT_THAT(t.TakeCommittable(), IsEmpty());
  EXPECT_THAT(t.CommitPositions(), IsEmpty());

  ASSERT_TRUE(t.MarkDone("in", 3, 10).ok());
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 3, 11}));

  // 11 completes the run 11, 12, 13; 14 is still in flight.
  ASSERT_TRUE(t.MarkDone("in", 3, 11).ok());
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 3, 14}));

  ASSERT_TRUE(t.MarkDone("in", 3, 14).ok());
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 3, 15}));
  EXPECT_EQ(t.in_flight(), 0);
}

TEST(OffsetTrackerTest, GapsAreTrackedByTheOffsetsSeen) {
  // 6, 8 and 9 never arrive (compacted away, transaction markers).
  OffsetTracker t;
  ASSERT_TRUE(t.Track("in", 0, 5).ok());
  ASSERT_TRUE(t.Track("in", 0, 7).ok());
  ASSERT_TRUE(t.Track("in", 0, 10).ok());

  EXPECT_EQ(t.MarkDone("in", 0, 6).code(), StatusCode::kNotFound);
  EXPECT_EQ(t.MarkDone("in", 0, 9).code(), StatusCode::kNotFound);

  ASSERT_TRUE(t.MarkDone("in", 0, 7).ok());
  EXPECT_THAT(t.TakeCommittable(), IsEmpty());

  ASSERT_TRUE(t.MarkDone("in", 0, 5).ok());
  // Everything seen up to 7 is done: read on from 8.
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 0, 8}));

  ASSERT_TRUE(t.MarkDone("in", 0, 10).ok());
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 0, 11}));
}

TEST(OffsetTrackerTest, ManyGapsReverseCompletion) {
  OffsetTracker t;
  for (int64_t o = 0; o <= 2000; o += 2) ASSERT_TRUE(t.Track("in", 0, o).ok());
  EXPECT_EQ(t.in_flight(), 1001);
  for (int64_t o = 2000; o > 0; o -= 2) ASSERT_TRUE(t.MarkDone("in", 0, o).ok());
  EXPECT_THAT(t.TakeCommittable(), IsEmpty());
  ASSERT_TRUE(t.MarkDone("in", 0, 0).ok());
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 0, 2001}));
  EXPECT_EQ(t.in_flight(), 0);
}

TEST(OffsetTrackerTest, PartitionsAndTopicsAreIndependentAndSorted) {
  OffsetTracker t;
  ASSERT_TRUE(t.Track("b", 1, 100).ok());
  ASSERT_TRUE(t.Track("a", 2, 7).ok());
  ASSERT_TRUE(t.Track("a", 0, 0).ok());
  ASSERT_TRUE(t.Track("a", 0, 1).ok());

  ASSERT_TRUE(t.MarkDone("b", 1, 100).ok());
  ASSERT_TRUE(t.MarkDone("a", 2, 7).ok());
  ASSERT_TRUE(t.MarkDone("a", 0, 1).ok());
  EXPECT_EQ(t.in_flight(), 1);
  EXPECT_THAT(t.TakeCommittable(),
              ElementsAre(TPO{"a", 2, 8}, TPO{"b", 1, 101}));
  ASSERT_TRUE(t.MarkDone("a", 0, 0).ok());
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"a", 0, 2}));
}

TEST(OffsetTrackerTest, TrackRejectsOffsetsThatDoNotMoveForward) {
  OffsetTracker t;
  ASSERT_TRUE(t.Track("in", 0, 5).ok());
  Status again = t.Track("in", 0, 5);
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(again.message(),
            "offset 5 of in[0] is not after the last tracked offset 5");
  EXPECT_EQ(t.Track("in", 0, 3).code(), StatusCode::kFailedPrecondition);
  // Also once 5 is done and popped from the window.
  ASSERT_TRUE(t.MarkDone("in", 0, 5).ok());
  EXPECT_EQ(t.Track("in", 0, 4).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(t.in_flight(), 0);

  Status negative = t.Track("in", 1, -1);
  EXPECT_EQ(negative.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(negative.message(), "cannot track offset -1 of in[1]");
}

TEST(OffsetTrackerTest, MarkDoneErrorsChangeNothing) {
  OffsetTracker t;
  ASSERT_TRUE(t.Track("in", 0, 0).ok());
  ASSERT_TRUE(t.Track("in", 0, 1).ok());
  ASSERT_TRUE(t.Track("in", 0, 2).ok());

  Status unknown = t.MarkDone("other", 0, 0);
  EXPECT_EQ(unknown.code(), StatusCode::kNotFound);
  EXPECT_EQ(unknown.message(), "other[0] is not tracked");

  ASSERT_TRUE(t.MarkDone("in", 0, 1).ok());
  Status twice = t.MarkDone("in", 0, 1);
  EXPECT_EQ(twice.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(twice.message(), "offset 1 of in[0] was already marked done");

  ASSERT_TRUE(t.MarkDone("in", 0, 0).ok());
  // 0 and 1 left the window: done before, not in flight now.
  Status popped = t.MarkDone("in", 0, 0);
  EXPECT_EQ(popped.code(), StatusCode::kNotFound);
  EXPECT_EQ(popped.message(), "offset 0 of in[0] is not in flight");
  EXPECT_EQ(t.MarkDone("in", 0, 3).code(), StatusCode::kNotFound);

  EXPECT_EQ(t.in_flight(), 1);
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 0, 2}));
}

TEST(OffsetTrackerTest, CommitPositionsIncludeTakenOnes) {
  OffsetTracker t;
  ASSERT_TRUE(t.Track("in", 0, 0).ok());
  ASSERT_TRUE(t.Track("in", 1, 0).ok());
  ASSERT_TRUE(t.Track("in", 2, 0).ok());
  ASSERT_TRUE(t.MarkDone("in", 0, 0).ok());
  ASSERT_TRUE(t.MarkDone("in", 2, 0).ok());
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 0, 1}, TPO{"in", 2, 1}));
  // Partition 1 has nothing done: no position.
  EXPECT_THAT(t.CommitPositions(), ElementsAre(TPO{"in", 0, 1}, TPO{"in", 2, 1}));
  EXPECT_THAT(t.CommitPositions({{"in", 2}, {"in", 1}, {"nope", 0}}),
              ElementsAre(TPO{"in", 2, 1}));
}

TEST(OffsetTrackerTest, RestoreCommittableRetriesAFailedCommit) {
  OffsetTracker t;
  for (int64_t o = 0; o < 6; ++o) ASSERT_TRUE(t.Track("in", 0, o).ok());
  ASSERT_TRUE(t.MarkDone("in", 0, 0).ok());
  std::vector<TPO> taken = t.TakeCommittable();
  ASSERT_THAT(taken, ElementsAre(TPO{"in", 0, 1}));

  t.RestoreCommittable(taken);
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 0, 1}));

  // A failure reported after a newer position was taken changes nothing: the
  // newer commit covers it.
  ASSERT_TRUE(t.MarkDone("in", 0, 1).ok());
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 0, 2}));
  t.RestoreCommittable(taken);
  EXPECT_THAT(t.TakeCommittable(), IsEmpty());

  // Restoring a failed position that advanced since returns the current one.
  ASSERT_TRUE(t.MarkDone("in", 0, 2).ok());
  taken = t.TakeCommittable();
  ASSERT_THAT(taken, ElementsAre(TPO{"in", 0, 3}));
  t.RestoreCommittable(taken);
  ASSERT_TRUE(t.MarkDone("in", 0, 3).ok());
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 0, 4}));
  // Forgotten partitions are ignored.
  t.RestoreCommittable({{"gone", 0, 9}});
  EXPECT_THAT(t.TakeCommittable(), IsEmpty());
}

TEST(OffsetTrackerTest, ForgetDropsAPartition) {
  OffsetTracker t;
  for (int64_t o = 0; o < 4; ++o) ASSERT_TRUE(t.Track("in", 0, o).ok());
  for (int64_t o = 0; o < 3; ++o) ASSERT_TRUE(t.Track("in", 1, o).ok());
  ASSERT_TRUE(t.MarkDone("in", 0, 2).ok());  // done but not committable
  ASSERT_TRUE(t.MarkDone("in", 1, 0).ok());
  EXPECT_EQ(t.in_flight(), 5);

  t.Forget({{"in", 0}, {"unknown", 4}}, /*fence_sequence=*/7);
  // Partition 0's unfinished records (0, 1 and 3) are still in the graph:
  // they keep counting until they leave it.
  EXPECT_EQ(t.in_flight(), 5);
  EXPECT_FALSE(t.IsCurrent("in", 0, 6));
  EXPECT_TRUE(t.IsCurrent("in", 0, 7));
  EXPECT_TRUE(t.IsCurrent("in", 1, 0));
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 1, 1}));
  EXPECT_EQ(t.MarkDone("in", 0, 0, /*sequence=*/0).code(), StatusCode::kNotFound);
  t.Release("in", 0, 1, /*sequence=*/1);
  EXPECT_EQ(t.in_flight(), 3);

  // Assigned again later: tracking starts over at the committed offset.
  ASSERT_TRUE(t.Track("in", 0, 0).ok());
  EXPECT_EQ(t.in_flight(), 4);
  // The old copy of offset 3 reports late: it must not touch the new state.
  EXPECT_EQ(t.MarkDone("in", 0, 3, /*sequence=*/3).code(), StatusCode::kNotFound);
  EXPECT_EQ(t.in_flight(), 3);
  ASSERT_TRUE(t.MarkDone("in", 0, 0, /*sequence=*/8).ok());
  EXPECT_THAT(t.TakeCommittable(), ElementsAre(TPO{"in", 0, 1}));
  EXPECT_EQ(t.in_flight(), 2);
}

// The bug this fixes: a late report of a record from before a revoke marked
// the same offset of the new assignment done, so the new copy's offset was
// committed before its result was written.
TEST(OffsetTrackerTest, LateReportAfterReassignmentDoesNotCommitTheNewCopy) {
  OffsetTracker t;
  ASSERT_TRUE(t.Track("in", 0, 5).ok());  // sequence 0
  t.Forget({{"in", 0}}, /*fence_sequence=*/1);
  ASSERT_TRUE(t.Track("in", 0, 5).ok());  // re-read, sequence 1
  EXPECT_EQ(t.MarkDone("in", 0, 5, /*sequence=*/0).code(), StatusCode::kNotFound);
  EXPECT_THAT(t.CommitPositions(), IsEmpty());
  EXPECT_EQ(t.in_flight(), 1);
  ASSERT_TRUE(t.MarkDone("in", 0, 5, /*sequence=*/1).ok());
  EXPECT_THAT(t.CommitPositions(), ElementsAre(TPO{"in", 0, 6}));
  EXPECT_EQ(t.in_flight(), 0);
}

TEST(OffsetTrackerTest, FenceKeepsDoneOffsetsCommittableAndReleaseBlocksThePosition) {
  OffsetTracker t;
  for (int64_t o = 0; o < 3; ++o) ASSERT_TRUE(t.Track("in", 0, o).ok());
  ASSERT_TRUE(t.MarkDone("in", 0, 0, 0).ok());
  t.Fence({{"in", 0}}, 3);
  EXPECT_FALSE(t.IsCurrent("in", 0, 1));
  EXPECT_EQ(t.Unfinished({{"in", 0}}), 2);
  // Produced before the fence, acknowledged after: still done.
  ASSERT_TRUE(t.MarkDone("in", 0, 2, 2).ok());
  // Dropped unproduced: no longer in flight, but never done.
  t.Release("in", 0, 1, 1);
  EXPECT_EQ(t.in_flight(), 0);
  EXPECT_EQ(t.Unfinished({{"in", 0}}), 0);
  EXPECT_THAT(t.CommitPositions(), ElementsAre(TPO{"in", 0, 1}));
  EXPECT_THAT(t.StartPositions(), ElementsAre(TPO{"in", 0, 0}));
}

TEST(OffsetTrackerTest, ForgetAllFencesEveryPartition) {
  OffsetTracker t;
  ASSERT_TRUE(t.Track("a", 0, 10).ok());
  ASSERT_TRUE(t.Track("b", 1, 20).ok());
  t.ForgetAll(2);
  EXPECT_FALSE(t.IsCurrent("a", 0, 0));
  EXPECT_FALSE(t.IsCurrent("b", 1, 1));
  EXPECT_THAT(t.StartPositions(), IsEmpty());
  EXPECT_EQ(t.in_flight(), 2);
  t.Release("a", 0, 10, 0);
  EXPECT_EQ(t.MarkDone("b", 1, 20, 1).code(), StatusCode::kNotFound);
  EXPECT_EQ(t.in_flight(), 0);
}

// One thread tracks, three finish in whatever order they get the records.
TEST(OffsetTrackerTest, ConcurrentTrackAndMarkDone) {
  constexpr int64_t kCount = 20000;
  constexpr int kPartitions = 4;
  OffsetTracker t;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::pair<int32_t, int64_t>> queue;
  bool finished = false;
  std::atomic<int> failures{0};

  std::vector<std::thread> workers;
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&, w] {
      std::mt19937 rng(w);
      std::vector<std::pair<int32_t, int64_t>> mine;
      while (true) {
        {
          std::unique_lock<std::mutex> lock(mutex);
          cv.wait(lock, [&] { return !queue.empty() || finished; });
          while (!queue.empty() && mine.size() < 16) {
            mine.push_back(queue.front());
            queue.pop_front();
          }
          if (mine.empty() && finished) return;
        }
        std::shuffle(mine.begin(), mine.end(), rng);
        for (auto [p, o] : mine) {
          if (!t.MarkDone("in", p, o).ok()) ++failures;
        }
        mine.clear();
      }
    });
  }
  std::vector<TPO> committed;
  for (int64_t i = 0; i < kCount; ++i) {
    int32_t p = static_cast<int32_t>(i % kPartitions);
    int64_t o = i / kPartitions * 3;  // gaps of 2 between offsets
    ASSERT_TRUE(t.Track("in", p, o).ok());
    {
      std::lock_guard<std::mutex> lock(mutex);
      queue.emplace_back(p, o);
    }
    cv.notify_one();
    if (i % 1000 == 0) {
      for (TPO& c : t.TakeCommittable()) committed.push_back(c);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    finished = true;
  }
  cv.notify_all();
  for (std::thread& w : workers) w.join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(t.in_flight(), 0);
  const int64_t last = (kCount / kPartitions - 1) * 3;
  EXPECT_THAT(t.CommitPositions(),
              ElementsAre(TPO{"in", 0, last + 1}, TPO{"in", 1, last + 1},
                          TPO{"in", 2, last + 1}, TPO{"in", 3, last + 1}));
  // Positions taken along the way never go backwards.
  std::map<int32_t, int64_t> seen;
  for (const TPO& c : committed) {
    EXPECT_GT(c.offset, seen[c.partition]);
    seen[c.partition] = c.offset;
  }
}

}  // namespace
}  // namespace nlpflow
