// (6) nlpflow against a SASL listener (scripts/kafka start --scram):
// the right password works (records go through), a wrong one stops start-up
// fast (well before kafka.connect_timeout_ms) with one clear line, and no
// password appears in nlpflow's output. Passwords come from an environment
// variable ("${NAME}") or a file (security.sasl_password_file).
//
// Two brokers, started side by side: Kafka 4.1 (the one every other test
// uses) and Kafka 3.9 (scripts/kafka --kafka-version 3.9). librdkafka before
// 2.6.1 (Debian's is 2.0.2) repeats the client nonce in its SCRAM final
// message; Kafka 4.x compares the nonce exactly and rejects even the right
// password, Kafka 3.9 only checks its end and lets it in. So:
//   - PLAIN: right and wrong password on 4.1.
//   - SCRAM-SHA-256/512 on 3.9: right and wrong password, with any librdkafka.
//   - SCRAM-SHA-256/512 on 4.1: the wrong password; the right one works with
//     librdkafka >= 2.6.1 and, before that, fails fast with the same clear
//     line plus nlpflow's note about the version (ScramOnKafka4Test).
//
// (3) TLS, on the 4.1 cluster (scripts/kafka start --tls: a CA, broker and
// client certificates made at its start, SSL, MTLS and SASL_SSL listeners):
// nlpflow over SSL with security.ssl_ca_location; mutual TLS with a client
// certificate; SASL_SSL with PLAIN; and start-up fails fast with one line for
// a CA that did not sign the broker, a missing client certificate and an
// expired one.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/test_util.h"

namespace nlpflow::testing {
namespace {

constexpr char kUser[] = "alice";
constexpr char kPassword[] = "Tr0ub4dor-3";
constexpr char kWrong[] = "not-the-password-9";

// A cluster of this binary: its folder and the PLAINTEXT and SASL addresses.
struct Cluster {
  std::string version;  // scripts/kafka --kafka-version
  std::string dir, plain, sasl;
  // --tls (4.1 only): the listeners' addresses; the certificates are in dir/tls.
  std::string ssl, mtls, sasl_ssl;
};
Cluster g_kafka4{"4.1", "", "", "", "", "", ""}, g_kafka3{"3.9", "", "", "", "", "", ""};

Cluster& ClusterOf(const std::string& version) {
  return version == g_kafka3.version ? g_kafka3 : g_kafka4;
}

class SaslClusters : public ::testing::Environment {
 public:
  void SetUp() override {
    // Both at once: on 2 cores that takes a few seconds more than one alone.
    TempDir logs;
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<Process>> starts;
    for (Cluster* c : {&g_kafka4, &g_kafka3}) {
      c->dir = (std::filesystem::temp_directory_path() /
                ("nlpflow-it-kafka-sasl-" + c->version + "-" + std::to_string(getpid())))
                   .string();
      std::vector<std::string> args = {"bash", SourceDir() + "/scripts/kafka", "start", "--dir",
                                       c->dir, "--kafka-version", c->version, "--owner",
                                       std::to_string(getpid()), "--scram",
                                       std::string(kUser) + ":" + kPassword};
      if (c == &g_kafka4) args.push_back("--tls");
      starts.push_back(
          std::make_unique<Process>(args, logs.path() + "/start-" + c->version + ".log"));
    }
    std::vector<int> codes;
    for (auto& p : starts) codes.push_back(p->Wait(std::chrono::seconds(240)).value_or(-1));
    for (size_t i = 0; i < starts.size(); ++i) ASSERT_EQ(codes[i], 0) << starts[i]->Log();
    for (Cluster* c : {&g_kafka4, &g_kafka3}) {
      std::ifstream(c->dir + "/bootstrap") >> c->plain;
      std::ifstream(c->dir + "/bootstrap_sasl") >> c->sasl;
    }
    std::ifstream(g_kafka4.dir + "/bootstrap_ssl") >> g_kafka4.ssl;
    std::ifstream(g_kafka4.dir + "/bootstrap_mtls") >> g_kafka4.mtls;
    std::ifstream(g_kafka4.dir + "/bootstrap_sasl_ssl") >> g_kafka4.sasl_ssl;
    std::printf("[security] Kafka 4.1 and 3.9 ready after %lld ms\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - start)
                                           .count()));
  }
  void TearDown() override {
    for (Cluster* c : {&g_kafka4, &g_kafka3}) {
      if (c->dir.empty()) continue;
      RunCommand({"bash", SourceDir() + "/scripts/kafka", "stop", "--dir", c->dir, "--grace", "0"},
                 std::chrono::seconds(120));
    }
  }
};

const auto* const kEnv = ::testing::AddGlobalTestEnvironment(new SaslClusters);

// librdkafka 2.6.1 fixed the SCRAM nonce (confluentinc/librdkafka#4895); the
// low byte of the version is the pre-release number.
bool ScramWorksWithKafka4() { return (rd_kafka_version() >> 8) >= 0x020601; }

// nlpflow's note after a failed SCRAM login with an older librdkafka.
std::string ScramNote() {
  const int v = rd_kafka_version();
  return "(note: SCRAM against Kafka >= 4.0 needs librdkafka >= 2.6.1; linked: " +
         std::to_string((v >> 24) & 0xff) + "." + std::to_string((v >> 16) & 0xff) + "." +
         std::to_string((v >> 8) & 0xff) + ")";
}

struct Case {
  const char* kafka;      // Cluster::version
  const char* mechanism;  // security.sasl_mechanism
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string n = std::string("Kafka") + info.param.kafka + "_" + info.param.mechanism;
  for (char& c : n) {
    if (c == '-' || c == '.') c = '_';
  }
  return n;
}

class SaslTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    cluster_ = &ClusterOf(GetParam().kafka);
    ASSERT_FALSE(cluster_->sasl.empty()) << "the SASL cluster did not start";
    mechanism_ = GetParam().mechanism;
    name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : name_) {
      if (c == '/') c = '-';
    }
  }

  bool Scram() const { return mechanism_ != "PLAIN"; }

  std::vector<std::string> Args(const std::vector<std::string>& extra) {
    std::vector<std::string> sets = {"security.protocol=sasl_plaintext",
                                     "security.sasl_mechanism=" + mechanism_,
                                     std::string("security.sasl_username=") + kUser};
    sets.insert(sets.end(), extra.begin(), extra.end());
    return RunArgs(cluster_->sasl, name_ + "-in", name_ + "-out", name_ + "-dlq", name_ + "-group",
                   sets);
  }

  // Runs nlpflow with `password` in a file and kafka.connect_timeout_ms at
  // 60 s, and checks that it stops well before that: exit 1 with the one
  // authentication line, without the password. Returns its log.
  std::string ExpectAuthenticationFailure(const std::string& password) {
    const std::string file = tmp_.path() + "/password";
    std::ofstream(file) << password << "\n";
    const auto start = std::chrono::steady_clock::now();
    Process p(Args({"security.sasl_password_file=" + file, "kafka.connect_timeout_ms=60000"}),
              tmp_.path() + "/run.log");
    auto code = p.Wait(std::chrono::seconds(60));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
    const std::string log = p.Log();
    EXPECT_TRUE(code.has_value()) << log;
    EXPECT_EQ(code.value_or(-1), 1) << log;
    const size_t at =
        log.find("error Kafka authentication at '" + cluster_->sasl + "' failed: ");
    EXPECT_NE(at, std::string::npos) << log;
    EXPECT_NE(log.find("SASL authentication error"), std::string::npos) << log;
    EXPECT_EQ(log.find(password), std::string::npos) << "the password was logged";
    // The version note: for SCRAM with librdkafka < 2.6.1, whatever the broker.
    EXPECT_EQ(log.find(ScramNote()) != std::string::npos, Scram() && !ScramWorksWithKafka4())
        << log;
    const std::string line =
        at == std::string::npos ? "" : log.substr(at, log.find('\n', at) - at);
    std::printf("[security] Kafka %s %s: exit %d after %lld ms: %s\n", GetParam().kafka,
                mechanism_.c_str(), code.value_or(-1), static_cast<long long>(took),
                line.c_str());
    // Waiting out kafka.connect_timeout_ms would take longer than this bound,
    // which leaves room for loading the model first.
    EXPECT_LT(took, 30000);
    return log;
  }

  Cluster* cluster_ = nullptr;
  std::string mechanism_, name_;
  TempDir tmp_;
};

// Logins that work with the linked librdkafka.
class RightPasswordTest : public SaslTest {};

TEST_P(RightPasswordTest, RecordsGoThrough) {
  const std::string& plain = cluster_->plain;
  CreateTopic(plain, name_ + "-in", 2);
  std::vector<std::pair<std::string, std::string>> input;
  for (int i = 0; i < 50; ++i) input.emplace_back("k" + std::to_string(i), TestText(i));
  ProduceAll(plain, name_ + "-in", input);
  // The password from an environment variable, inherited by the child.
  setenv("NLPFLOW_TEST_KAFKA_PASSWORD", kPassword, 1);
  Process p(Args({"security.sasl_password=${NLPFLOW_TEST_KAFKA_PASSWORD}"}),
            tmp_.path() + "/run.log");
  auto results = ConsumeAll(plain, name_ + "-out", 50, std::chrono::seconds(180));
  p.Signal(SIGTERM);
  auto code = p.Wait(std::chrono::seconds(60));
  EXPECT_EQ(results.size(), 50u) << p.Log();
  EXPECT_EQ(code.value_or(-1), 0) << p.Log();
  EXPECT_EQ(p.Log().find(kPassword), std::string::npos) << "the password was logged";
}

class WrongPasswordTest : public SaslTest {};

TEST_P(WrongPasswordTest, FailsFastWithAClearError) { ExpectAuthenticationFailure(kWrong); }

// SCRAM against Kafka 4.x with librdkafka < 2.6.1: the broker rejects the
// right password; nlpflow says so as fast and as clearly as for a wrong one,
// and its note names the version problem.
class ScramOnKafka4Test : public SaslTest {};

TEST_P(ScramOnKafka4Test, RightPasswordFailsFastWithTheVersionNote) {
  ExpectAuthenticationFailure(kPassword);
}

std::vector<Case> RightPasswordCases() {
  std::vector<Case> cases = {{"4.1", "PLAIN"}, {"3.9", "SCRAM-SHA-256"}, {"3.9", "SCRAM-SHA-512"}};
  if (ScramWorksWithKafka4()) {
    cases.push_back({"4.1", "SCRAM-SHA-256"});
    cases.push_back({"4.1", "SCRAM-SHA-512"});
  }
  return cases;
}

std::vector<Case> ScramOnKafka4Cases() {
  if (ScramWorksWithKafka4()) return {};
  return {{"4.1", "SCRAM-SHA-256"}, {"4.1", "SCRAM-SHA-512"}};
}

INSTANTIATE_TEST_SUITE_P(Sasl, RightPasswordTest, ::testing::ValuesIn(RightPasswordCases()),
                         CaseName);
INSTANTIATE_TEST_SUITE_P(Sasl, WrongPasswordTest,
                         ::testing::Values(Case{"4.1", "PLAIN"}, Case{"4.1", "SCRAM-SHA-256"},
                                           Case{"4.1", "SCRAM-SHA-512"},
                                           Case{"3.9", "SCRAM-SHA-256"},
                                           Case{"3.9", "SCRAM-SHA-512"}),
                         CaseName);
INSTANTIATE_TEST_SUITE_P(Sasl, ScramOnKafka4Test, ::testing::ValuesIn(ScramOnKafka4Cases()),
                         CaseName);
// No cases with librdkafka >= 2.6.1: then RightPasswordTest covers them.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ScramOnKafka4Test);

// nlpflow against the TLS listeners of the 4.1 cluster.
class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(g_kafka4.ssl.empty()) << "the TLS cluster did not start";
    name_ = std::string("tls-") +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  std::string Cert(const std::string& file) const { return g_kafka4.dir + "/tls/" + file; }

  std::vector<std::string> Args(const std::string& bootstrap,
                                const std::vector<std::string>& sets) {
    return RunArgs(bootstrap, name_ + "-in", name_ + "-out", name_ + "-dlq", name_ + "-group",
                   sets);
  }

  // 50 records in through PLAINTEXT, nlpflow over `bootstrap` with `sets`,
  // 50 results out; nlpflow exits 0 on SIGTERM.
  void ExpectRecordsGoThrough(const std::string& bootstrap, const std::vector<std::string>& sets) {
    const std::string& plain = g_kafka4.plain;
    CreateTopic(plain, name_ + "-in", 2);
    std::vector<std::pair<std::string, std::string>> input;
    for (int i = 0; i < 50; ++i) input.emplace_back("k" + std::to_string(i), TestText(i));
    ProduceAll(plain, name_ + "-in", input);
    Process p(Args(bootstrap, sets), tmp_.path() + "/run.log");
    auto results = ConsumeAll(plain, name_ + "-out", 50, std::chrono::seconds(180));
    p.Signal(SIGTERM);
    auto code = p.Wait(std::chrono::seconds(60));
    EXPECT_EQ(results.size(), 50u) << p.Log();
    EXPECT_EQ(code.value_or(-1), 0) << p.Log();
  }

  // nlpflow over `bootstrap` with `sets` and kafka.connect_timeout_ms at 60 s
  // stops well before that: exit 1 with one line, "error Kafka
  // authentication at '<bootstrap>' failed: " and librdkafka's reason, which
  // contains `reason`.
  void ExpectStartUpFailure(const std::string& bootstrap, const std::vector<std::string>& sets,
                            const std::string& reason) {
    std::vector<std::string> all = sets;
    all.push_back("kafka.connect_timeout_ms=60000");
    const auto start = std::chrono::steady_clock::now();
    Process p(Args(bootstrap, all), tmp_.path() + "/run.log");
    auto code = p.Wait(std::chrono::seconds(60));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
    const std::string log = p.Log();
    EXPECT_EQ(code.value_or(-1), 1) << log;
    const size_t at = log.find("error Kafka authentication at '" + bootstrap + "' failed: ");
    ASSERT_NE(at, std::string::npos) << log;
    const std::string line = log.substr(at, log.find('\n', at) - at);
    EXPECT_NE(line.find(reason), std::string::npos) << line;
    std::printf("[security] %s: exit %d after %lld ms: %s\n", name_.c_str(), code.value_or(-1),
                static_cast<long long>(took), line.c_str());
    EXPECT_LT(took, 30000);
  }

  std::string name_;
  TempDir tmp_;
};

TEST_F(TlsTest, SslWithTheCaRecordsGoThrough) {
  ExpectRecordsGoThrough(g_kafka4.ssl,
                         {"security.protocol=ssl", "security.ssl_ca_location=" + Cert("ca.pem")});
}

TEST_F(TlsTest, MutualTlsWithAClientCertificateRecordsGoThrough) {
  ExpectRecordsGoThrough(g_kafka4.mtls, {"security.protocol=ssl",
                                         "security.ssl_ca_location=" + Cert("ca.pem"),
                                         "security.ssl_certificate_location=" + Cert("client.pem"),
                                         "security.ssl_key_location=" + Cert("client.key")});
}

TEST_F(TlsTest, SaslSslPlainRecordsGoThrough) {
  setenv("NLPFLOW_TEST_KAFKA_PASSWORD", kPassword, 1);
  ExpectRecordsGoThrough(g_kafka4.sasl_ssl,
                         {"security.protocol=sasl_ssl", "security.ssl_ca_location=" + Cert("ca.pem"),
                          "security.sasl_mechanism=PLAIN",
                          std::string("security.sasl_username=") + kUser,
                          "security.sasl_password=${NLPFLOW_TEST_KAFKA_PASSWORD}"});
}

TEST_F(TlsTest, WrongCaFailsFastWithOneLine) {
  ExpectStartUpFailure(
      g_kafka4.ssl, {"security.protocol=ssl", "security.ssl_ca_location=" + Cert("other-ca.pem")},
      "certificate verify failed");
}

TEST_F(TlsTest, ExpiredClientCertificateFailsFastWithOneLine) {
  ExpectStartUpFailure(g_kafka4.mtls,
                       {"security.protocol=ssl", "security.ssl_ca_location=" + Cert("ca.pem"),
                        "security.ssl_certificate_location=" + Cert("expired-client.pem"),
                        "security.ssl_key_location=" + Cert("expired-client.key")},
                       "SSL alert number");
}

TEST_F(TlsTest, MissingClientCertificateFailsFastWithOneLine) {
  ExpectStartUpFailure(
      g_kafka4.mtls, {"security.protocol=ssl", "security.ssl_ca_location=" + Cert("ca.pem")},
      "SSL alert number");
}

TEST(SecurityConfigTest, ValidateConfigMasksThePassword) {
  setenv("NLPFLOW_TEST_KAFKA_PASSWORD", kPassword, 1);
  RunResult r = RunCommand({NlpflowBinary(), "validate-config",
                            SourceDir() + "/configs/minilm-embed.yaml", "--set",
                            "security.protocol=sasl_ssl", "--set",
                            std::string("security.sasl_username=") + kUser, "--set",
                            "security.sasl_password=${NLPFLOW_TEST_KAFKA_PASSWORD}"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("sasl_password: \"****\""), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(kPassword), std::string::npos) << r.output;
}

}  // namespace
}  // namespace nlpflow::testing
