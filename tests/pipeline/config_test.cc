#include "pipeline/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace nlpflow {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, EmptyConfigGivesDefaults) {
  auto c = ParseConfig("");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kafka.bootstrap_servers, "embedded");
  EXPECT_EQ(c->batch.max_batch_size, 32);
  EXPECT_EQ(c->model.path, "models/all-MiniLM-L6-v2");
  EXPECT_EQ(c->kafka.input_topics, std::vector<std::string>{"texts"});
}

TEST(ConfigTest, ReadsValues) {
  auto c = ParseConfig(R"(
kafka:
  bootstrap_servers: 127.0.0.1:9092
  input_topics: [a, b]
  consumer:
    fetch.wait.max.ms: 5
batch:
  max_batch_size: 8
  max_queue_delay_us: 100
input:
  format: json
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kafka.bootstrap_servers, "127.0.0.1:9092");
  EXPECT_EQ(c->kafka.input_topics, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c->kafka.consumer.at("fetch.wait.max.ms"), "5");
  EXPECT_EQ(c->batch.max_batch_size, 8);
  EXPECT_EQ(c->batch.max_queue_delay_us, 100);
  EXPECT_EQ(c->input.format, "json");
}

TEST(ConfigTest, UnknownKeyIsNamed) {
  auto c = ParseConfig("batch:\n  max_batch_sise: 3\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(),
              HasSubstr("config key batch.max_batch_sise: unknown key"));
}

TEST(ConfigTest, UnknownSectionIsNamed) {
  auto c = ParseConfig("modle:\n  path: x\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("config key modle: unknown section"));
}

TEST(ConfigTest, WrongTypeIsNamed) {
  auto c = ParseConfig("batch:\n  max_batch_size: lots\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "config key batch.max_batch_size: expected an integer, got 'lots'");
}

TEST(ConfigTest, OutOfRangeIsNamed) {
  auto c = ParseConfig("batch:\n  max_batch_size: 0\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "config key batch.max_batch_size: must be between 1 and 4096, got 0");
}

TEST(ConfigTest, BadEnumIsNamed) {
  auto c = ParseConfig("input:\n  format: xml\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(),
              HasSubstr("config key input.format: must be text, json or protobuf, got 'xml'"));
}

TEST(ConfigTest, BatchAndOrderingDefaults) {
  auto c = ParseConfig("");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->batch.policy, "dynamic");
  EXPECT_EQ(c->batch.max_batch_tokens, 0);
  EXPECT_EQ(c->batch.max_batch_real_tokens, 0);
  EXPECT_EQ(c->batch.max_queue_delay_us, 5000);
  EXPECT_EQ(c->batch.deadline_ms, 0);
  EXPECT_EQ(c->batch.on_expired, "dead_letter");
  EXPECT_EQ(c->batch.priority_header, "nlpflow-priority");
  EXPECT_FALSE(c->pipeline.ordered_per_partition);
}

TEST(ConfigTest, ReadsBatchPolicyKeys) {
  auto c = ParseConfig(R"(
batch:
  policy: fixed
  max_batch_tokens: 4096
  max_batch_real_tokens: 384
  deadline_ms: 250
  on_expired: process
  priority_header: x-prio
pipeline:
  ordered_per_partition: true
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->batch.policy, "fixed");
  EXPECT_EQ(c->batch.max_batch_tokens, 4096);
  EXPECT_EQ(c->batch.max_batch_real_tokens, 384);
  EXPECT_EQ(c->batch.deadline_ms, 250);
  EXPECT_EQ(c->batch.on_expired, "process");
  EXPECT_EQ(c->batch.priority_header, "x-prio");
  EXPECT_TRUE(c->pipeline.ordered_per_partition);
  // An empty header name turns priorities off; it is not an error.
  auto d = ParseConfig("", {"batch.priority_header=''"});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->batch.priority_header, "");
}

TEST(ConfigTest, BadBatchPolicyValuesAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"batch.policy=greedy", "config key batch.policy: must be dynamic or fixed, got 'greedy'"},
      {"batch.max_batch_tokens=-1",
       "config key batch.max_batch_tokens: must be between 0 and 16777216, got -1"},
      {"batch.max_batch_tokens=many",
       "config key batch.max_batch_tokens: expected an integer, got 'many'"},
      {"batch.max_batch_real_tokens=16777217",
       "config key batch.max_batch_real_tokens: must be between 0 and 16777216, got 16777217"},
      {"batch.deadline_ms=-5", "config key batch.deadline_ms: must be between 0 and 86400000, got -5"},
      {"batch.deadline_ms=86400001",
       "config key batch.deadline_ms: must be between 0 and 86400000, got 86400001"},
      {"batch.on_expired=drop",
       "config key batch.on_expired: must be dead_letter or process, got 'drop'"},
      {"batch.priority_header=[a, b]",
       "config key batch.priority_header: expected a string, got a list"},
      {"pipeline.ordered_per_partition=maybe",
       "config key pipeline.ordered_per_partition: expected true or false, got 'maybe'"},
  };
  for (const auto& [set, message] : cases) {
    auto c = ParseConfig("", {set});
    ASSERT_FALSE(c.ok()) << set;
    EXPECT_EQ(c.status().message(), message) << set;
  }
}

TEST(ConfigTest, DumpListsTheBatchPolicyKeys) {
  auto c = ParseConfig("", {"batch.policy=fixed", "batch.deadline_ms=100",
                            "pipeline.ordered_per_partition=true"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const std::string dump = DumpConfig(*c);
  for (const char* line : {"policy: fixed", "max_batch_tokens: 0",
                           "max_batch_real_tokens: 0", "deadline_ms: 100",
                           "on_expired: dead_letter", "priority_header: nlpflow-priority",
                           "ordered_per_partition: true"}) {
    EXPECT_THAT(dump, HasSubstr(line));
  }
  auto again = ParseConfig(dump);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(DumpConfig(*again), dump);
}

TEST(ConfigTest, InvalidYamlIsReported) {
  auto c = ParseConfig("batch: [unclosed\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("config is not valid YAML"));
}

TEST(ConfigTest, OverridesWin) {
  auto c = ParseConfig("batch:\n  max_batch_size: 8\n",
                       {"batch.max_batch_size=16", "kafka.input_topics=[x, y]",
                        "kafka.producer.linger.ms=3", "model.name=m"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->batch.max_batch_size, 16);
  EXPECT_EQ(c->kafka.input_topics, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(c->kafka.producer.at("linger.ms"), "3");
  EXPECT_EQ(c->model.name, "m");
}

TEST(ConfigTest, BadOverrideIsNamed) {
  auto c = ParseConfig("", {"batch.nope=1"});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("config key batch.nope: unknown key"));
  auto d = ParseConfig("", {"novalue"});
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(d.status().message(), HasSubstr("expected key=value"));
}

TEST(ConfigTest, InputTopicMustDifferFromOutput) {
  auto c = ParseConfig("kafka:\n  input_topics: [out]\n  output_topic: out\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("config key kafka.input_topics"));
}

TEST(ConfigTest, MissingFileIsNamed) {
  auto c = LoadConfig("/nonexistent/x.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr("/nonexistent/x.yaml"));
}

TEST(ConfigTest, ShippedConfigLoadsAndDumpRoundTrips) {
  auto c = LoadConfig(std::string(NLPFLOW_SOURCE_DIR) + "/configs/minilm-embed.yaml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto again = ParseConfig(DumpConfig(*c));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(DumpConfig(*again), DumpConfig(*c));
}

TEST(ConfigTest, DeliveryModeAndTransactionalId) {
  auto c = ParseConfig("kafka:\n  group_id: g\ndelivery:\n  mode: exactly_once\n  instance_id: i3\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(ExactlyOnce(*c));
  EXPECT_EQ(TransactionalId(*c), "g-i3");
  c->delivery.transactional_id = "fixed";
  EXPECT_EQ(TransactionalId(*c), "fixed");
  auto d = ParseConfig("");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(ExactlyOnce(*d));
  EXPECT_EQ(d->delivery.commit_interval_ms, 100);
  EXPECT_EQ(d->delivery.transaction_timeout_ms, 60000);
}

TEST(ConfigTest, ExactlyOnceChecksTheMessageTimeout) {
  auto c = ParseConfig("", {"delivery.mode=exactly_once", "delivery.transaction_timeout_ms=10000",
                            "kafka.producer.message.timeout.ms=20000"});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "config key kafka.producer.message.timeout.ms: must be at most "
            "delivery.transaction_timeout_ms (10000) in exactly_once mode, got '20000'");
  auto bad = ParseConfig("", {"delivery.mode=twice"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "config key delivery.mode: must be at_least_once or exactly_once, got 'twice'");
  auto own = ParseConfig("", {"delivery.mode=exactly_once", "kafka.producer.transactional.id=x"});
  ASSERT_FALSE(own.ok());
  EXPECT_THAT(own.status().message(), HasSubstr("kafka.producer.transactional.id"));
}

TEST(ConfigTest, SecurityFromEnvironmentAndFile) {
  setenv("NLPFLOW_CONFIG_TEST_PW", "pw-from-env", 1);
  auto c = ParseConfig("", {"security.protocol=sasl_ssl", "security.sasl_username=u",
                            "security.sasl_password=${NLPFLOW_CONFIG_TEST_PW}",
                            "security.ssl_ca_location=/etc/ca.pem"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->security.sasl_password, "pw-from-env");
  auto props = SecurityProperties(*c);
  EXPECT_THAT(props, ::testing::Contains(std::make_pair(std::string("sasl.password"),
                                                        std::string("pw-from-env"))));
  EXPECT_THAT(props, ::testing::Contains(std::make_pair(std::string("security.protocol"),
                                                        std::string("sasl_ssl"))));
  EXPECT_THAT(props, ::testing::Contains(std::make_pair(std::string("ssl.ca.location"),
                                                        std::string("/etc/ca.pem"))));
  // The user's librdkafka properties win.
  auto merged = WithSecurity(*c, {{"sasl.username", "other"}});
  EXPECT_EQ(merged.at("sasl.username"), "other");
  EXPECT_EQ(merged.at("sasl.mechanisms"), "SCRAM-SHA-512");
  const std::string dump = DumpConfig(*c);
  EXPECT_THAT(dump, HasSubstr("sasl_password: \"****\""));
  EXPECT_EQ(dump.find("pw-from-env"), std::string::npos);

  const std::string file = ::testing::TempDir() + "/nlpflow-config-test-pw";
  std::ofstream(file) << "pw-from-file\n";
  auto f = ParseConfig("", {"security.protocol=sasl_plaintext", "security.sasl_username=u",
                            "security.sasl_password_file=" + file});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->security.sasl_password, "pw-from-file");
  auto plain = ParseConfig("");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(SecurityProperties(*plain).empty());
}

TEST(ConfigTest, SecurityErrorsNameTheKeyNotTheSecret) {
  unsetenv("NLPFLOW_CONFIG_TEST_UNSET");
  auto c = ParseConfig("", {"security.protocol=sasl_ssl", "security.sasl_username=u",
                            "security.sasl_password=${NLPFLOW_CONFIG_TEST_UNSET}"});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "config key security.sasl_password: environment variable NLPFLOW_CONFIG_TEST_UNSET "
            "is not set");
  auto missing = ParseConfig("", {"security.protocol=sasl_ssl", "security.sasl_username=u"});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("config key security.sasl_password: must be set"));
  auto plain = ParseConfig("", {"security.sasl_username=u", "security.sasl_password=secret-value"});
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.status().message().find("secret-value"), std::string::npos);
  auto bad = ParseConfig("", {"security.protocol=tls"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("config key security.protocol: must be"));
}

TEST(ConfigTest, DumpMasksSecrets) {
  auto c = ParseConfig("kafka:\n  consumer:\n    sasl.password: hunter2\n");
  ASSERT_TRUE(c.ok());
  const std::string dump = DumpConfig(*c);
  EXPECT_THAT(dump, HasSubstr("sasl.password: \"****\""));
  EXPECT_EQ(dump.find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace nlpflow
