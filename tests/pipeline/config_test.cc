#include "pipeline/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
  deadline_ms: 250
  on_expired: process
  priority_header: x-prio
pipeline:
  ordered_per_partition: true
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->batch.policy, "fixed");
  EXPECT_EQ(c->batch.max_batch_tokens, 4096);
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
  for (const char* line : {"policy: fixed", "max_batch_tokens: 0", "deadline_ms: 100",
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

TEST(ConfigTest, DumpMasksSecrets) {
  auto c = ParseConfig("kafka:\n  consumer:\n    sasl.password: hunter2\n");
  ASSERT_TRUE(c.ok());
  const std::string dump = DumpConfig(*c);
  EXPECT_THAT(dump, HasSubstr("sasl.password: \"****\""));
  EXPECT_EQ(dump.find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace nlpflow
