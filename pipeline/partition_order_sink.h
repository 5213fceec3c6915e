// A sink in front of another that lets the results and dead letters of each
// input partition through in the order their records arrived
// (pipeline.ordered_per_partition).
//
// Records finish out of order: batches of different lengths run on several
// model instances, and dead letters of decode overtake records still in the
// model. The graph tells this sink, in arrival order, which record arrived on
// which (topic, partition) (Arrived); a finished record is held until every
// record that arrived before it on its partition has been passed on.
// Partitions do not wait for each other.
//
// Threads: Arrived is called by one thread at a time (the source's), always
// before the record can finish. Publish and PublishDeadLetter may be called
// from any number of threads; the next sink is called with the partition's
// lock held, so it sees one partition's records one at a time, in order.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/result_sink.h"

namespace nlpflow {

class PartitionOrderSink : public ResultSink {
 public:
  // `next` must outlive this sink.
  explicit PartitionOrderSink(ResultSink* next) : next_(next) {}

  // `record` (its coordinates and sequence) entered the graph.
  void Arrived(const Record& record);

  void Publish(RecordPtr record) override;
  void PublishDeadLetter(RecordPtr record, std::string encoded) override;

  // Finished records held for an earlier one (0 once every record that
  // arrived has finished).
  size_t held() const;

 private:
  struct Finished {
    RecordPtr record;
    bool dead = false;
    std::string encoded;  // the dead letter
  };
  struct Partition {
    std::mutex mu;
    std::deque<uint64_t> arrived;          // GUARDED_BY(mu); sequences, in arrival order
    std::map<uint64_t, Finished> waiting;  // GUARDED_BY(mu); by sequence
  };

  Partition* Find(const Record& record);
  void Finish(Finished finished);

  ResultSink* const next_;
  mutable std::mutex mu_;
  // GUARDED_BY(mu_); a Partition, once made, lives as long as the sink.
  std::map<std::pair<std::string, int32_t>, std::unique_ptr<Partition>> partitions_;
};

}  // namespace nlpflow
