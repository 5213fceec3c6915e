#include "connectors/file/ordered_line_sink.h"

namespace nlpflow {

void OrderedLineSink::Publish(RecordPtr record) {
  Add(record->sequence, std::move(record->encoded), false);
}

void OrderedLineSink::PublishDeadLetter(RecordPtr record, std::string encoded) {
  Add(record->sequence, std::move(encoded), true);
}

void OrderedLineSink::Add(uint64_t sequence, std::string line, bool dead) {
  std::lock_guard<std::mutex> lock(mu_);
  if (dead) ++dead_letters_;
  if (sequence != next_) {
    waiting_.emplace(sequence, std::move(line));
    return;
  }
  *out_ << line << '\n';
  ++next_;
  ++written_;
  for (auto it = waiting_.begin(); it != waiting_.end() && it->first == next_;
       it = waiting_.erase(it)) {
    *out_ << it->second << '\n';
    ++next_;
    ++written_;
  }
  out_->flush();
}

int64_t OrderedLineSink::written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return written_;
}

int64_t OrderedLineSink::dead_letters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dead_letters_;
}

size_t OrderedLineSink::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_.size();
}

}  // namespace nlpflow
