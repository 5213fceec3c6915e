// The embedding graph with the real model and a file sink: every record comes
// out once, in input order, bad records as dead letters in their place; the
// same result whether the graph runs narrow (1 worker, 1 instance) or wide.
#include "pipeline/embed_graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "pipeline/config.h"
#include "pipeline/embed_command.h"
#include "pipeline/model_stack.h"

namespace nlpflow {
namespace {

using ::testing::HasSubstr;

Config TestConfig(const std::vector<std::string>& sets) {
  std::vector<std::string> all = {"model.path=" + std::string(NLPFLOW_SOURCE_DIR) +
                                  "/models/all-MiniLM-L6-v2"};
  all.insert(all.end(), sets.begin(), sets.end());
  auto c = ParseConfig("", all);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.value();
}

std::string Input() {
  std::ostringstream in;
  for (int i = 0; i < 150; ++i) {
    if (i % 37 == 5) {
      in << "\n";  // empty line: a dead letter
    } else if (i % 41 == 7) {
      in << "bad \xff byte\n";
    } else {
      in << "sentence number " << i << " is about " << (i % 3 == 0 ? "cats" : "trains") << "\n";
    }
  }
  return in.str();
}

std::vector<nlohmann::json> RunEmbed(const std::vector<std::string>& sets) {
  Config config = TestConfig(sets);
  auto stack = LoadModelStack(config);
  EXPECT_TRUE(stack.ok()) << stack.status().ToString();
  std::istringstream in(Input());
  std::ostringstream out;
  auto stats = EmbedStream(config, *stack, in, out);
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  std::vector<nlohmann::json> lines;
  std::istringstream result(out.str());
  for (std::string l; std::getline(result, l);) lines.push_back(nlohmann::json::parse(l));
  return lines;
}

void CheckLines(const std::vector<nlohmann::json>& lines) {
  ASSERT_EQ(lines.size(), 150u);
  for (int i = 0; i < 150; ++i) {
    const auto& j = lines[i];
    const int offset = j.contains("offset") ? j.at("offset").get<int>()
                                            : j.at("source").at("offset").get<int>();
    EXPECT_EQ(offset, i);
    if (i % 37 == 5) {
      EXPECT_EQ(j.at("reason"), "empty text") << i;
    } else if (i % 41 == 7) {
      EXPECT_EQ(j.at("reason"), "invalid UTF-8 at byte 4") << i;
    } else {
      auto e = j.at("embedding").get<std::vector<float>>();
      ASSERT_EQ(e.size(), 384u) << i;
      double norm = 0;
      for (float x : e) norm += double(x) * x;
      EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5);
    }
  }
}

TEST(EmbedGraphTest, NarrowGraphKeepsOrderAndDeadLetters) {
  CheckLines(RunEmbed({"pipeline.tokenize_concurrency=1", "model.instances=1",
                       "batch.max_batch_size=1"}));
}

TEST(EmbedGraphTest, WideGraphGivesTheSameVectors) {
  auto narrow = RunEmbed({"pipeline.tokenize_concurrency=1", "model.instances=1",
                          "batch.max_batch_size=1"});
  auto wide = RunEmbed({"model.instances=2", "batch.max_batch_size=16"});
  CheckLines(wide);
  float worst = 0;
  for (size_t i = 0; i < narrow.size() && i < wide.size(); ++i) {
    if (!narrow[i].contains("embedding")) continue;
    auto a = narrow[i]["embedding"].get<std::vector<float>>();
    auto b = wide[i]["embedding"].get<std::vector<float>>();
    for (size_t k = 0; k < a.size(); ++k) worst = std::max(worst, std::abs(a[k] - b[k]));
  }
  // Batch 1 against padded batches of 16: only float rounding may differ.
  EXPECT_LT(worst, 1e-5);
}

TEST(EmbedGraphTest, MissingModelIsNamed) {
  auto c = ParseConfig("", {"model.path=/nonexistent/m"});
  ASSERT_TRUE(c.ok());
  auto stack = LoadModelStack(*c);
  ASSERT_FALSE(stack.ok());
  EXPECT_EQ(stack.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(stack.status().message(), HasSubstr("model.path /nonexistent/m is not a folder"));
}

}  // namespace
}  // namespace nlpflow
