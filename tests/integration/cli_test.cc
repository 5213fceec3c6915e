// The command line's start-up errors: one clear line and a non-zero exit
// before any graph starts. No broker needed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/integration/test_util.h"

namespace nlpflow::testing {
namespace {

using ::testing::HasSubstr;

std::string Config() { return SourceDir() + "/configs/minilm-embed.yaml"; }

TEST(CliTest, ValidateConfigPrintsResolvedConfig) {
  auto r = RunCommand({NlpflowBinary(), "validate-config", Config(), "--set",
                       "batch.max_batch_size=7"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("max_batch_size: 7"));
  EXPECT_THAT(r.output, HasSubstr("bootstrap_servers: embedded"));
}

TEST(CliTest, BadKeyIsNamed) {
  auto r = RunCommand({NlpflowBinary(), "validate-config", Config(), "--set",
                       "batch.max_batch=7"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("config key batch.max_batch: unknown key"));
}

TEST(CliTest, BadValueInFileIsNamedWithTheFile) {
  TempDir dir;
  const std::string path = dir.path() + "/bad.yaml";
  std::ofstream(path) << "model:\n  instances: 0\n";
  auto r = RunCommand({NlpflowBinary(), "run", "--config", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr(path + ": config key model.instances: must be between 1 and 64, got 0"));
}

TEST(CliTest, MissingConfigFileIsNamed) {
  auto r = RunCommand({NlpflowBinary(), "run", "--config", "/nonexistent/pipeline.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("config file /nonexistent/pipeline.yaml cannot be read"));
}

TEST(CliTest, MissingModelStopsStartUpWithOneLine) {
  auto r = RunCommand({NlpflowBinary(), "run", "--config", Config(), "--set",
                       "model.path=/nonexistent/model", "--set", "metrics.listen=127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("model.path /nonexistent/model is not a folder"));
}

TEST(CliTest, UnreachableBrokerStopsStartUpNamingIt) {
  auto r = RunCommand({NlpflowBinary(), "run", "--config", Config(), "--set",
                       "kafka.bootstrap_servers=127.0.0.1:1", "--set",
                       "kafka.connect_timeout_ms=2000", "--set", "metrics.listen=127.0.0.1:0", "--set",
                       "model.path=" + SourceDir() + "/models/all-MiniLM-L6-v2"},
                      std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("127.0.0.1:1"));
}

TEST(CliTest, EmbedWritesOneLinePerInputInOrderWithDeadLettersInPlace) {
  TempDir dir;
  const std::string in = dir.path() + "/in.txt";
  const std::string out = dir.path() + "/out.jsonl";
  std::ofstream(in) << "first line\n\nthird line\n";
  Process p({NlpflowBinary(), "embed", "--config", Config(), "--set",
             "model.path=" + SourceDir() + "/models/all-MiniLM-L6-v2"},
            dir.path() + "/log", in, out);
  ASSERT_EQ(p.Wait(std::chrono::seconds(60)).value_or(-1), 0) << p.Log();
  std::ifstream f(out);
  std::vector<std::string> lines;
  for (std::string l; std::getline(f, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(EmbeddingOfJson(lines[0]).size(), 384u);
  EXPECT_THAT(lines[1], HasSubstr("\"reason\":\"empty text\""));
  EXPECT_EQ(EmbeddingOfJson(lines[2]).size(), 384u);
}

}  // namespace
}  // namespace nlpflow::testing
