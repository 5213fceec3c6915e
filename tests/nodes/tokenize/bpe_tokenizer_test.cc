#include "nodes/tokenize/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nodes/tokenize/byte_level.h"
#include "nodes/tokenize/tokenizer.h"
#include "tokenize_test_util.h"

namespace nlpflow {
namespace {

using byte_level::MatchGpt2;

const std::string kFixture = std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/bpe_tokenizer.json";

// The words the GPT-2 pattern cuts text into.
std::vector<std::string> Split(std::string_view text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    const size_t j = MatchGpt2(text, i, text.size());
    EXPECT_GT(j, i);
    out.emplace_back(text.substr(i, j - i));
    i = j;
  }
  return out;
}

TEST(ByteLevel, Alphabet) {
  EXPECT_EQ(byte_level::ByteToCodePoint(' '), U'\u0120');  // Ġ
  EXPECT_EQ(byte_level::ByteToCodePoint('\n'), U'\u010A');  // Ċ
  EXPECT_EQ(byte_level::ByteToCodePoint(0), U'\u0100');
  EXPECT_EQ(byte_level::ByteToCodePoint('a'), U'a');
  EXPECT_EQ(byte_level::ByteToCodePoint(0xAD), U'\u0143');
  EXPECT_EQ(byte_level::ByteToCodePoint(0xFF), U'\u00FF');
  std::string raw;
  ASSERT_TRUE(byte_level::Decode("\xC4\xA0the", &raw));  // "Ġthe"
  EXPECT_EQ(raw, " the");
  EXPECT_FALSE(byte_level::Decode("\xE2\x82\xAC", &raw));  // € is not in the alphabet
}

TEST(ByteLevel, Gpt2Pattern) {
  EXPECT_EQ(Split("Hello world"), (std::vector<std::string>{"Hello", " world"}));
  EXPECT_EQ(Split("I'm don't they'll"),
            (std::vector<std::string>{"I", "'m", " don", "'t", " they", "'ll"}));
  EXPECT_EQ(Split("a  b"), (std::vector<std::string>{"a", " ", " b"}));
  EXPECT_EQ(Split("a \tb"), (std::vector<std::string>{"a", " ", "\t", "b"}));
  EXPECT_EQ(Split("x   "), (std::vector<std::string>{"x", "   "}));
  EXPECT_EQ(Split("abc123 4.5!!"),
            (std::vector<std::string>{"abc", "123", " 4", ".", "5", "!!"}));
  EXPECT_EQ(Split(" 'S"), (std::vector<std::string>{" '", "S"}));
  EXPECT_EQ(Split("日本語 ٣"), (std::vector<std::string>{"日本語", " ٣"}));
  EXPECT_EQ(Split("\xFF\xFEok"), (std::vector<std::string>{"\xFF\xFE", "ok"}));
}

// A tiny spec by hand: the 256 bytes, then merges h+e, l+l, he+ll, hell+o.
BpeSpec TinySpec() {
  BpeSpec spec;
  for (int b = 0; b < 256; ++b) {
    std::string s;
    const char32_t cp = byte_level::ByteToCodePoint(static_cast<uint8_t>(b));
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    spec.vocab.emplace_back(s, b);
  }
  spec.vocab.emplace_back("he", 256);
  spec.vocab.emplace_back("ll", 257);
  spec.vocab.emplace_back("hell", 258);
  spec.vocab.emplace_back("hello", 259);
  spec.vocab.emplace_back("<s>", 260);
  spec.merges = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}};
  spec.added_tokens = {{"<s>", 260}};
  spec.source = "tiny";
  return spec;
}

TEST(BpeTokenizer, MergesByRank) {
  auto t = BpeTokenizer::FromSpec(TinySpec());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const Encoding e = (*t)->Encode("hello hellx<s>l");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{259, ' ', 258, 'x', 260, 'l'}));
  EXPECT_EQ(e.offsets, (std::vector<std::pair<int32_t, int32_t>>{
                           {0, 5}, {6, 6}, {6, 10}, {10, 11}, {11, 14}, {14, 15}}));
  EXPECT_EQ((*t)->vocab_size(), 261u);
}

TEST(BpeTokenizer, RejectsUnknownMergeToken) {
  BpeSpec spec = TinySpec();
  spec.merges.push_back({"o", "x"});
  auto t = BpeTokenizer::FromSpec(spec);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "tiny: model.merges[4]: \"o x\" uses a token missing from model.vocab");
}

// Ids from Hugging Face tokenizers 0.19.1 on the fixture (train_bpe.py):
// Tokenizer.from_file(...).encode(text).ids.
TEST(BpeTokenizer, FixtureMatchesHuggingFace) {
  auto loaded = LoadTokenizer(kFixture);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->model_type, "BPE");
  const Tokenizer& t = *loaded->tokenizer;
  EXPECT_EQ(t.Encode("Hello world").ids, (std::vector<int32_t>{0, 5086, 2001, 2}));
  EXPECT_EQ(t.Encode(" Hello <mask> world").ids,
            (std::vector<int32_t>{0, 452, 3673, 225, 4, 2001, 2}));
  const Encoding pair = t.EncodePair("Hello world", "how are you");
  EXPECT_EQ(pair.ids, (std::vector<int32_t>{0, 5086, 2001, 2, 2, 2415, 529, 362, 2}));
  EXPECT_EQ(pair.type_ids, (std::vector<int32_t>(9, 0)));
  // Truncation to the file's 256 tokens, <s> and </s> included.
  EXPECT_EQ(t.Encode(std::string(2000, '!')).ids.size(), 256u);
}

TEST(LoadTokenizer, PicksWordPieceForBert) {
  if (!testing::HaveModel()) GTEST_SKIP() << "no model in " << testing::ModelDir();
  auto loaded = LoadTokenizer(testing::ModelDir());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->model_type, "WordPiece");
  EXPECT_EQ(loaded->padding.strategy, PaddingOptions::Strategy::kFixed);
  EXPECT_EQ(loaded->padding.fixed_length, 128);
  Encoding e = loaded->tokenizer->Encode("hello world");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{101, 7592, 2088, 102}));
  Pad(loaded->padding, &e);
  ASSERT_EQ(e.ids.size(), 128u);
  EXPECT_EQ(e.ids[4], 0);
  EXPECT_EQ(e.offsets[127], (std::pair<int32_t, int32_t>{0, 0}));
}

TEST(LoadTokenizer, RejectsUnknownModelType) {
  testing::TempDir dir;
  const std::string path = dir.Write("tokenizer.json", R"({"model": {"type": "WordLevel"}})");
  auto loaded = LoadTokenizer(path);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().message(),
            path + ": model.type: \"WordLevel\" is not supported (WordPiece, BPE or Unigram)");
}

TEST(Pad, MultipleOfAndLeft) {
  PaddingOptions p;
  p.strategy = PaddingOptions::Strategy::kBatchLongest;
  p.pad_to_multiple_of = 4;
  p.left = true;
  p.pad_id = 9;
  Encoding e{{1, 2, 3, 4, 5}, {0, 0, 0, 0, 0}, {{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}}};
  Pad(p, &e);
  EXPECT_EQ(e.ids, (std::vector<int32_t>{9, 9, 9, 1, 2, 3, 4, 5}));
}

}  // namespace
}  // namespace nlpflow
