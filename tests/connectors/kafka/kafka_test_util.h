// Helpers for the Kafka connector tests: collect handed-over records, read
// committed offsets and watermarks with a plain librdkafka client.
#pragma once

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/record.h"
#include "connectors/kafka/kafka_source.h"
#include "connectors/kafka/offset_tracker.h"

namespace nlpflow::testing_kafka {

// No committed offset (librdkafka's RD_KAFKA_OFFSET_INVALID).
inline constexpr int64_t kNoOffset = -1001;

// Polls `condition` every 10 ms until it holds (true) or `timeout` passed
// (false).
inline bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Thread-safe list of the records a source handed over.
class Collector {
 public:
  void Add(RecordPtr record) {
    std::lock_guard<std::mutex> lock(mutex_);
    records_.push_back(std::move(record));
    cv_.notify_all();
  }
  // Waits until at least n records arrived; false on timeout.
  bool WaitFor(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return records_.size() >= n; });
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return records_.size();
  }
  std::vector<RecordPtr> records() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return records_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<RecordPtr> records_;
};

inline rd_kafka_t* NewClient(const std::string& bootstrap,
                             const std::string& group) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), errstr,
                    sizeof(errstr));
  rd_kafka_conf_set(conf, "group.id", group.c_str(), errstr, sizeof(errstr));
  rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
  return rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
}

// The group's committed offset of each partition (-1001 = none), asked
// without joining the group.
inline std::map<int32_t, int64_t> CommittedOffsets(const std::string& bootstrap,
                                                   const std::string& group,
                                                   const std::string& topic,
                                                   int partitions) {
  rd_kafka_t* rk = NewClient(bootstrap, group);
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
  }
  std::map<int32_t, int64_t> out;
  if (rd_kafka_committed(rk, list, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < list->cnt; ++i) {
      out[list->elems[i].partition] = list->elems[i].offset;
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_destroy(rk);
  return out;
}

// The high watermark (next offset to be written) of each partition. Retries
// for a few seconds: right after a topic is created a broker may answer
// NOT_LEADER for a moment (librdkafka's producers and consumers retry that
// by themselves; this query does not).
inline std::map<int32_t, int64_t> HighWatermarks(const std::string& bootstrap,
                                                 const std::string& topic,
                                                 int partitions) {
  rd_kafka_t* rk = NewClient(bootstrap, "watermarks");
  std::map<int32_t, int64_t> out;
  for (int p = 0; p < partitions; ++p) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      int64_t low = -1, high = -1;
      rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
          rk, topic.c_str(), p, &low, &high, 10000);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        out[p] = high;
        break;
      }
      std::fprintf(stderr, "watermarks of %s[%d]: %s\n", topic.c_str(), p,
                   rd_kafka_err2str(err));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  rd_kafka_destroy(rk);
  return out;
}

// A source whose handler marks each record done in `tracker` (as the
// pipeline does once a record's result is delivered) and hands it to `got`.
inline Result<std::unique_ptr<KafkaSource>> DoneMarkingSource(
    const KafkaSourceOptions& options, std::shared_ptr<OffsetTracker> tracker, Collector& got) {
  return KafkaSource::Create(options, tracker, [tracker, &got](RecordPtr r) {
    EXPECT_TRUE(tracker->MarkDone(r->coords.topic, r->coords.partition, r->coords.offset).ok());
    got.Add(std::move(r));
  });
}

// Test-name suffixes of the two rebalance protocols: "range" is eager.
inline std::string ProtocolName(const ::testing::TestParamInfo<const char*>& info) {
  return std::string(info.param) == "range" ? "Eager" : "Cooperative";
}

}  // namespace nlpflow::testing_kafka
