// Broker faults under the serve graph, on a 3-node cluster (replication
// factor 3, min.insync.replicas 2) started through `scripts/kafka start
// --nodes 3`, checked by the delivery checker in both delivery modes:
//   LeaderKilled   the node leading input partition 0 is killed with SIGKILL
//                  mid-run and started again (scripts/kafka start-node)
//   BrokersPaused  every node is stopped with SIGSTOP for 20 s (the pipeline
//                  is cut off from the cluster), then resumed with SIGCONT
// 1% poison records in every input. If nlpflow exits (it does so, by design,
// on a fatal error) the test restarts it, as a supervisor would, and prints
// how often. Required as in fault_test.cc; and in exactly-once mode the
// pause must not end the process (its producer is rebuilt in place when the
// abort after the pause fails: one run).
// Sizes: NLPFLOW_FAULT_RECORDS (default 2000), NLPFLOW_FAULT_SEED.
#include <gtest/gtest.h>
#include <librdkafka/rdkafkacpp.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

#include "connectors/kafka/topic_admin.h"
#include "tests/integration/delivery_checker.h"
#include "tests/integration/test_util.h"

namespace nlpflow::testing {
namespace {

std::string g_dir;
std::string g_bootstrap;

class ThreeNodes : public ::testing::Environment {
 public:
  void SetUp() override {
    g_dir = (std::filesystem::temp_directory_path() /
             ("nlpflow-it-kafka3-" + std::to_string(getpid())))
                .string();
    RunResult r = RunCommand({"bash", SourceDir() + "/scripts/kafka", "start", "--nodes", "3",
                              "--dir", g_dir, "--owner", std::to_string(getpid())},
                             std::chrono::seconds(300));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::ifstream in(g_dir + "/bootstrap");
    std::getline(in, g_bootstrap);
  }
  void TearDown() override {
    RunCommand({"bash", SourceDir() + "/scripts/kafka", "stop", "--dir", g_dir, "--grace", "0"},
               std::chrono::seconds(120));
  }
};

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new ThreeNodes);

pid_t NodePid(int node) {
  std::ifstream in(g_dir + "/node" + std::to_string(node) + "/pid");
  pid_t pid = -1;
  in >> pid;
  return pid;
}

// The node id leading `topic`'s partition `partition`, or -1.
int LeaderOf(const std::string& topic, int32_t partition) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  conf->set("bootstrap.servers", g_bootstrap, err);
  std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(conf.get(), err));
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(p.get(), topic, nullptr, err));
  RdKafka::Metadata* md = nullptr;
  if (p->metadata(false, t.get(), &md, 10000) != RdKafka::ERR_NO_ERROR) return -1;
  int leader = -1;
  for (const auto* tm : *md->topics()) {
    for (const auto* pm : *tm->partitions()) {
      if (pm->id() == partition) leader = pm->leader();
    }
  }
  delete md;
  return leader;
}

class BrokerFaultTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(g_bootstrap.empty()) << "the 3-node cluster did not start";
    rng_.seed(FaultSeed());
    n_ = EnvInt("NLPFLOW_FAULT_RECORDS", 2000);
    Status created = CreateTopics(g_bootstrap, {{topics_.in, 4, 3}}, 30000);
    ASSERT_TRUE(created.ok()) << created.ToString();
    check_ = ProduceInputWithPoison(g_bootstrap, topics_, n_);
  }

  bool exactly_once() const { return std::string(GetParam()) == "exactly_once"; }

  void StartPipeline() {
    ++runs_;
    p_ = std::make_unique<Process>(
        RunArgs(g_bootstrap, topics_.in, topics_.out, topics_.dlq, topics_.group,
                {"input.format=json", "input.max_record_bytes=2000", "batch.max_batch_size=32",
                 "pipeline.max_in_flight=256", "kafka.topic_partitions=4",
                 "kafka.topic_replication=3", "kafka.consumer.session.timeout.ms=10000",
                 "kafka.consumer.heartbeat.interval.ms=1000",
                 "kafka.consumer.partition.assignment.strategy=cooperative-sticky",
                 "delivery.mode=" + std::string(GetParam()), "delivery.instance_id=a",
                 // Longer than the faults, so that they do not time out
                 // messages or transactions on their own.
                 "delivery.transaction_timeout_ms=60000",
                 "kafka.producer.message.timeout.ms=60000"}),
        tmp_.path() + "/run-" + std::to_string(runs_) + ".log");
  }

  // Restarts the pipeline whenever it exited, until the group has no lag or
  // `timeout` passed.
  bool SuperviseUntilNoLag(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto code = p_->Wait(std::chrono::milliseconds(0))) {
        std::printf("[fault] nlpflow exited with %d; restarting. Its last lines:\n%s\n", *code,
                    Tail(p_->Log()).c_str());
        StartPipeline();
      }
      if (GroupLag(g_bootstrap, topics_.group, topics_.in) == 0) return true;
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    return false;
  }

  static std::string Tail(const std::string& log) {
    return log.size() > 3000 ? log.substr(log.size() - 3000) : log;
  }

  void Finish(const std::string& label, int max_runs = 0) {
    const bool drained = SuperviseUntilNoLag(std::chrono::seconds(300 + n_ / 10));
    p_->Signal(SIGTERM);
    p_->Wait(std::chrono::seconds(60));
    ASSERT_TRUE(drained) << "the group still lags\n" << Tail(p_->Log());
    const std::string log = p_->Log();
    int rebuilds = 0;
    for (size_t at = log.find("rebuilt (attempt"); at != std::string::npos;
         at = log.find("rebuilt (attempt", at + 1)) {
      ++rebuilds;
    }
    std::printf("[fault] %s: %d pipeline run(s), %d producer rebuild(s) in the last\n",
                label.c_str(), runs_, rebuilds);
    if (max_runs > 0) {
      EXPECT_LE(runs_, max_runs) << "nlpflow exited during the fault";
    }
    ExpectDelivered(CheckDelivery(check_, label, std::chrono::seconds(240)), exactly_once());
  }

  const TestTopics topics_ = TopicsOfCurrentTest();
  int n_ = 0;
  int runs_ = 0;
  std::mt19937 rng_;
  DeliveryCheck check_;
  std::unique_ptr<Process> p_;
  TempDir tmp_;
};

// (2) The leader of the input partitions' first partition killed hard and
// restarted mid-run.
TEST_P(BrokerFaultTest, LeaderKilled) {
  StartPipeline();
  ASSERT_TRUE(p_->WaitForLog("assigned", std::chrono::seconds(180))) << p_->Log();
  std::this_thread::sleep_for(
      std::chrono::milliseconds(std::uniform_int_distribution<int>(1000, 6000)(rng_)));
  const int leader = LeaderOf(topics_.in, 0);
  const int out_leader = LeaderOf(topics_.out, 0);
  ASSERT_GE(leader, 1);
  const pid_t pid = NodePid(leader);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  // (No GroupLag here: librdkafka 2.0.2's query_watermark_offsets was seen
  // to block for minutes while a partition leader is down.)
  std::printf("[fault] killed node %d (leader of %s[0]; %s[0] is led by node %d)\n", leader,
              topics_.in.c_str(), topics_.out.c_str(), out_leader);
  std::this_thread::sleep_for(std::chrono::seconds(8));
  RunResult restarted = RunCommand({"bash", SourceDir() + "/scripts/kafka", "start-node", "--dir",
                                    g_dir, std::to_string(leader)},
                                   std::chrono::seconds(240));
  ASSERT_EQ(restarted.exit_code, 0) << restarted.output;
  std::printf("[fault] node %d started again\n", leader);
  Finish(std::string("LeaderKilled/") + GetParam());
}

// (3) The cluster stopped (SIGSTOP) for 20 s, then resumed.
// Found a bug (fixed in KafkaSource): partitions paused by backpressure,
// lost during the pause and assigned again stayed paused in librdkafka.
TEST_P(BrokerFaultTest, BrokersPaused) {
  StartPipeline();
  ASSERT_TRUE(p_->WaitForLog("assigned", std::chrono::seconds(180))) << p_->Log();
  std::this_thread::sleep_for(
      std::chrono::milliseconds(std::uniform_int_distribution<int>(1000, 6000)(rng_)));
  std::vector<pid_t> pids;
  for (int node = 1; node <= 3; ++node) pids.push_back(NodePid(node));
  for (pid_t pid : pids) ASSERT_EQ(kill(pid, SIGSTOP), 0);
  std::printf("[fault] all 3 nodes stopped (SIGSTOP) for 20 s\n");
  std::this_thread::sleep_for(std::chrono::seconds(20));
  for (pid_t pid : pids) ASSERT_EQ(kill(pid, SIGCONT), 0);
  std::printf("[fault] resumed (SIGCONT)\n");
  Finish(std::string("BrokersPaused/") + GetParam(), exactly_once() ? 1 : 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, BrokerFaultTest,
                         ::testing::Values("at_least_once", "exactly_once"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace nlpflow::testing
