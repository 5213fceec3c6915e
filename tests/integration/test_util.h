// Helpers for the integration tests: a real Kafka broker started through
// scripts/kafka (the same code users run), plain librdkafka producers and
// consumers playing the user's side, and the nlpflow binary as a child
// process (so that tests can SIGKILL it).
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nlpflow::testing {

// The repo root and the nlpflow binary.
std::string SourceDir();
std::string NlpflowBinary();

// The integer in the environment variable `name`, or `fallback` where it is
// unset or empty (test sizes and seeds).
int EnvInt(const char* name, int fallback);

// A broker cluster for the whole test binary. Start() runs
// `scripts/kafka start --dir DIR` and returns the bootstrap address; Stop()
// runs `scripts/kafka stop --dir DIR`.
class KafkaCluster {
 public:
  static const std::string& Start();
  static void Stop();
  static const std::string& bootstrap();
};

// The KafkaCluster for the whole test binary: started before its first test,
// stopped after its last. Register it with ::testing::AddGlobalTestEnvironment.
class KafkaEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { KafkaCluster::Start(); }
  void TearDown() override { KafkaCluster::Stop(); }
};

// Topics and a consumer group of the running test's own, so that tests on one
// cluster never see each other's records: its name (with a parameterized
// test's '/' as '-') followed by "-in", "-out", "-dlq" and "-group".
struct TestTopics {
  std::string in;
  std::string out;
  std::string dlq;
  std::string group;
};
TestTopics TopicsOfCurrentTest();

struct Message {
  std::optional<std::string> key;
  std::string value;
  std::map<std::string, std::string> headers;
  int32_t partition = -1;
  int64_t offset = -1;
};

// Creates a topic (fails the test on error).
void CreateTopic(const std::string& bootstrap, const std::string& topic, int partitions);

// Produces every (key, value), each with `headers`, and waits for all
// acknowledgements.
void ProduceAll(const std::string& bootstrap, const std::string& topic,
                const std::vector<std::pair<std::string, std::string>>& messages,
                const std::map<std::string, std::string>& headers = {});

// Reads `topic` from the beginning, in a group of its own, until `count`
// messages arrived, or `timeout` passed, or (if idle > 0) no message came for
// `idle` after the first; returns what it read.
std::vector<Message> ConsumeAll(const std::string& bootstrap, const std::string& topic,
                                size_t count, std::chrono::seconds timeout,
                                std::chrono::seconds idle = std::chrono::seconds(0));

// Reads `topic` from the beginning until messages with `distinct_keys`
// different keys arrived or `timeout` passed; returns what it read.
std::vector<Message> ConsumeUntilKeys(const std::string& bootstrap, const std::string& topic,
                                      size_t distinct_keys, std::chrono::seconds timeout);

// Sum over partitions of (end offset - committed offset of `group`); a
// partition without a commit counts its whole end offset.
int64_t GroupLag(const std::string& bootstrap, const std::string& group,
                 const std::string& topic);

// A child process with stdout and stderr going to a log file.
class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_path,
          std::optional<std::string> stdin_path = std::nullopt,
          std::optional<std::string> stdout_path = std::nullopt);
  ~Process();  // kills it if still running
  void Signal(int signal);
  // Exit code, or 128 + signal; nullopt if it did not end within timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // Waits until the log contains `text` (true) or the process ended or the
  // timeout passed (false).
  bool WaitForLog(const std::string& text, std::chrono::milliseconds timeout);
  std::string Log() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> exit_code_;
};

// Runs a command to completion: exit code and combined output.
struct RunResult {
  int exit_code = -1;
  std::string output;
};
RunResult RunCommand(const std::vector<std::string>& argv,
                     std::chrono::milliseconds timeout = std::chrono::seconds(120));

// A fresh temporary folder, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// `nlpflow run` arguments for a pipeline on the test cluster; the metrics
// endpoint on a free port of 127.0.0.1 (its log names it).
std::vector<std::string> RunArgs(const std::string& bootstrap, const std::string& in_topic,
                                 const std::string& out_topic, const std::string& dlq_topic,
                                 const std::string& group,
                                 const std::vector<std::string>& extra_sets = {});

// Parses a JSON result's embedding.
std::vector<float> EmbeddingOfJson(const std::string& value);

// Texts for tests: varied sentences, unique per index.
std::string TestText(int i);

}  // namespace nlpflow::testing
