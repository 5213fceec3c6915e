#include "pipeline/partition_order_sink.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

namespace nlpflow {
namespace {

// Remembers what reached it, in order: "t/p:seq" and a trailing "!" for a
// dead letter.
class RecordingSink : public ResultSink {
 public:
  void Publish(RecordPtr r) override { Add(*r, false); }
  void PublishDeadLetter(RecordPtr r, std::string) override { Add(*r, true); }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  void Add(const Record& r, bool dead) {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(r.coords.topic + "/" + std::to_string(r.coords.partition) + ":" +
                    std::to_string(r.sequence) + (dead ? "!" : ""));
  }
  std::mutex mu_;
  std::vector<std::string> seen_;
};

RecordPtr Rec(uint64_t seq, const std::string& topic, int32_t partition) {
  auto r = std::make_shared<Record>();
  r->sequence = seq;
  r->coords = {topic, partition, static_cast<int64_t>(seq)};
  return r;
}

TEST(PartitionOrderSinkTest, HoldsFinishedRecordsForEarlierOnesOfTheirPartition) {
  RecordingSink next;
  PartitionOrderSink order(&next);
  std::vector<RecordPtr> r = {Rec(0, "t", 0), Rec(1, "t", 1), Rec(2, "t", 0),
                              Rec(3, "t", 1), Rec(4, "t", 0), Rec(5, "u", 0)};
  for (const auto& x : r) order.Arrived(*x);

  order.Publish(r[4]);
  order.Publish(r[3]);
  EXPECT_TRUE(next.seen().empty());
  EXPECT_EQ(order.held(), 2u);
  order.Publish(r[2]);
  order.Publish(r[5]);  // another topic: nothing before it
  EXPECT_EQ(next.seen(), (std::vector<std::string>{"u/0:5"}));
  order.Publish(r[1]);
  EXPECT_EQ(next.seen(), (std::vector<std::string>{"u/0:5", "t/1:1", "t/1:3"}));
  EXPECT_EQ(order.held(), 2u);
  order.PublishDeadLetter(r[0], "dead letter bytes");
  EXPECT_EQ(next.seen(),
            (std::vector<std::string>{"u/0:5", "t/1:1", "t/1:3", "t/0:0!", "t/0:2", "t/0:4"}));
  EXPECT_EQ(order.held(), 0u);
}

TEST(PartitionOrderSinkTest, ManyThreadsFinishingInRandomOrderKeepPartitionOrder) {
  RecordingSink next;
  PartitionOrderSink order(&next);
  constexpr int kRecords = 3000;
  std::vector<RecordPtr> records;
  for (int i = 0; i < kRecords; ++i) {
    records.push_back(Rec(i, "t", i % 3));
    order.Arrived(*records.back());
  }
  std::vector<RecordPtr> shuffled = records;
  std::mt19937 rng(42);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < shuffled.size(); i += 4) {
        if (shuffled[i]->sequence % 7 == 0) {
          order.PublishDeadLetter(shuffled[i], "x");
        } else {
          order.Publish(shuffled[i]);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto seen = next.seen();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kRecords));
  std::map<std::string, int64_t> last;
  for (const auto& s : seen) {
    const std::string partition = s.substr(0, s.find(':'));
    const int64_t seq = std::stoll(s.substr(s.find(':') + 1));
    auto it = last.find(partition);
    if (it != last.end()) {
      EXPECT_EQ(seq, it->second + 3) << s;
    }
    last[partition] = seq;
  }
  EXPECT_EQ(order.held(), 0u);
}

}  // namespace
}  // namespace nlpflow
