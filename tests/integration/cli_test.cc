// The command line's start-up errors: one clear line and a non-zero exit
// before any graph starts. No broker needed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
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

TEST(CliTest, VersionNamesTheBuildAndTheLibraries) {
  auto r = RunCommand({NlpflowBinary(), "--version"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, ::testing::StartsWith("nlpflow 0."));
  for (const char* part : {"\ncommit: ", "\nbuild_type: ", "\nlibtorch: 1.13", "\nonednn: 2.",
                           "\nlibrdkafka: 2.", "\ntbb: 20", "\ncpu_features: "}) {
    EXPECT_THAT(r.output, HasSubstr(part));
  }
}

TEST(CliTest, HelpShowsDefaults) {
  auto r = RunCommand({NlpflowBinary(), "demo", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--samples TEXT=configs/samples/sentences.txt"));
  auto e = RunCommand({NlpflowBinary(), "embed", "--help"});
  EXPECT_THAT(e.output, HasSubstr("=auto"));
}

TEST(CliTest, ExitCodesFollowOneRule) {
  // 2: the command line or the config as written.
  EXPECT_EQ(RunCommand({NlpflowBinary(), "run"}).exit_code, 2);                // no --config
  EXPECT_EQ(RunCommand({NlpflowBinary(), "frobnicate"}).exit_code, 2);         // no such command
  EXPECT_EQ(RunCommand({NlpflowBinary(), "eval", "--config", Config()}).exit_code, 2);
  EXPECT_EQ(RunCommand({NlpflowBinary(), "demo", "--config", Config(), "--samples",
                        "/nonexistent/samples.txt"})
                .exit_code,
            2);
  // 1: at run time.
  TempDir dir;
  auto tok = RunCommand({NlpflowBinary(), "tokenize", "--tokenizer", dir.path() + "/none"});
  EXPECT_EQ(tok.exit_code, 1) << tok.output;
}

TEST(CliTest, KeyGivenTwiceStopsStartUp) {
  TempDir dir;
  const std::string path = dir.path() + "/twice.yaml";
  std::ofstream(path) << "batch:\n  max_batch_size: 8\nbatch:\n  policy: fixed\n";
  auto r = RunCommand({NlpflowBinary(), "run", "--config", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr(path + ": config key batch: section given twice (lines 1 and 3)"));
}

TEST(CliTest, ValidateConfigChecksLibrdkafkaProperties) {
  auto unknown = RunCommand({NlpflowBinary(), "validate-config", Config(), "--set",
                             "kafka.consumer.fetch.wait.max.msec=5"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.output,
              HasSubstr("config key kafka.consumer.fetch.wait.max.msec: unknown librdkafka property"));
  auto bad = RunCommand({NlpflowBinary(), "validate-config", Config(), "--set",
                         "kafka.properties.socket.nagle.disable=perhaps"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output,
              HasSubstr("config key kafka.properties.socket.nagle.disable: invalid value: "));
  auto good = RunCommand({NlpflowBinary(), "validate-config", Config(), "--set",
                          "kafka.properties.client.rack=az-1"});
  EXPECT_EQ(good.exit_code, 0) << good.output;
  // The error is one line.
  EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 1) << bad.output;
}

TEST(CliTest, JsonLogsFromTheFirstLine) {
  TempDir dir;
  const std::string path = dir.path() + "/bad.yaml";
  std::ofstream(path) << "logging:\n  format: json\nmodel:\n  instances: 0\n";
  auto r = RunCommand({NlpflowBinary(), "run", "--config", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, ::testing::MatchesRegex(
                            "\\{\"time\":\"[0-9T:.-]+Z\",\"level\":\"error\",\"message\":\".*"
                            "config key model.instances: must be between 1 and 64, got 0\",.*\\}\n"));
}

TEST(CliTest, EmbedProgressOnlyWhenAskedOrOnATerminal) {
  TempDir dir;
  const std::string in = dir.path() + "/in.txt";
  std::ofstream(in) << "one\ntwo\n";
  for (const char* progress : {"auto", "always"}) {
    Process p({NlpflowBinary(), "embed", "--config", Config(), "--progress", progress},
              dir.path() + "/log-" + progress, in, dir.path() + "/out.jsonl");
    ASSERT_EQ(p.Wait(std::chrono::seconds(60)).value_or(-1), 0) << p.Log();
    // The log file is not a terminal: auto draws nothing.
    if (std::string(progress) == "auto") {
      EXPECT_THAT(p.Log(), ::testing::Not(HasSubstr("lines/s"))) << p.Log();
    } else {
      EXPECT_THAT(p.Log(), HasSubstr("[####################] 100%  2 lines  ")) << p.Log();
    }
  }
}

}  // namespace
}  // namespace nlpflow::testing
