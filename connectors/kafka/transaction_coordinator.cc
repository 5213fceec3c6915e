#include "connectors/kafka/transaction_coordinator.h"

#include <librdkafka/rdkafka.h>

#include "connectors/kafka/kafka_sink.h"

namespace nlpflow {

TransactionCoordinator::Outcome TransactionCoordinator::End(
    rd_kafka_t* consumer, const std::vector<TopicPartition>& release, bool abort,
    const std::set<TopicPartition>& assignment, uint64_t next_sequence) {
  rd_kafka_consumer_group_metadata_t* metadata = rd_kafka_consumer_group_metadata(consumer);
  std::vector<TopicPartitionOffset> sent;
  Outcome outcome;
  outcome.status = sink_->EndTransaction(
      [&] {
        sent = tracker_->TakeCommittable();
        return sent;
      },
      metadata, abort,
      [&](bool committed) {
        if (committed) {
          for (const TopicPartitionOffset& o : sent) {
            committed_[{o.topic, o.partition}] = o.offset;
          }
          tracker_->Forget(release, next_sequence);
          return;
        }
        // Everything since the last commit is gone: rewind what we keep to
        // the last committed position, or to where we started reading.
        for (const TopicPartitionOffset& o : tracker_->StartPositions()) {
          outcome.rewind[{o.topic, o.partition}] = o.offset;
        }
        for (const auto& [tp, offset] : committed_) outcome.rewind[tp] = offset;
        tracker_->ForgetAll(next_sequence);
      });
  rd_kafka_consumer_group_metadata_destroy(metadata);
  if (outcome.status.code() != StatusCode::kCancelled) {
    outcome.rewind.clear();
    return outcome;
  }
  for (const TopicPartition& tp : release) outcome.rewind.erase(tp);
  for (auto it = outcome.rewind.begin(); it != outcome.rewind.end();) {
    it = assignment.count(it->first) ? std::next(it) : outcome.rewind.erase(it);
  }
  return outcome;
}

}  // namespace nlpflow
