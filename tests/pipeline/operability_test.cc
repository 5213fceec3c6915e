// The operability pieces of pipeline/: build info, the log formats and the
// embed progress line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "common/metrics.h"
#include "pipeline/build_info.h"
#include "pipeline/logging.h"
#include "pipeline/progress_bar.h"

namespace nlpflow {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

TEST(BuildInfoTest, VersionTextNamesEveryPart) {
  const BuildInfo b = GetBuildInfo();
  EXPECT_EQ(b.version, NLPFLOW_TEST_VERSION);
  EXPECT_THAT(b.git_commit, MatchesRegex("([0-9a-f]{12}(-dirty)?|unknown)"));
  EXPECT_EQ(b.build_type, NLPFLOW_TEST_BUILD_TYPE);
  EXPECT_THAT(b.libtorch, MatchesRegex("1\\.13\\.[0-9]+"));  // Debian's LibTorch
  EXPECT_THAT(b.onednn, MatchesRegex("2\\.[0-9]+\\.[0-9]+"));
  EXPECT_THAT(b.librdkafka, StartsWith("2."));
  EXPECT_THAT(b.tbb, MatchesRegex("20[0-9]{2}\\.[0-9]+.*"));
  EXPECT_NE(b.onednn_isa, "");
  // Every machine this project runs on has AVX2 and FMA (FACTS.md).
  EXPECT_THAT(b.cpu_features, HasSubstr("avx2"));
  EXPECT_THAT(b.cpu_features, HasSubstr("fma"));
  const std::string text = VersionText(b);
  EXPECT_THAT(text, StartsWith("nlpflow " + b.version + "\ncommit: " + b.git_commit + "\n"));
  for (const char* line : {"\nbuild_type: ", "\nlibtorch: ", "\nonednn: ", "\nonednn_isa: ",
                           "\nlibrdkafka: ", "\ntbb: ", "\ncpu_features: "}) {
    EXPECT_THAT(text, HasSubstr(line));
  }
}

TEST(BuildInfoTest, MetricIsOneWithTheLabels) {
  MetricsRegistry registry;
  RegisterBuildInfo(&registry);
  const BuildInfo b = GetBuildInfo();
  EXPECT_THAT(registry.Render(),
              HasSubstr("# TYPE nlpflow_build_info gauge\nnlpflow_build_info{version=\"" +
                        b.version + "\",commit=\"" + b.git_commit + "\",build_type=\"" +
                        b.build_type + "\",libtorch=\"" + b.libtorch + "\",onednn=\"" +
                        b.onednn + "\",onednn_isa=\"" + b.onednn_isa + "\",librdkafka=\"" +
                        b.librdkafka + "\",tbb=\"" + b.tbb + "\",cpu_features=\"" +
                        b.cpu_features + "\"} 1\n"));
}

spdlog::details::log_msg Message(std::chrono::system_clock::time_point t,
                                 spdlog::string_view_t text) {
  spdlog::details::log_msg msg("nlpflow", spdlog::level::warn, text);
  msg.time = t;
  msg.thread_id = 42;
  return msg;
}

TEST(LoggingTest, JsonLineHasUtcTimeLevelAndEscapedMessage) {
  // 2026-12-04T19:56:19.123Z
  const auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1796414179123));
  auto formatter = MakeJsonLogFormatter();
  spdlog::memory_buf_t buf;
  formatter->format(Message(t, "partition texts[3] \"lost\"\n\xff"), buf);
  EXPECT_EQ(std::string(buf.data(), buf.size()),
            "{\"time\":\"2026-12-04T19:56:19.123Z\",\"level\":\"warning\","
            "\"message\":\"partition texts[3] \\\"lost\\\"\\n\xef\xbf\xbd\","
            "\"logger\":\"nlpflow\",\"thread\":42}\n");
  auto parsed = nlohmann::json::parse(std::string(buf.data(), buf.size()));
  EXPECT_EQ(parsed["level"], "warning");
}

TEST(LoggingTest, TextLinesCarryTheUtcOffsetAndJsonTheUtcTime) {
  std::ostringstream out;
  for (const char* format : {"text", "json"}) {
    SetUpLogging({"info", format});
    // Redirect the logger's sink to `out` for the test, keeping its formatter.
    auto logger = spdlog::default_logger();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    logger->sinks().push_back(sink);
    SetUpLogging({"info", format});  // applies the formatter to the new sink too
    out.str("");
    spdlog::info("hello");
    logger->sinks().pop_back();
    if (std::string(format) == "text") {
      EXPECT_THAT(out.str(), MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                                          "\\.[0-9]{3}[+-][0-9]{2}:[0-9]{2} info hello\n"));
    } else {
      EXPECT_THAT(out.str(), MatchesRegex("\\{\"time\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}"
                                          "\\.[0-9]{3}Z\",\"level\":\"info\",\"message\":"
                                          "\"hello\",\"logger\":\"nlpflow\",\"thread\":[0-9]+\\}\n"));
    }
  }
  SetUpLogging({});
}

TEST(LoggingTest, PeekLogFormatReadsTheFileAndTheOverrides) {
  const std::string file = ::testing::TempDir() + "/nlpflow-log-format.yaml";
  std::ofstream(file) << "logging:\n  format: json\nbatch:\n  max_batch_size: 0\n";
  EXPECT_EQ(PeekLogFormat(file, {}), "json");
  EXPECT_EQ(PeekLogFormat(file, {"logging.format=text"}), "text");
  EXPECT_EQ(PeekLogFormat("/nonexistent.yaml", {}), "text");
  EXPECT_EQ(PeekLogFormat("/nonexistent.yaml", {"logging.format=json"}), "json");
  std::ofstream(file) << "logging: [\n";  // not YAML
  EXPECT_EQ(PeekLogFormat(file, {}), "text");
}

TEST(ProgressBarTest, RendersBarWhenTheSizeIsKnownAndCountsOtherwise) {
  EXPECT_EQ(ProgressBar::Render(1234, 500, 1000, 81.6),
            "[##########..........]  50%  1,234 lines  82 lines/s");
  EXPECT_EQ(ProgressBar::Render(7, 1000, 1000, 0), "[####################] 100%  7 lines  0 lines/s");
  EXPECT_EQ(ProgressBar::Render(1234567, 10, 0, 1000.4), "1,234,567 lines  1,000 lines/s");
}

// What a ProgressBar wrote to a memory stream after `use` ran on it.
template <typename F>
std::string Drawn(bool enabled, F use) {
  char* text = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&text, &size);
  {
    ProgressBar bar(out, enabled, /*total_bytes=*/100);
    use(bar);
  }
  std::fclose(out);
  std::string written(text, size);
  std::free(text);
  return written;
}

TEST(ProgressBarTest, DrawsOnlyWhenEnabled) {
  auto use = [](ProgressBar& bar) {
    bar.Update(1, 50);
    bar.Update(2, 60);  // within 100 ms of the first: not drawn
    bar.Finish();
  };
  EXPECT_EQ(Drawn(false, use), "");
  const std::string on = Drawn(true, use);
  // The rates depend on the clock: compared as N.
  const std::string shape = std::regex_replace(on, std::regex("[0-9,]+ lines/s"), "N lines/s");
  EXPECT_EQ(shape,
            "\r[##########..........]  50%  1 lines  N lines/s\033[K"
            "\r[####################] 100%  2 lines  N lines/s\033[K\n");
  EXPECT_EQ(ProgressBar::RegularFileSize(-1), 0);
}

}  // namespace
}  // namespace nlpflow
