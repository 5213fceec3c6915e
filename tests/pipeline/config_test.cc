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
