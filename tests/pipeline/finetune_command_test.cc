// `nlpflow finetune` end to end on the tiny fixture model: the summary on
// stdout, the folder it writes, no progress bar on a pipe, and bad input
// files stopped with one line naming the file and line (exit 2).
#include "pipeline/finetune_command.h"

#include <CLI/CLI.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "pipeline/config.h"
#include "pipeline/labeled_texts.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kFixture = std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/heads/sequence";

std::string Temp(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("nlpflow_ft_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  return p.string();
}

std::string Write(const std::string& name, const std::string& content) {
  const std::string path = Temp(name);
  std::ofstream(path) << content;
  return path;
}

// Lines {"text", "label"} over two labels named by `names` (or ids).
std::string Labelled(const std::string& name, int n, bool names) {
  std::string content;
  const char* words[] = {"good", "bad", "movie", "the", "a", "great", "terrible", "plot"};
  for (int i = 0; i < n; ++i) {
    std::string text;
    for (int w = 0; w < 3 + i % 5; ++w) text += std::string(words[(i * 7 + w * 3) % 8]) + " ";
    nlohmann::json j = {{"text", text}};
    if (names) {
      j["label"] = i % 2 ? "spam" : "ham";
    } else {
      j["label"] = i % 2;
    }
    content += j.dump() + "\n";
  }
  return Write(name, content);
}

struct Outcome {
  int code;
  std::string out, err;
};
Outcome Finetune(std::vector<std::string> args) {
  CLI::App app;
  FinetuneCommandOptions options;
  CLI::App* cmd = AddFinetuneCommand(app, &options);
  std::vector<std::string> sets;
  cmd->add_option("--set", sets);
  args.insert(args.begin(), {"nlpflow", "finetune"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  app.parse(static_cast<int>(argv.size()), argv.data());
  auto config = ParseConfig("", {"model.path=" + kFixture, "logging.level=off"});
  EXPECT_TRUE(config.ok()) << config.status().message();
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const int code = RunFinetuneCommand(options, *config);
  std::string out = ::testing::internal::GetCapturedStdout();
  std::string err = ::testing::internal::GetCapturedStderr();
  // spdlog's default logger writes to stdout: keep the summary, the last line.
  if (!out.empty() && out.back() == '\n') out.pop_back();
  out = out.substr(out.find_last_of('\n') == std::string::npos ? 0 : out.find_last_of('\n') + 1);
  return {code, out, err};
}

TEST(FinetuneCommand, WritesAClassifierAndASummary) {
  const std::string train = Labelled("train.jsonl", 24, true);
  const std::string eval = Labelled("eval.jsonl", 6, true);
  const std::string out = Temp("model");
  const Outcome r = Finetune({"--train", train, "--eval", eval, "--out", out, "--epochs", "2",
                              "--batch-size", "8", "--lr", "1e-3"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["labels"], nlohmann::json({"ham", "spam"}));  // names sorted
  EXPECT_EQ(j["train_texts"], 24);
  EXPECT_EQ(j["eval_texts"], 6);
  EXPECT_EQ(j["steps"], 2 * 3);
  EXPECT_EQ(j["max_length"], 64);  // the fixture's position limit
  EXPECT_EQ(j["epoch_eval"].size(), 2u);
  EXPECT_EQ(j["eval"]["texts"], 6);
  EXPECT_TRUE(j["eval"]["f1"].contains("spam"));
  std::ifstream in(out + "/config.json");
  const nlohmann::json config = nlohmann::json::parse(in);
  EXPECT_EQ(config["id2label"], nlohmann::json({{"0", "ham"}, {"1", "spam"}}));
  // stderr is a pipe here: no progress bar (it redraws with \r).
  EXPECT_THAT(r.err, Not(HasSubstr("\r")));
  fs::remove_all(out);
}

TEST(FinetuneCommand, LabelsGivenByIdName) {
  const std::string train = Labelled("train.jsonl", 12, false);
  const std::string out = Temp("model");
  const Outcome r = Finetune({"--train", train, "--eval", train, "--out", out, "--epochs", "1",
                              "--labels", "ham,spam"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["labels"], nlohmann::json({"ham", "spam"}));
  const Outcome unnamed = Finetune({"--train", train, "--eval", train, "--out", out,
                                    "--epochs", "1"});
  ASSERT_EQ(unnamed.code, 0) << unnamed.err;
  EXPECT_EQ(nlohmann::json::parse(unnamed.out)["labels"],
            nlohmann::json({"LABEL_0", "LABEL_1"}));
  fs::remove_all(out);
}

TEST(FinetuneCommand, BadInputsStopWithOneLineNamingFileAndLine) {
  const std::string good = Labelled("good.jsonl", 8, true);
  const std::string out = Temp("model");
  auto expect_error = [&](const std::string& train, const std::string& eval,
                          const std::string& message, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--train", train, "--eval", eval, "--out", out};
    args.insert(args.end(), extra.begin(), extra.end());
    const Outcome r = Finetune(args);
    EXPECT_EQ(r.code, 2) << message;
    EXPECT_EQ(r.err, "nlpflow: " + message + "\n");
    EXPECT_FALSE(fs::exists(out)) << message;
  };
  const std::string empty = Write("empty.jsonl", "\n  \n");
  expect_error(empty, good, empty + ": no labelled texts (empty file)");
  const std::string malformed =
      Write("malformed.jsonl", "{\"text\": \"a\", \"label\": \"ham\"}\n{\"text\": \"b\", \n");
  const Outcome m = Finetune({"--train", malformed, "--eval", good, "--out", out});
  EXPECT_EQ(m.code, 2);
  EXPECT_THAT(m.err, HasSubstr("nlpflow: " + malformed + ":2: not a JSON line ("));
  EXPECT_EQ(std::count(m.err.begin(), m.err.end(), '\n'), 1);
  const std::string no_label = Write("nolabel.jsonl", "{\"text\": \"a\"}\n");
  expect_error(no_label, good,
               no_label + ":1: needs a \"label\": a name (string) or an id (non-negative "
                          "integer), got none");
  const std::string no_text = Write("notext.jsonl", "\n[1, 2]\n");
  expect_error(no_text, good,
               no_text + ":2: not a JSON object {\"text\": ..., \"label\": ...}");
  const std::string one_class = Write(
      "oneclass.jsonl", "{\"text\": \"a\", \"label\": \"ham\"}\n{\"text\": \"b\", \"label\": "
                        "\"ham\"}\n");
  expect_error(one_class, good, one_class + ": only one label ('ham'); a classifier needs at "
                                            "least two (--labels names them)");
  expect_error(one_class, good,
               one_class + ": all 2 lines (1-2) have label 'ham'; fine-tuning needs at least "
                           "two classes",
               {"--labels", "ham,spam"});
  const std::string unknown = Write(
      "unknown.jsonl", "{\"text\": \"a\", \"label\": \"ham\"}\n\n{\"text\": \"b\", \"label\": "
                       "\"eggs\"}\n");
  expect_error(good, unknown, unknown + ":3: unknown label 'eggs' (labels: ham, spam)");
  expect_error(unknown, good, unknown + ":3: unknown label 'eggs' (labels: ham, spam)",
               {"--labels", "ham,spam"});
  const std::string id = Write("id.jsonl", "{\"text\": \"a\", \"label\": 2}\n");
  expect_error(good, id, id + ":1: label id 2 is out of range (2 labels: ham, spam)");
  const std::string mixed = Write(
      "mixed.jsonl", "{\"text\": \"a\", \"label\": \"ham\"}\n{\"text\": \"b\", \"label\": 1}\n");
  expect_error(mixed, good,
               mixed + ":2: label names and label ids are mixed; give the names by id with "
                       "--labels");
  expect_error(Temp("missing.jsonl"), good, Temp("missing.jsonl") + ": cannot open");
}

TEST(FinetuneCommand, ProgressBar) {
  TrainProgress p;
  p.step = 5;
  p.steps = 20;
  p.epoch = 2;
  p.loss = 0.69314;
  p.eta_s = 72.4;
  EXPECT_EQ(FormatProgressBar(p, 8), "[##......]  25% 5/20 epoch 2 loss 0.6931 eta 1m12s");
  p.step = 20;
  p.eta_s = 0;
  EXPECT_EQ(FormatProgressBar(p, 8), "[########] 100% 20/20 epoch 2 loss 0.6931 eta 0m00s");
}

}  // namespace
}  // namespace nlpflow
