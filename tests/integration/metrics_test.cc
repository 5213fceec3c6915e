// The metrics endpoint against a real Kafka broker (scripts/kafka):
//   - `nlpflow run` as a child process, scraped while it works: in = out +
//     dead letters + in flight at every scrape, /readyz, lag to 0;
//   - the serve app in this process with its infer stage stalled by a gate:
//     the source takes exactly pipeline.max_in_flight records, pauses and
//     stays there; released, every record comes out exactly once.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "pipeline/config.h"
#include "pipeline/serve_app.h"
#include "tests/integration/test_util.h"
#include "tests/testing/fake_model.h"

namespace nlpflow::testing {
namespace {

using ::testing::HasSubstr;

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new KafkaEnvironment);

// One scrape: series text (name and labels, as written) to value.
using Scrape = std::map<std::string, double>;

Scrape Parse(const std::string& text) {
  Scrape s;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    s[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return s;
}

struct HttpAnswer {
  int status = -1;
  std::string body;
};

HttpAnswer Get(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5);
  auto r = c.Get(path.c_str());
  if (!r) return {};
  return {r->status, r->body};
}

double Sum(const Scrape& s, const std::string& prefix) {
  double total = 0;
  for (const auto& [k, v] : s) {
    if (k.rfind(prefix, 0) == 0) total += v;
  }
  return total;
}

// Checks the identity on one scrape; returns the failure, or "".
std::string CountsAddUp(const Scrape& s) {
  for (const char* name : {"nlpflow_records_in_total", "nlpflow_records_out_total",
                           "nlpflow_records_in_flight"}) {
    if (!s.count(name)) return std::string("missing ") + name;
  }
  const double in = s.at("nlpflow_records_in_total");
  const double out = s.at("nlpflow_records_out_total");
  const double dead = Sum(s, "nlpflow_records_dead_lettered_total{");
  const double in_flight = s.at("nlpflow_records_in_flight");
  if (in != out + dead + in_flight || in_flight < 0) {
    std::ostringstream m;
    m << "in " << in << " != out " << out << " + dead " << dead << " + in_flight " << in_flight;
    return m.str();
  }
  return "";
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bootstrap_ = KafkaCluster::bootstrap();
    ASSERT_FALSE(bootstrap_.empty()) << "the Kafka broker did not start";
  }

  std::string bootstrap_;
  const TestTopics topics_ = TopicsOfCurrentTest();
  TempDir tmp_;
};

TEST_F(MetricsTest, CountersAddUpAtEveryScrapeOfARunningPipeline) {
  std::vector<std::pair<std::string, std::string>> input;
  int good = 0, poison = 0;
  for (int i = 0; i < 1500; ++i) {
    input.emplace_back("g" + std::to_string(i), nlohmann::json{{"text", TestText(i)}}.dump());
    ++good;
    if (i % 50 == 25) {
      input.emplace_back("p-empty-" + std::to_string(i), R"({"text": ""})");
      input.emplace_back("p-json-" + std::to_string(i), R"({"text": "unterminated)");
      poison += 2;
    }
  }
  const int n = good + poison;
  CreateTopic(bootstrap_, topics_.in, 4);
  ProduceAll(bootstrap_, topics_.in, input);

  const int max_in_flight = 64;
  Process p(RunArgs(bootstrap_, topics_.in, topics_.out, topics_.dlq, topics_.group,
                    {"input.format=json", "pipeline.max_in_flight=" + std::to_string(max_in_flight),
                     "batch.max_batch_size=16"}),
            tmp_.path() + "/nlpflow.log");
  ASSERT_TRUE(p.WaitForLog("metrics listening on 127.0.0.1:", std::chrono::seconds(60))) << p.Log();
  std::smatch m;
  const std::string log = p.Log();
  ASSERT_TRUE(std::regex_search(log, m, std::regex("metrics listening on 127\\.0\\.0\\.1:(\\d+)")));
  const int port = std::stoi(m[1]);

  int scrapes = 0, busy_scrapes = 0;
  double max_in_flight_seen = 0;
  bool was_ready = false;
  std::vector<std::string> failures;
  Scrape last;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (std::chrono::steady_clock::now() < deadline) {
    HttpAnswer metrics = Get(port, "/metrics");
    ASSERT_EQ(metrics.status, 200) << p.Log();
    last = Parse(metrics.body);
    ++scrapes;
    if (std::string f = CountsAddUp(last); !f.empty()) failures.push_back(f);
    if (last.count("nlpflow_records_in_flight")) {
      max_in_flight_seen = std::max(max_in_flight_seen, last.at("nlpflow_records_in_flight"));
      if (last.at("nlpflow_records_in_flight") > 0) ++busy_scrapes;
    }
    if (!was_ready && Get(port, "/readyz").status == 200) was_ready = true;
    if (last["nlpflow_records_acknowledged_total"] == n &&
        Sum(last, "nlpflow_consumer_lag{") == 0 &&
        last.count("nlpflow_consumer_lag{topic=\"" + topics_.in + "\",partition=\"3\"}")) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("%d scrapes, %d with records in flight, at most %.0f in flight\n", scrapes,
              busy_scrapes, max_in_flight_seen);
  EXPECT_TRUE(failures.empty()) << failures.size() << " of " << scrapes
                                << " scrapes did not add up, first: " << failures.front();
  EXPECT_TRUE(was_ready);
  EXPECT_GT(busy_scrapes, 0) << "no scrape saw work in progress: the identity was not tested "
                                "under load";
  // At the end: everything in came out, as a result or a dead letter.
  EXPECT_EQ(last["nlpflow_records_in_total"], n) << p.Log();
  EXPECT_EQ(last["nlpflow_records_out_total"], good);
  EXPECT_EQ(last["nlpflow_records_dead_lettered_total{stage=\"decode\"}"], poison);
  EXPECT_EQ(Sum(last, "nlpflow_records_dead_lettered_total{"), poison);
  EXPECT_EQ(last["nlpflow_records_in_flight"], 0);
  EXPECT_EQ(last["nlpflow_records_acknowledged_total"], n);
  EXPECT_EQ(last["nlpflow_records_unacknowledged"], 0);
  EXPECT_LE(last["nlpflow_records_unacknowledged_max"], max_in_flight);
  EXPECT_EQ(last["nlpflow_records_in_flight_limit"], max_in_flight);
  EXPECT_GE(last["nlpflow_source_pauses_total"], 1) << "1,600 records against a bound of 64";
  EXPECT_EQ(last["nlpflow_source_assigned_partitions"], 4);
  for (int part = 0; part < 4; ++part) {
    EXPECT_EQ(last.count("nlpflow_consumer_lag{topic=\"" + topics_.in + "\",partition=\"" +
                         std::to_string(part) + "\"}"),
              1u)
        << part;
  }
  EXPECT_EQ(Sum(last, "nlpflow_consumer_lag{"), 0);
  // Histograms: one observation per result and stage; the sink's per
  // acknowledgement (results and dead letters).
  EXPECT_EQ(last["nlpflow_stage_compute_seconds_count{stage=\"infer\"}"], good);
  EXPECT_EQ(last["nlpflow_stage_queue_seconds_count{stage=\"batch\"}"], good);
  EXPECT_EQ(last["nlpflow_stage_compute_seconds_count{stage=\"sink\"}"], n);
  EXPECT_EQ(last["nlpflow_batch_size_sum"], good);
  EXPECT_GT(last["nlpflow_batch_tokens_sum{kind=\"padded\"}"],
            last["nlpflow_batch_tokens_sum{kind=\"real\"}"]);
  EXPECT_GT(last["nlpflow_process_resident_memory_bytes"], 0);
  EXPECT_EQ(Sum(last, "nlpflow_model_info{"), 1);
  EXPECT_EQ(Get(port, "/healthz").status, 200);

  // What the broker holds agrees.
  EXPECT_EQ(ConsumeAll(bootstrap_, topics_.out, good, std::chrono::seconds(60)).size(),
            static_cast<size_t>(good));
  EXPECT_EQ(ConsumeAll(bootstrap_, topics_.dlq, poison, std::chrono::seconds(60)).size(),
            static_cast<size_t>(poison));

  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(std::chrono::seconds(60)).value_or(-1), 0) << p.Log();
}

// Opens and closes the infer stage of the in-process app.
class Gate {
 public:
  void Set(bool open) {
    {
      std::lock_guard<std::mutex> l(mu_);
      open_ = open;
    }
    cv_.notify_all();
  }
  void Pass() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
};

TEST_F(MetricsTest, StalledInferPausesTheSourceAtTheBoundAndLosesNothing) {
  const int n = 3000, max_in_flight = 100;
  std::vector<std::pair<std::string, std::string>> input;
  for (int i = 0; i < n; ++i) input.emplace_back("k" + std::to_string(i), TestText(i));
  // One partition: its position is known from the first record on, so the
  // lag is exact while paused (see nlpflow_consumer_lag in README).
  CreateTopic(bootstrap_, topics_.in, 1);
  ProduceAll(bootstrap_, topics_.in, input);

  auto config = ParseConfig(
      "", {"kafka.bootstrap_servers=" + bootstrap_, "kafka.input_topics=[" + topics_.in + "]",
           "kafka.output_topic=" + topics_.out, "kafka.dead_letter_topic=" + topics_.dlq,
           "kafka.group_id=" + topics_.group,
           "model.instances=2", "pipeline.max_in_flight=" + std::to_string(max_in_flight),
           "metrics.listen=127.0.0.1:0"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  Gate gate;
  gate.Set(false);
  // Backpressure is the pipeline's, not the model's: a fake model will do.
  ServeAppTestHooks hooks;
  hooks.before_infer = [&] { gate.Pass(); };
  hooks.load_model_stack = [](const Config&) -> Result<ModelStack> {
    ModelStack stack;
    stack.tokenizer = std::make_unique<FakeTokenizer>();
    stack.model = std::make_unique<FakeModel>();
    stack.name = "fake";
    stack.version = "1";
    return stack;
  };
  auto app = ServeApp::Create(*config, std::move(hooks));
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  // Whatever fails below, the gate opens before the app stops (it would
  // wait for the held batches forever).
  struct OpenOnExit {
    Gate* gate;
    ~OpenOnExit() { gate->Set(true); }
  } open_on_exit{&gate};
  const std::string address = (*app)->metrics_address();
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  EXPECT_EQ(Get(port, "/readyz").body, "not ready: not started\n");
  ASSERT_TRUE((*app)->Start().ok());

  // The source takes records until max_in_flight are unacknowledged, then
  // pauses: the infer stage holds them all.
  Scrape s;
  for (int i = 0; i < 600; ++i) {
    s = Parse(Get(port, "/metrics").body);
    if (s["nlpflow_source_paused"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(s["nlpflow_source_paused"], 1);
  EXPECT_EQ(Get(port, "/readyz").status, 200);
  // Paused, polling on, for two seconds: not one record more comes in, and
  // the lag shows the rest waiting in Kafka.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const Scrape stalled = Parse(Get(port, "/metrics").body);
  std::printf("stalled: in %.0f, in flight %.0f, unacknowledged %.0f, lag %.0f, rss %.1f MiB\n",
              stalled.at("nlpflow_records_in_total"), stalled.at("nlpflow_records_in_flight"),
              stalled.at("nlpflow_records_unacknowledged"), Sum(stalled, "nlpflow_consumer_lag{"),
              stalled.at("nlpflow_process_resident_memory_bytes") / (1 << 20));
  EXPECT_EQ(stalled.at("nlpflow_source_paused"), 1);
  EXPECT_EQ(stalled.at("nlpflow_records_in_total"), max_in_flight);
  EXPECT_EQ(stalled.at("nlpflow_records_in_flight"), max_in_flight);
  EXPECT_EQ(stalled.at("nlpflow_records_unacknowledged"), max_in_flight);
  EXPECT_EQ(stalled.at("nlpflow_records_out_total"), 0);
  EXPECT_EQ(Sum(stalled, "nlpflow_consumer_lag{"), n - max_in_flight);
  EXPECT_EQ(CountsAddUp(stalled), "");

  gate.Set(true);
  Scrape done;
  for (int i = 0; i < 3000; ++i) {
    done = Parse(Get(port, "/metrics").body);
    EXPECT_EQ(CountsAddUp(done), "");
    if (done["nlpflow_records_acknowledged_total"] == n && Sum(done, "nlpflow_consumer_lag{") == 0) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(done["nlpflow_records_in_total"], n);
  EXPECT_EQ(done["nlpflow_records_out_total"], n);
  EXPECT_EQ(done["nlpflow_records_acknowledged_total"], n);
  EXPECT_EQ(done["nlpflow_records_in_flight"], 0);
  EXPECT_EQ(done["nlpflow_source_paused"], 0);
  EXPECT_GE(done["nlpflow_source_pauses_total"], 1);
  EXPECT_EQ(done["nlpflow_records_unacknowledged_max"], max_in_flight);
  EXPECT_EQ(Sum(done, "nlpflow_consumer_lag{"), 0);
  std::printf("released: %.0f pauses, peak rss %.1f MiB\n", done["nlpflow_source_pauses_total"],
              done["nlpflow_process_resident_memory_max_bytes"] / (1 << 20));
  ASSERT_TRUE((*app)->Stop().ok());

  // Every record exactly once on the output topic.
  std::map<std::string, int> seen;
  for (const auto& msg : ConsumeAll(bootstrap_, topics_.out, 2 * n, std::chrono::seconds(120),
                                    /*idle=*/std::chrono::seconds(3))) {
    ++seen[msg.key.value_or("")];
  }
  int missing = 0, duplicated = 0;
  for (const auto& [key, text] : input) {
    if (!seen.count(key)) {
      ++missing;
    } else if (seen[key] > 1) {
      ++duplicated;
    }
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(duplicated, 0);
  EXPECT_EQ(seen.size(), static_cast<size_t>(n));
  EXPECT_EQ(GroupLag(bootstrap_, topics_.group, topics_.in), 0);
}

TEST_F(MetricsTest, AMetricsPortInUseStopsStartUpNamingTheAddress) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  CreateTopic(bootstrap_, topics_.in, 1);
  auto r = RunCommand(RunArgs(bootstrap_, topics_.in, topics_.out, topics_.dlq, topics_.group,
                              {"metrics.listen=" + taken}),
                      std::chrono::seconds(60));
  close(fd);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("error metrics.listen " + taken +
                                  ": cannot listen on this address (in use, or not an "
                                  "address of this machine)"));
}

// A ServeApp config for this test's topics, metrics on a free port.
Result<Config> AppConfig(const std::string& bootstrap, const TestTopics& topics,
                         std::vector<std::string> extra = {}) {
  std::vector<std::string> sets = {
      "kafka.bootstrap_servers=" + bootstrap, "kafka.input_topics=[" + topics.in + "]",
      "kafka.output_topic=" + topics.out, "kafka.dead_letter_topic=" + topics.dlq,
      "kafka.group_id=" + topics.group, "model.path=" + SourceDir() + "/models/all-MiniLM-L6-v2",
      "model.instances=1", "metrics.listen=127.0.0.1:0"};
  sets.insert(sets.end(), extra.begin(), extra.end());
  return ParseConfig("", sets);
}

int PortOf(const ServeApp& app) {
  const std::string address = app.metrics_address();
  return std::stoi(address.substr(address.rfind(':') + 1));
}

// Two replicas, one partition: the one without a partition is a standby and
// must be ready too, or a rolling update with more replicas than partitions
// never finishes.
TEST_F(MetricsTest, AStandbyWithNoPartitionsIsReady) {
  CreateTopic(bootstrap_, topics_.in, 1);
  auto config = AppConfig(bootstrap_, topics_);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  std::vector<std::unique_ptr<ServeApp>> apps;
  for (int i = 0; i < 2; ++i) {
    auto app = ServeApp::Create(*config);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    ASSERT_TRUE((*app)->Start().ok());
    apps.push_back(std::move(app).value());
  }
  std::vector<HttpAnswer> ready(2);
  for (int i = 0; i < 600; ++i) {
    for (int a = 0; a < 2; ++a) ready[a] = Get(PortOf(*apps[a]), "/readyz");
    if (ready[0].status == 200 && ready[1].status == 200 &&
        (apps[0]->ready() || apps[1]->ready())) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  double assigned[2];
  for (int a = 0; a < 2; ++a) {
    EXPECT_EQ(ready[a].status, 200) << "replica " << a << ": " << ready[a].body;
    EXPECT_EQ(ready[a].body, "ready\n");
    assigned[a] = Parse(Get(PortOf(*apps[a]), "/metrics").body)["nlpflow_source_assigned_partitions"];
  }
  // One partition, two members: one has it, the other stands by.
  EXPECT_EQ(assigned[0] + assigned[1], 1);
  for (auto& app : apps) EXPECT_TRUE(app->Stop().ok());
}

// The Grafana dashboard (docker/grafana/dashboards/nlpflow.json) queries
// series by name: every one it names must exist on a running pipeline's
// /metrics, or its panel is empty.
TEST_F(MetricsTest, EverySeriesTheDashboardQueriesExists) {
  CreateTopic(bootstrap_, topics_.in, 2);
  std::vector<std::pair<std::string, std::string>> input;
  for (int i = 0; i < 20; ++i) input.emplace_back("k" + std::to_string(i), TestText(i));
  input.emplace_back("poison", "");  // a dead letter (stage decode: empty text)
  ProduceAll(bootstrap_, topics_.in, input);
  auto config = AppConfig(bootstrap_, topics_);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  auto app = ServeApp::Create(*config);
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  ASSERT_TRUE((*app)->Start().ok());
  const int port = PortOf(**app);
  Scrape s;
  for (int i = 0; i < 600; ++i) {
    s = Parse(Get(port, "/metrics").body);
    if (s["nlpflow_records_acknowledged_total"] == static_cast<double>(input.size()) &&
        Sum(s, "nlpflow_consumer_lag{") == 0 &&
        s.count("nlpflow_consumer_lag{topic=\"" + topics_.in + "\",partition=\"0\"}")) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(s["nlpflow_records_acknowledged_total"], input.size());

  std::ifstream f(SourceDir() + "/docker/grafana/dashboards/nlpflow.json");
  ASSERT_TRUE(f) << "docker/grafana/dashboards/nlpflow.json";
  const auto dashboard = nlohmann::json::parse(f);
  std::set<std::string> names;
  int queries = 0;
  for (const auto& panel : dashboard.at("panels")) {
    for (const auto& target : panel.at("targets")) {
      const std::string expr = target.at("expr");
      ++queries;
      const std::regex name_re("nlpflow_[a-z_]+");
      for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name_re);
           it != std::sregex_iterator(); ++it) {
        names.insert(it->str());
      }
    }
  }
  EXPECT_GE(queries, 15);
  EXPECT_GE(names.size(), 15u);
  for (const std::string& name : names) {
    bool found = false;
    for (const auto& [series, value] : s) {
      if (series == name || series.rfind(name + "{", 0) == 0) found = true;
    }
    EXPECT_TRUE(found) << "the dashboard queries " << name << ", which /metrics does not have";
  }
  // The panels' label filters name values that exist.
  EXPECT_TRUE(s.count("nlpflow_batch_tokens_sum{kind=\"real\"}"));
  EXPECT_TRUE(s.count("nlpflow_stage_compute_seconds_count{stage=\"sink\"}"));
  EXPECT_TRUE(s.count("nlpflow_records_dead_lettered_total{stage=\"decode\"}"));
  ASSERT_TRUE((*app)->Stop().ok());
}

}  // namespace
}  // namespace nlpflow::testing
