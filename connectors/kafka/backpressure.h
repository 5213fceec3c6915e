// Backpressure: when the source pauses and resumes its partitions. The bound
// is on records in flight (read, not yet written): at max_in_flight the
// source pauses every assigned partition, at resume_at it resumes them
// (hysteresis, so that it does not flap at the bound). A partition assigned
// while paused is not paused by librdkafka's assign (its fetch has not
// started); the source pauses it when its first message arrives and seeks
// back to that message, so it is remembered here until then.
//
// No Kafka here: the source applies what this decides. Poll thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <vector>

#include "connectors/kafka/offset_tracker.h"

namespace nlpflow {

class Backpressure {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Change { kNone, kPause, kResume };

  // REQUIRES: 0 <= resume_at < max_in_flight.
  Backpressure(int64_t max_in_flight, int64_t resume_at)
      : max_in_flight_(max_in_flight), resume_at_(resume_at) {}

  // What `in_flight` records in flight call for; nothing changes until the
  // source applied it (SetPaused).
  Change Update(int64_t in_flight) const;
  // The source paused (true) or resumed (false) its whole assignment. A
  // resume forgets the partitions waiting for their first message.
  void SetPaused(bool paused);
  bool paused() const { return paused_; }

  // True every 10 s while a pause lasts (not when it starts): a long pause is
  // worth a line in the log.
  bool ReportDue(Clock::time_point now);

  // Partitions newly assigned: while paused, each is paused at its first
  // message (TakeFirst).
  void Assigned(const std::vector<TopicPartition>& partitions);
  // True, once, if `partition` was assigned while paused and this is its
  // first message since; the source then pauses it and seeks back.
  bool TakeFirst(const TopicPartition& partition);
  void Revoked(const TopicPartition& partition) { pause_on_first_.erase(partition); }

  int64_t max_in_flight() const { return max_in_flight_; }
  int64_t resume_at() const { return resume_at_; }

 private:
  const int64_t max_in_flight_;
  const int64_t resume_at_;
  bool paused_ = false;
  std::set<TopicPartition> pause_on_first_;
  Clock::time_point next_report_;  // zero: the pause just began
};

}  // namespace nlpflow
