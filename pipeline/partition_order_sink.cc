#include "pipeline/partition_order_sink.h"

namespace nlpflow {

PartitionOrderSink::Partition* PartitionOrderSink::Find(const Record& record) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& p = partitions_[{record.coords.topic, record.coords.partition}];
  if (!p) p = std::make_unique<Partition>();
  return p.get();
}

void PartitionOrderSink::Arrived(const Record& record) {
  Partition* p = Find(record);
  std::lock_guard<std::mutex> lock(p->mu);
  p->arrived.push_back(record.sequence);
}

void PartitionOrderSink::Publish(RecordPtr record) {
  Finish({std::move(record), false, {}});
}

void PartitionOrderSink::PublishDeadLetter(RecordPtr record, std::string encoded) {
  Finish({std::move(record), true, std::move(encoded)});
}

void PartitionOrderSink::Finish(Finished finished) {
  Partition* p = Find(*finished.record);
  std::lock_guard<std::mutex> lock(p->mu);
  const uint64_t sequence = finished.record->sequence;
  p->waiting.emplace(sequence, std::move(finished));
  // Pass on the longest finished prefix of the partition's arrivals. Calling
  // the next sink under the partition's lock is what keeps its order: two
  // threads could otherwise hand on consecutive records in either order.
  while (!p->arrived.empty()) {
    auto it = p->waiting.find(p->arrived.front());
    if (it == p->waiting.end()) break;
    Finished f = std::move(it->second);
    p->waiting.erase(it);
    p->arrived.pop_front();
    if (f.dead) {
      next_->PublishDeadLetter(std::move(f.record), std::move(f.encoded));
    } else {
      next_->Publish(std::move(f.record));
    }
  }
}

size_t PartitionOrderSink::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [key, p] : partitions_) {
    std::lock_guard<std::mutex> plock(p->mu);
    n += p->waiting.size();
  }
  return n;
}

}  // namespace nlpflow
