// The distill / prune / quantize / eval commands end to end on the tiny
// fixture model: their artifacts run in the embedding graph, their bad
// inputs stop them with one line.
#include "pipeline/compress_commands.h"

#include <CLI/CLI.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "pipeline/config.h"
#include "pipeline/model_stack.h"
#include "pipeline/offline_graph.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kFixture = std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/heads/sequence";

std::string Temp(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("nlpflow_cc_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  return p.string();
}

// Runs `nlpflow <args>` through the command's own parser; returns the exit
// code, stdout and stderr.
struct Outcome {
  int code;
  std::string out, err;
};
Outcome RunNlpflow(std::vector<std::string> args, const std::string& model = kFixture) {
  CLI::App app;
  CompressCommands commands;
  AddCompressCommands(app, &commands);
  std::vector<std::string> sets;
  for (CLI::App* c : {commands.distill, commands.prune, commands.quantize, commands.eval}) {
    c->add_option("--set", sets);
  }
  args.insert(args.begin(), "nlpflow");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  app.parse(static_cast<int>(argv.size()), argv.data());
  auto config = ParseConfig("", {"model.path=" + model, "model.instances=1", "logging.level=off"});
  EXPECT_TRUE(config.ok()) << config.status().message();
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const int code = RunCompressCommand(commands, *config);
  std::string out = ::testing::internal::GetCapturedStdout();
  std::string err = ::testing::internal::GetCapturedStderr();
  // spdlog's default logger (main.cc replaces it) writes to stdout: keep the
  // command's own output, its last line, and drop log lines from stderr.
  if (!out.empty() && out.back() == '\n') out.pop_back();
  out = out.substr(out.find_last_of('\n') == std::string::npos ? 0 : out.find_last_of('\n') + 1);
  return {code, out, err};
}

std::string Corpus(int n) {
  const std::string path = Temp("texts.jsonl");
  std::ofstream out(path);
  const char* words[] = {"good", "bad", "movie", "the", "a", "great", "terrible", "plot"};
  for (int i = 0; i < n; ++i) {
    std::string text;
    for (int w = 0; w < 3 + i % 7; ++w) text += std::string(words[(i * 7 + w * 3) % 8]) + " ";
    out << nlohmann::json({{"text", text}, {"label", i % 2}}).dump() << "\n";
  }
  return path;
}

// Every line of `texts` through the embedding graph with `model`: no failures.
void ExpectRunsInTheGraph(const std::string& model, const std::string& texts) {
  auto config = ParseConfig("", {"model.path=" + model, "model.instances=1", "logging.level=off"});
  ASSERT_TRUE(config.ok());
  auto stack = LoadModelStack(*config);
  ASSERT_TRUE(stack.ok()) << stack.status().message();
  auto lines = ReadTexts(texts);
  ASSERT_TRUE(lines.ok());
  auto run = RunOfflineGraph(*config, *stack, *lines);
  ASSERT_TRUE(run.ok()) << run.status().message();
  for (const auto& row : run->rows) {
    EXPECT_FALSE(row.failed) << row.failure_reason;
    EXPECT_EQ(row.output.size(), 32u);
  }
}

TEST(DistillCommand, WritesAStudentThatRunsInTheGraph) {
  const std::string texts = Corpus(200);
  const std::string out = Temp("student");
  const Outcome r = RunNlpflow({"distill", "--texts", texts, "--out", out, "--layers", "1", "--lr",
                         "0.003", "--batch-size", "16"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["texts"], 200);
  EXPECT_EQ(j["steps"], 13);
  EXPECT_EQ(j["layers"], nlohmann::json::array({1}));
  EXPECT_LT(j["last_loss"].get<double>(), j["first_loss"].get<double>());
  EXPECT_THAT(r.err, HasSubstr("distill: epoch 1 step 13/13 (100%) loss"));
  EXPECT_THAT(r.err, HasSubstr("eta 0m00s"));
  ExpectRunsInTheGraph(out, texts);
}

TEST(DistillCommand, BadInputsFailWithOneLine) {
  const std::string texts = Corpus(10);
  const std::string out = Temp("bad");
  Outcome r = RunNlpflow({"distill", "--texts", texts, "--out", out, "--layers", "3"});
  EXPECT_EQ(r.code, 2);  // a bad flag: exit 2 (main.cc)
  EXPECT_EQ(r.err,
            "nlpflow: distill: --layers 3: the student must have 1 to 2 layers (the teacher has "
            "2)\n");
  r = RunNlpflow({"distill", "--texts", texts, "--out", out}, "/nonexistent/teacher");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("nlpflow: distill: teacher model.path /nonexistent/teacher is not "
                               "a model folder"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  const std::string empty = Temp("empty.txt");
  std::ofstream(empty) << "\n\n";
  r = RunNlpflow({"distill", "--texts", empty, "--out", out, "--layers", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "nlpflow: distill: " + empty + " has no texts (empty corpus)\n");
  EXPECT_FALSE(fs::exists(out));
}

TEST(PruneAndQuantizeCommands, ArtifactsRunInTheGraph) {
  const std::string texts = Corpus(64);
  const std::string pruned = Temp("pruned");
  Outcome r = RunNlpflow({"prune", "--texts", texts, "--out", pruned, "--method", "ffn", "--amount",
                   "0.25"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["ffn_sizes"], nlohmann::json::array({48, 48}));
  ExpectRunsInTheGraph(pruned, texts);
  const std::string quantized = Temp("static");
  r = RunNlpflow({"quantize", "--texts", texts, "--out", quantized, "--mode", "static"}, pruned);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["sites"].size(), 8u);
  ExpectRunsInTheGraph(quantized, texts);
}

TEST(EvalCommand, ReportsMetricsComputedFromTheData) {
  const std::string texts = Corpus(60);
  const Outcome r = RunNlpflow({"eval", "--variant", kFixture, "--train", texts, "--test", texts});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  // The teacher against itself: identical embeddings, identical predictions.
  EXPECT_NEAR(j["cosine_to_teacher"]["mean"].get<double>(), 1.0, 1e-6);
  EXPECT_EQ(j["spam"]["f1"], j["teacher_spam"]["f1"]);
  const auto& c = j["spam"]["confusion"];
  EXPECT_EQ(c["tp"].get<int>() + c["fn"].get<int>(), 30);  // 30 of 60 lines have label 1
  EXPECT_EQ(c["tp"].get<int>() + c["fp"].get<int>() + c["tn"].get<int>() + c["fn"].get<int>(), 60);
  EXPECT_EQ(j["weights_bytes"], fs::file_size(kFixture + "/model.safetensors"));
  EXPECT_GT(j["throughput"]["records_per_s"].get<double>(), 0);
  const Outcome bad = RunNlpflow({"eval", "--variant", kFixture, "--train", texts});
  EXPECT_EQ(bad.err, "nlpflow: eval: --variant, --train and --test are required\n");
  EXPECT_EQ(bad.code, 2);
}

}  // namespace
}  // namespace nlpflow
