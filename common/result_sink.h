// Where a graph's results and dead letters go: a Kafka producer, a file.
#pragma once

#include <string>

#include "common/record.h"

namespace nlpflow {

// Implementations must be thread-safe: the graph calls them from several
// worker threads at once.
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  // record->encoded holds the bytes to publish. Takes ownership.
  virtual void Publish(RecordPtr record) = 0;
  // record->failed is set; `encoded` is its dead letter. Takes ownership.
  virtual void PublishDeadLetter(RecordPtr record, std::string encoded) = 0;
};

}  // namespace nlpflow
