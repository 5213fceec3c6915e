// The batcher's time source. Production uses the system clocks; tests use a
// fake one so that every batching decision happens at a time the test chose.
#pragma once

#include <chrono>
#include <cstdint>

#include "common/record.h"

namespace nlpflow {

class BatcherClock {
 public:
  virtual ~BatcherClock() = default;
  // Monotonic microseconds (the steady clock, as NowMicros()): queue delays
  // and the stage timestamps the batcher writes.
  virtual int64_t SteadyMicros() const = 0;
  // Milliseconds since the Unix epoch (the system clock): compared with
  // Kafka timestamps for record deadlines.
  virtual int64_t UnixMillis() const = 0;
};

class SystemBatcherClock : public BatcherClock {
 public:
  int64_t SteadyMicros() const override { return NowMicros(); }
  int64_t UnixMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // One instance for everyone; it has no state.
  static const SystemBatcherClock* Get() {
    static const SystemBatcherClock clock;
    return &clock;
  }
};

}  // namespace nlpflow
