// A sink that writes one line per record to a stream, in input order.
//
// Records finish out of order (batches run in parallel); the sink holds a
// finished record until every record with a smaller sequence number has been
// written. Results are written as their encoded bytes, dead letters as their
// encoded dead letter, so line N of the output belongs to record N.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <ostream>
#include <string>

#include "common/result_sink.h"

namespace nlpflow {

class OrderedLineSink : public ResultSink {
 public:
  // `out` must outlive the sink. Sequence numbers must start at 0 and have no
  // gaps (each one is eventually published exactly once).
  explicit OrderedLineSink(std::ostream* out) : out_(out) {}

  void Publish(RecordPtr record) override;
  void PublishDeadLetter(RecordPtr record, std::string encoded) override;

  int64_t written() const;
  int64_t dead_letters() const;
  // Records waiting for an earlier one (0 once all are written).
  size_t pending() const;

 private:
  void Add(uint64_t sequence, std::string line, bool dead);

  std::ostream* out_;
  mutable std::mutex mu_;
  uint64_t next_ = 0;                                   // GUARDED_BY(mu_)
  std::map<uint64_t, std::string> waiting_;             // GUARDED_BY(mu_)
  int64_t written_ = 0;                                 // GUARDED_BY(mu_)
  int64_t dead_letters_ = 0;                            // GUARDED_BY(mu_)
};

}  // namespace nlpflow
