#include "connectors/kafka/backpressure.h"

#include <gtest/gtest.h>

namespace nlpflow {
namespace {

using Change = Backpressure::Change;

TEST(BackpressureTest, PausesAtTheBoundAndResumesAtResumeAt) {
  Backpressure b(100, 50);
  EXPECT_EQ(b.Update(99), Change::kNone);
  EXPECT_EQ(b.Update(100), Change::kPause);
  EXPECT_FALSE(b.paused());  // nothing changes until it is applied
  b.SetPaused(true);
  EXPECT_EQ(b.Update(120), Change::kNone);
  EXPECT_EQ(b.Update(51), Change::kNone);  // hysteresis
  EXPECT_EQ(b.Update(50), Change::kResume);
  b.SetPaused(false);
  EXPECT_EQ(b.Update(99), Change::kNone);
}

TEST(BackpressureTest, PartitionsAssignedWhilePausedArePausedAtTheirFirstMessage) {
  Backpressure b(10, 5);
  const TopicPartition t0{"t", 0}, t1{"t", 1}, t2{"t", 2};
  b.Assigned({t0});  // not paused: nothing to remember
  EXPECT_FALSE(b.TakeFirst(t0));
  b.SetPaused(true);
  b.Assigned({t1, t2});
  EXPECT_TRUE(b.TakeFirst(t1));
  EXPECT_FALSE(b.TakeFirst(t1));  // once
  b.Revoked(t2);
  EXPECT_FALSE(b.TakeFirst(t2));
  b.Assigned({t2});
  b.SetPaused(false);  // a resume forgets them: they fetch like the others
  EXPECT_FALSE(b.TakeFirst(t2));
}

TEST(BackpressureTest, ALongPauseIsReportedEveryTenSeconds) {
  Backpressure b(10, 5);
  const auto t = Backpressure::Clock::time_point() + std::chrono::hours(1);
  EXPECT_FALSE(b.ReportDue(t));  // not paused
  b.SetPaused(true);
  EXPECT_FALSE(b.ReportDue(t));  // the pause begins
  EXPECT_FALSE(b.ReportDue(t + std::chrono::seconds(9)));
  EXPECT_TRUE(b.ReportDue(t + std::chrono::seconds(10)));
  EXPECT_FALSE(b.ReportDue(t + std::chrono::seconds(15)));
  EXPECT_TRUE(b.ReportDue(t + std::chrono::seconds(20)));
  b.SetPaused(false);
  EXPECT_FALSE(b.ReportDue(t + std::chrono::seconds(40)));
  b.SetPaused(true);
  EXPECT_FALSE(b.ReportDue(t + std::chrono::seconds(41)));  // a new pause begins
}

}  // namespace
}  // namespace nlpflow
