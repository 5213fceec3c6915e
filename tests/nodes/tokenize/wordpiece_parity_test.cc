// Parity with Hugging Face tokenizers on all-MiniLM-L6-v2: every line of
// tests/fixtures/tokenizer_reference.jsonl (written by
// tests/fixtures/make_tokenizer_reference.py) must come out identical.
//
// NLPFLOW_TOKENIZER_REFERENCE=<path> runs the same checks on another fixture
// in the same format (e.g. the every-code-point one the script can write).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nodes/tokenize/wordpiece_tokenizer.h"
#include "tests/nodes/tokenize/tokenize_test_util.h"

namespace nlpflow {
namespace {

struct Reference {
  std::string text;
  std::optional<std::string> pair;
  int max_length = 0;
  Encoding expected;
};

std::string FixturePath() {
  if (const char* env = std::getenv("NLPFLOW_TOKENIZER_REFERENCE"); env && *env) return env;
  return std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/tokenizer_reference.jsonl";
}

std::vector<Reference> LoadFixture(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::vector<Reference> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    Reference r;
    r.text = j.at("text").get<std::string>();
    if (j.contains("text_pair")) r.pair = j.at("text_pair").get<std::string>();
    r.max_length = j.at("max_length").get<int>();
    r.expected.ids = j.at("ids").get<std::vector<int32_t>>();
    r.expected.type_ids = j.at("type_ids").get<std::vector<int32_t>>();
    for (const auto& o : j.at("offsets")) r.expected.offsets.emplace_back(o[0], o[1]);
    out.push_back(std::move(r));
  }
  return out;
}

std::string Describe(const WordPieceTokenizer& t, const std::vector<int32_t>& ids) {
  std::ostringstream s;
  for (int32_t id : ids) s << id << ":" << t.IdToToken(id) << " ";
  return s.str();
}

std::string Escaped(const std::string& text) { return nlohmann::json(text).dump(); }

// Encodes every reference with `t`, reports the first few differences in
// full and returns the number of lines that matched.
size_t CheckParity(WordPieceTokenizer& t, const std::vector<Reference>& refs) {
  constexpr int kReported = 3;
  size_t matched = 0;
  int reported = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    const Reference& r = refs[i];
    if (t.max_length() != r.max_length) t.set_max_length(r.max_length);
    const Encoding got = r.pair ? t.EncodePair(r.text, *r.pair) : t.Encode(r.text);
    if (got.ids == r.expected.ids && got.type_ids == r.expected.type_ids &&
        got.offsets == r.expected.offsets) {
      ++matched;
      continue;
    }
    if (reported++ >= kReported) continue;
    std::ostringstream offsets;
    for (size_t k = 0; k < std::max(got.offsets.size(), r.expected.offsets.size()); ++k) {
      const bool have = k < got.offsets.size(), want = k < r.expected.offsets.size();
      if (have && want && got.offsets[k] == r.expected.offsets[k]) continue;
      offsets << "first offset difference at token " << k << ": got ";
      if (have) offsets << "(" << got.offsets[k].first << "," << got.offsets[k].second << ")";
      offsets << " want ";
      if (want) {
        offsets << "(" << r.expected.offsets[k].first << "," << r.expected.offsets[k].second
                << ")";
      }
      offsets << "\n";
      break;
    }
    ADD_FAILURE() << "line " << i + 1 << " differs\n"
                  << "text: " << Escaped(r.text) << "\n"
                  << (r.pair ? "pair: " + Escaped(*r.pair) + "\n" : "")
                  << "got:  " << Describe(t, got.ids) << "\n"
                  << "want: " << Describe(t, r.expected.ids) << "\n"
                  << (got.type_ids != r.expected.type_ids ? "type ids differ\n" : "")
                  << offsets.str();
  }
  if (matched != refs.size()) {
    ADD_FAILURE() << refs.size() - matched << " of " << refs.size() << " lines differ";
  }
  return matched;
}

class WordPieceParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::HaveModel()) GTEST_SKIP() << "no model at " << testing::ModelDir();
    refs_ = LoadFixture(FixturePath());
    ASSERT_FALSE(refs_.empty()) << FixturePath();
  }
  std::vector<Reference> refs_;
};

TEST_F(WordPieceParityTest, TokenizerJsonMatchesHuggingFace) {
  auto t = WordPieceTokenizer::FromTokenizerJson(testing::ModelDir() + "/tokenizer.json");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const size_t matched = CheckParity(**t, refs_);
  EXPECT_EQ(matched, refs_.size());
  std::cout << "[ parity   ] " << matched << "/" << refs_.size() << " lines identical ("
            << FixturePath() << ")\n";
}

// The vocab.txt + tokenizer_config.json route (what FromModelDir takes when
// a model has no tokenizer.json) must agree with Hugging Face too.
TEST_F(WordPieceParityTest, VocabFileMatchesHuggingFace) {
  testing::TempDir dir;
  std::filesystem::copy_file(testing::ModelDir() + "/vocab.txt", dir.path() / "vocab.txt");
  std::filesystem::copy_file(testing::ModelDir() + "/tokenizer_config.json",
                             dir.path() / "tokenizer_config.json");
  auto t = WordPieceTokenizer::FromModelDir(dir.path().string());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(CheckParity(**t, refs_), refs_.size());
}

TEST_F(WordPieceParityTest, ConcurrentEncodeMatchesHuggingFace) {
  auto loaded = WordPieceTokenizer::FromTokenizerJson(testing::ModelDir() + "/tokenizer.json");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const WordPieceTokenizer& t = **loaded;
  std::vector<const Reference*> singles;
  for (const auto& r : refs_) {
    if (!r.pair && r.max_length == t.max_length()) singles.push_back(&r);
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = k; i < singles.size() + k; ++i) {
          const Reference& r = *singles[i % singles.size()];
          const Encoding e = t.Encode(r.text);
          if (e.ids != r.expected.ids || e.offsets != r.expected.offsets) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace nlpflow
