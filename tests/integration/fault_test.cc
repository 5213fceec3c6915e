// Fault scenarios of the serve graph against a real Kafka broker, checked by
// the delivery checker (delivery_checker.h), each in at-least-once and
// exactly-once mode:
//   KilledAndRestarted   SIGKILL at random moments, restarted each time
//   ScaleOut             two, then three instances in one group on 12
//                        partitions; one of them killed mid-run
// Every input has 1% poison records (invalid UTF-8, broken JSON, a missing
// field, oversize) that must come out as exactly the dead letters.
// Required: 0 missing, 0 misrouted; exactly-once also 0 duplicates and
// per-partition order under read_committed. Duplicates are counted (and
// printed) for at-least-once.
//
// Sizes: NLPFLOW_FAULT_RECORDS (default 3000; scripts/test --soak: 100000),
// NLPFLOW_FAULT_KILLS (default 3; soak 5), NLPFLOW_FAULT_SEED (default: the
// time; printed so that a run can be repeated).
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <random>
#include <thread>

#include "tests/integration/delivery_checker.h"
#include "tests/integration/test_util.h"

namespace nlpflow::testing {
namespace {

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new KafkaEnvironment);

class FaultTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    bootstrap_ = KafkaCluster::bootstrap();
    ASSERT_FALSE(bootstrap_.empty()) << "the Kafka broker did not start";
    rng_.seed(FaultSeed());
  }

  bool exactly_once() const { return std::string(GetParam()) == "exactly_once"; }

  // Produces `n` records, 1% of them poison, keys unique.
  void ProduceInput(int n, int partitions) {
    CreateTopic(bootstrap_, topics_.in, partitions);
    check_ = ProduceInputWithPoison(bootstrap_, topics_, n);
  }

  std::vector<std::string> Args(const std::string& instance) {
    return RunArgs(bootstrap_, topics_.in, topics_.out, topics_.dlq, topics_.group,
                   {"input.format=json", "input.max_record_bytes=2000",
                    "batch.max_batch_size=32", "pipeline.max_in_flight=256",
                    "kafka.topic_partitions=12",
                    "kafka.consumer.session.timeout.ms=6000",
                    "kafka.consumer.heartbeat.interval.ms=500",
                    "kafka.consumer.partition.assignment.strategy=cooperative-sticky",
                    "delivery.mode=" + std::string(GetParam()),
                    "delivery.instance_id=" + instance,
                    // A killed instance that is not restarted leaves a
                    // transaction open; the broker aborts it after this.
                    "delivery.transaction_timeout_ms=15000",
                    "kafka.producer.message.timeout.ms=15000"});
  }

  std::unique_ptr<Process> Start(const std::string& instance, int run) {
    return std::make_unique<Process>(
        Args(instance), tmp_.path() + "/" + instance + "-" + std::to_string(run) + ".log");
  }

  // Waits until the group committed everything (lag 0) or `timeout` passed.
  bool WaitForNoLag(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (GroupLag(bootstrap_, topics_.group, topics_.in) == 0) return true;
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    return false;
  }

  void StopCleanly(Process& p) {
    p.Signal(SIGTERM);
    auto code = p.Wait(std::chrono::seconds(60));
    ASSERT_TRUE(code.has_value()) << "nlpflow did not stop within 60 s\n" << p.Log();
    EXPECT_EQ(*code, 0) << p.Log().substr(0, 20000);
  }

  std::string bootstrap_;
  const TestTopics topics_ = TopicsOfCurrentTest();
  std::mt19937 rng_;
  DeliveryCheck check_;
  TempDir tmp_;
};

// (1) SIGKILL at random moments, restarted each time; (5) 1% poison.
TEST_P(FaultTest, KilledAndRestarted) {
  const int n = EnvInt("NLPFLOW_FAULT_RECORDS", 3000);
  const int kills = EnvInt("NLPFLOW_FAULT_KILLS", 3);
  ProduceInput(n, 4);
  const auto start = std::chrono::steady_clock::now();
  // Kill moments: uniformly in [0.5 s, 0.5 s + spread] after each start got
  // its partitions, where the spread is about the time the whole input takes
  // (at ~150 records/s) divided among the kills.
  const int spread_ms = std::max(2000, n * 1000 / 150 / (kills + 1));
  std::uniform_int_distribution<int> after_ms(500, 500 + spread_ms);
  for (int k = 0; k < kills; ++k) {
    auto p = Start("a", k);
    ASSERT_TRUE(p->WaitForLog("assigned", std::chrono::seconds(120))) << p->Log();
    const int wait = after_ms(rng_);
    std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    p->Signal(SIGKILL);
    ASSERT_EQ(p->Wait(std::chrono::seconds(10)).value_or(-1), 128 + SIGKILL) << p->Log();
    std::printf("[fault] kill %d of %d, %d ms after the assignment; lag %lld\n", k + 1, kills, wait,
                static_cast<long long>(GroupLag(bootstrap_, topics_.group, topics_.in)));
  }
  auto last = Start("a", kills);
  // Up and assigned before anything else: when the last kill left no lag,
  // WaitForNoLag returns at once, and a SIGTERM that reaches the process
  // before main() has installed its handler ends it with 143 (seen in CI).
  ASSERT_TRUE(last->WaitForLog("assigned", std::chrono::seconds(120))) << last->Log();
  const bool drained = WaitForNoLag(std::chrono::seconds(120 + n / 20));
  StopCleanly(*last);
  ASSERT_TRUE(drained) << "the group still lags\n" << last->Log().substr(0, 20000);
  const auto took = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  std::printf("[fault] %s, %d records, %d kills: done in %lld s\n", GetParam(), n, kills,
              static_cast<long long>(took));
  ExpectDelivered(CheckDelivery(check_, std::string("KilledAndRestarted/") + GetParam(),
                                std::chrono::seconds(180)),
                  exactly_once());
}

// (4) Two, then three instances in one group on 12 partitions; one killed.
TEST_P(FaultTest, ScaleOut) {
  const int n = EnvInt("NLPFLOW_FAULT_RECORDS", 3000);
  ProduceInput(n, 12);
  auto a = Start("a", 0);
  auto b = Start("b", 0);
  ASSERT_TRUE(a->WaitForLog("assigned", std::chrono::seconds(120))) << a->Log();
  ASSERT_TRUE(b->WaitForLog("assigned", std::chrono::seconds(120))) << b->Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(
      3000, 3000 + std::min(20000, n))(rng_)));
  auto c = Start("c", 0);
  ASSERT_TRUE(c->WaitForLog("assigned", std::chrono::seconds(120))) << c->Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(
      2000, 2000 + std::min(20000, n))(rng_)));
  b->Signal(SIGKILL);
  ASSERT_EQ(b->Wait(std::chrono::seconds(10)).value_or(-1), 128 + SIGKILL);
  std::printf("[fault] instance b killed; lag %lld\n",
              static_cast<long long>(GroupLag(bootstrap_, topics_.group, topics_.in)));
  const bool drained = WaitForNoLag(std::chrono::seconds(180 + n / 20));
  StopCleanly(*a);
  StopCleanly(*c);
  ASSERT_TRUE(drained) << "the group still lags\n" << a->Log().substr(0, 20000);
  ExpectDelivered(
      CheckDelivery(check_, std::string("ScaleOut/") + GetParam(), std::chrono::seconds(180)),
      exactly_once());
}

INSTANTIATE_TEST_SUITE_P(Modes, FaultTest, ::testing::Values("at_least_once", "exactly_once"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace nlpflow::testing
