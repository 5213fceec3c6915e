#include "connectors/kafka/backpressure.h"

namespace nlpflow {

Backpressure::Change Backpressure::Update(int64_t in_flight) const {
  if (!paused_ && in_flight >= max_in_flight_) return Change::kPause;
  if (paused_ && in_flight <= resume_at_) return Change::kResume;
  return Change::kNone;
}

void Backpressure::SetPaused(bool paused) {
  if (!paused) pause_on_first_.clear();
  paused_ = paused;
}

bool Backpressure::ReportDue(Clock::time_point now) {
  if (!paused_) {
    next_report_ = Clock::time_point();
    return false;
  }
  if (now < next_report_) return false;
  const bool due = next_report_ != Clock::time_point();
  next_report_ = now + std::chrono::seconds(10);
  return due;
}

void Backpressure::Assigned(const std::vector<TopicPartition>& partitions) {
  if (!paused_) return;
  pause_on_first_.insert(partitions.begin(), partitions.end());
}

bool Backpressure::TakeFirst(const TopicPartition& partition) {
  return pause_on_first_.erase(partition) > 0;
}

}  // namespace nlpflow
