#include "tests/integration/test_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafkacpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "connectors/kafka/topic_admin.h"

namespace nlpflow::testing {
namespace fs = std::filesystem;

std::string SourceDir() { return NLPFLOW_SOURCE_DIR; }
std::string NlpflowBinary() { return std::string(NLPFLOW_BINARY_DIR) + "/nlpflow"; }

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

namespace {

std::string g_bootstrap;
std::string g_kafka_dir;

std::unique_ptr<RdKafka::Conf> Conf(const std::map<std::string, std::string>& props) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string err;
  for (const auto& [k, v] : props) {
    if (conf->set(k, v, err) != RdKafka::Conf::CONF_OK) {
      ADD_FAILURE() << "librdkafka property " << k << ": " << err;
    }
  }
  return conf;
}

}  // namespace

const std::string& KafkaCluster::Start() {
  if (!g_bootstrap.empty()) return g_bootstrap;
  g_kafka_dir = (fs::temp_directory_path() / ("nlpflow-it-kafka-" + std::to_string(getpid()))).string();
  // --owner: the cluster stops by itself if this test process dies.
  RunResult r = RunCommand({"bash", SourceDir() + "/scripts/kafka", "start", "--dir", g_kafka_dir,
                            "--owner", std::to_string(getpid())},
                           std::chrono::seconds(180));
  if (r.exit_code != 0) {
    ADD_FAILURE() << "scripts/kafka start failed (" << r.exit_code << "):\n" << r.output;
    return g_bootstrap;
  }
  // The bootstrap address is the last line of stdout.
  std::string out = r.output;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  g_bootstrap = out.substr(out.find_last_of('\n') + 1);
  return g_bootstrap;
}

void KafkaCluster::Stop() {
  if (g_kafka_dir.empty()) return;
  RunCommand({"bash", SourceDir() + "/scripts/kafka", "stop", "--dir", g_kafka_dir, "--grace", "0"},
             std::chrono::seconds(120));
  g_bootstrap.clear();
  g_kafka_dir.clear();
}

const std::string& KafkaCluster::bootstrap() { return g_bootstrap; }

TestTopics TopicsOfCurrentTest() {
  std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  // A parameterized test is named "Case/Param"; '/' is not allowed in a topic name.
  for (char& c : name) {
    if (c == '/') c = '-';
  }
  return {name + "-in", name + "-out", name + "-dlq", name + "-group"};
}

void CreateTopic(const std::string& bootstrap, const std::string& topic, int partitions) {
  Status s = CreateTopics(bootstrap, {{topic, partitions, 1}}, 30000);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

namespace {

class CountingDr : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& m) override {
    if (m.err() == RdKafka::ERR_NO_ERROR) {
      ++ok;
    } else {
      ++failed;
      last_error = m.errstr();
    }
  }
  int64_t ok = 0, failed = 0;
  std::string last_error;
};

}  // namespace

void ProduceAll(const std::string& bootstrap, const std::string& topic,
                const std::vector<std::pair<std::string, std::string>>& messages,
                const std::map<std::string, std::string>& headers) {
  CountingDr dr;
  auto conf = Conf({{"bootstrap.servers", bootstrap},
                    {"enable.idempotence", "true"},
                    {"linger.ms", "5"}});
  std::string err;
  conf->set("dr_cb", &dr, err);
  std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(conf.get(), err));
  ASSERT_TRUE(p) << err;
  for (const auto& [key, value] : messages) {
    while (true) {
      RdKafka::Headers* h = RdKafka::Headers::create();
      for (const auto& [name, v] : headers) h->add(name, v);
      // On success librdkafka owns the headers; otherwise they are ours.
      auto code = p->produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                             const_cast<char*>(value.data()), value.size(), key.data(),
                             key.size(), 0, h, nullptr);
      if (code != RdKafka::ERR_NO_ERROR) delete h;
      if (code == RdKafka::ERR__QUEUE_FULL) {
        p->poll(10);
        continue;
      }
      ASSERT_EQ(code, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(code);
      break;
    }
    p->poll(0);
  }
  ASSERT_EQ(p->flush(60000), RdKafka::ERR_NO_ERROR);
  p->poll(0);
  ASSERT_EQ(dr.failed, 0) << dr.last_error;
  ASSERT_EQ(dr.ok, static_cast<int64_t>(messages.size()));
}

namespace {

// Reads from the beginning until done(messages) or the timeout.
std::vector<Message> ConsumeWhile(const std::string& bootstrap, const std::string& topic,
                                  const std::function<bool(const std::vector<Message>&)>& done,
                                  std::chrono::seconds timeout,
                                  std::chrono::seconds idle = std::chrono::seconds(0)) {
  static int counter = 0;
  auto conf = Conf({{"bootstrap.servers", bootstrap},
                    {"group.id", "it-reader-" + std::to_string(getpid()) + "-" +
                                     std::to_string(++counter)},
                    {"auto.offset.reset", "earliest"},
                    {"enable.auto.commit", "false"},
                    {"fetch.wait.max.ms", "50"}});
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
  std::vector<Message> out;
  if (!c) {
    ADD_FAILURE() << err;
    return out;
  }
  c->subscribe({topic});
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto last = std::chrono::steady_clock::now();
  while (!done(out) && std::chrono::steady_clock::now() < deadline) {
    if (idle.count() > 0 && !out.empty() && std::chrono::steady_clock::now() - last > idle) break;
    std::unique_ptr<RdKafka::Message> m(c->consume(100));
    if (m->err() == RdKafka::ERR__TIMED_OUT || m->err() == RdKafka::ERR__PARTITION_EOF) continue;
    if (m->err() != RdKafka::ERR_NO_ERROR) continue;  // e.g. topic not yet created
    Message msg;
    if (m->key()) msg.key = *m->key();
    msg.value.assign(static_cast<const char*>(m->payload()), m->len());
    msg.partition = m->partition();
    msg.offset = m->offset();
    if (m->headers()) {
      for (const auto& h : m->headers()->get_all()) {
        msg.headers[h.key()] = std::string(static_cast<const char*>(h.value()), h.value_size());
      }
    }
    out.push_back(std::move(msg));
    last = std::chrono::steady_clock::now();
  }
  c->close();
  return out;
}

}  // namespace

std::vector<Message> ConsumeAll(const std::string& bootstrap, const std::string& topic,
                                size_t count, std::chrono::seconds timeout,
                                std::chrono::seconds idle) {
  return ConsumeWhile(
      bootstrap, topic, [count](const std::vector<Message>& m) { return m.size() >= count; },
      timeout, idle);
}

std::vector<Message> ConsumeUntilKeys(const std::string& bootstrap, const std::string& topic,
                                      size_t distinct_keys, std::chrono::seconds timeout) {
  std::set<std::string> keys;
  size_t seen = 0;
  return ConsumeWhile(
      bootstrap, topic,
      [&](const std::vector<Message>& m) {
        for (; seen < m.size(); ++seen) keys.insert(m[seen].key.value_or(""));
        return keys.size() >= distinct_keys;
      },
      timeout);
}

int64_t GroupLag(const std::string& bootstrap, const std::string& group,
                 const std::string& topic) {
  auto conf = Conf({{"bootstrap.servers", bootstrap}, {"group.id", group}});
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!c) {
    ADD_FAILURE() << err;
    return -1;
  }
  RdKafka::Metadata* md = nullptr;
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(c.get(), topic, nullptr, err));
  if (c->metadata(false, t.get(), &md, 10000) != RdKafka::ERR_NO_ERROR) {
    ADD_FAILURE() << "metadata for " << topic;
    return -1;
  }
  std::vector<RdKafka::TopicPartition*> parts;
  for (const auto* tm : *md->topics()) {
    for (const auto* pm : *tm->partitions()) {
      parts.push_back(RdKafka::TopicPartition::create(topic, pm->id()));
    }
  }
  delete md;
  c->committed(parts, 10000);
  int64_t lag = 0;
  for (auto* p : parts) {
    int64_t low = 0, high = 0;
    c->query_watermark_offsets(topic, p->partition(), &low, &high, 10000);
    const int64_t committed = p->offset() >= 0 ? p->offset() : 0;
    lag += high - committed;
  }
  RdKafka::TopicPartition::destroy(parts);
  c->close();
  return lag;
}

Process::Process(std::vector<std::string> argv, std::string log_path,
                 std::optional<std::string> stdin_path, std::optional<std::string> stdout_path)
    : log_path_(std::move(log_path)) {
  pid_ = fork();
  if (pid_ == 0) {
    int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int out = stdout_path ? open(stdout_path->c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644) : log;
    int in = open(stdin_path ? stdin_path->c_str() : "/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(log, 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
}

Process::~Process() {
  if (!exit_code_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

void Process::Signal(int signal) {
  if (pid_ > 0 && !exit_code_) kill(pid_, signal);
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string Process::Log() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Process::WaitForLog(const std::string& text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Log().find(text) != std::string::npos) return true;
    if (Wait(std::chrono::milliseconds(0))) return Log().find(text) != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

RunResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  TempDir dir;
  const std::string log = dir.path() + "/out.log";
  Process p(argv, log);
  RunResult r;
  auto code = p.Wait(timeout);
  if (!code) {
    p.Signal(SIGKILL);
    code = p.Wait(std::chrono::seconds(10));
    r.output = "(timed out)\n";
  }
  r.exit_code = code.value_or(-1);
  r.output += p.Log();
  return r;
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "nlpflow-test-XXXXXX").string();
  path_ = mkdtemp(tmpl.data());
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::vector<std::string> RunArgs(const std::string& bootstrap, const std::string& in_topic,
                                 const std::string& out_topic, const std::string& dlq_topic,
                                 const std::string& group,
                                 const std::vector<std::string>& extra_sets) {
  std::vector<std::string> args = {
      NlpflowBinary(), "run", "--config", SourceDir() + "/configs/minilm-embed.yaml",
      "--set", "kafka.bootstrap_servers=" + bootstrap,
      "--set", "kafka.input_topics=[" + in_topic + "]",
      "--set", "kafka.output_topic=" + out_topic,
      "--set", "kafka.dead_letter_topic=" + dlq_topic,
      "--set", "kafka.group_id=" + group,
      "--set", "model.path=" + SourceDir() + "/models/all-MiniLM-L6-v2",
      // A free port: tests (and other checkouts' tests) run side by side.
      "--set", "metrics.listen=127.0.0.1:0"};
  for (const auto& s : extra_sets) {
    args.push_back("--set");
    args.push_back(s);
  }
  return args;
}

std::vector<float> EmbeddingOfJson(const std::string& value) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.contains("embedding")) return {};
  return j["embedding"].get<std::vector<float>>();
}

std::string TestText(int i) {
  static const char* kSubjects[] = {"The engineer", "A small cat", "Our team", "The old train",
                                    "My neighbour", "The committee", "A bright student",
                                    "The river"};
  static const char* kVerbs[] = {"reviews", "watches", "builds", "follows", "describes",
                                 "questions", "paints", "remembers"};
  static const char* kObjects[] = {"the quarterly report", "a red balloon", "the new bridge",
                                   "an unusual sunset", "the Kafka cluster", "a long letter",
                                   "the mountain path", "twelve green bottles"};
  return std::string(kSubjects[i % 8]) + " " + kVerbs[(i / 8) % 8] + " " +
         kObjects[(i / 64) % 8] + " on day " + std::to_string(i) + ".";
}

}  // namespace nlpflow::testing
