// Behaviour of WordPieceTokenizer on a tiny vocabulary: short, literal cases.
#include "nodes/tokenize/wordpiece_tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/nodes/tokenize/tokenize_test_util.h"

namespace nlpflow {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using Ids = std::vector<int32_t>;
using OffsetList = std::vector<std::pair<int32_t, int32_t>>;

constexpr int32_t kUnk = 1, kCls = 2, kSep = 3, kMask = 4;
constexpr int32_t kX = 19, kXCont = 20, kB = 17;

class WordPieceTokenizerTest : public ::testing::Test {
 protected:
  std::unique_ptr<WordPieceTokenizer> Make(WordPieceOptions options = {}) {
    if (vocab_path_.empty()) vocab_path_ = dir_.Write("vocab.txt", testing::TinyVocab());
    auto t = WordPieceTokenizer::FromVocabFile(vocab_path_, std::move(options));
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : nullptr;
  }

  testing::TempDir dir_;
  std::string vocab_path_;
};

TEST_F(WordPieceTokenizerTest, GreedyLongestMatchFirst) {
  auto t = Make();
  const Encoding e = t->Encode("unwanted running");
  EXPECT_EQ(e.ids, (Ids{kCls, 5, 6, 7, 8, 9, kSep}));
  EXPECT_EQ(e.type_ids, (Ids{0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(e.offsets, (OffsetList{{0, 0}, {0, 2}, {2, 6}, {6, 8}, {9, 13}, {13, 16}, {0, 0}}));
}

TEST_F(WordPieceTokenizerTest, LowercasesAndSplitsPunctuation) {
  auto t = Make();
  const Encoding e = t->Encode("Hello,  WORLD!");
  EXPECT_EQ(e.ids, (Ids{kCls, 13, 11, 14, 12, kSep}));
  EXPECT_EQ(e.offsets, (OffsetList{{0, 0}, {0, 5}, {5, 6}, {8, 13}, {13, 14}, {0, 0}}));
}

TEST_F(WordPieceTokenizerTest, StripsAccentsWithByteOffsetsIntoTheOriginal) {
  auto t = Make();
  // "café" is 5 bytes; the token "cafe" covers all of them.
  EXPECT_EQ(t->Encode("café").offsets, (OffsetList{{0, 0}, {0, 5}, {0, 0}}));
  EXPECT_EQ(t->Encode("café").ids, (Ids{kCls, 15, kSep}));
  // Decomposed input gives the same token; the dropped trailing mark is not
  // part of any character of the word, so the offsets end before it.
  EXPECT_EQ(t->Encode("cafe\u0301").ids, (Ids{kCls, 15, kSep}));
  EXPECT_EQ(t->Encode("cafe\u0301").offsets, (OffsetList{{0, 0}, {0, 4}, {0, 0}}));
}

TEST_F(WordPieceTokenizerTest, KeepsAccentsWhenAsked) {
  WordPieceOptions options;
  options.strip_accents = false;
  auto t = Make(options);
  EXPECT_EQ(t->Encode("café").ids, (Ids{kCls, kUnk, kSep}));
}

TEST_F(WordPieceTokenizerTest, DottedCapitalILowercasesToTwoCodePointsWithoutStripping) {
  // Rust's char::to_lowercase('İ') is "i" + U+0307; both pieces carry the
  // 2-byte range of the original character.
  WordPieceOptions options;
  options.strip_accents = false;
  auto t = Make(options);
  const Encoding e = t->Encode("\u0130");
  EXPECT_EQ(e.ids, (Ids{kCls, 24, 25, kSep}));
  EXPECT_EQ(e.offsets, (OffsetList{{0, 0}, {0, 2}, {0, 2}, {0, 0}}));
  // With stripping (the default) NFD drops the dot before lowercasing.
  EXPECT_EQ(Make()->Encode("\u0130").ids, (Ids{kCls, 24, kSep}));
}

TEST_F(WordPieceTokenizerTest, WordWithAnUnmatchablePartIsOneUnk) {
  auto t = Make();
  const Encoding e = t->Encode("xxq b");
  EXPECT_EQ(e.ids, (Ids{kCls, kUnk, kB, kSep}));
  EXPECT_EQ(e.offsets, (OffsetList{{0, 0}, {0, 3}, {4, 5}, {0, 0}}));
}

TEST_F(WordPieceTokenizerTest, WordsLongerThanMaxInputCharsAreUnk) {
  WordPieceOptions options;
  options.max_length = 0;
  auto t = Make(options);
  const Encoding at_limit = t->Encode(std::string(100, 'x'));
  ASSERT_EQ(at_limit.ids.size(), 102u);
  EXPECT_EQ(at_limit.ids[1], kX);
  EXPECT_EQ(at_limit.ids[100], kXCont);
  const Encoding over = t->Encode(std::string(101, 'x'));
  EXPECT_EQ(over.ids, (Ids{kCls, kUnk, kSep}));
  EXPECT_EQ(over.offsets[1], std::make_pair(0, 101));
}

TEST_F(WordPieceTokenizerTest, ChineseCharactersAreWordsOfTheirOwn) {
  auto t = Make();
  const Encoding e = t->Encode("日本");
  EXPECT_EQ(e.ids, (Ids{kCls, 22, 23, kSep}));
  EXPECT_EQ(e.offsets, (OffsetList{{0, 0}, {0, 3}, {3, 6}, {0, 0}}));
}

TEST_F(WordPieceTokenizerTest, EmptyAndBlankTextGiveOnlySpecialTokens) {
  auto t = Make();
  EXPECT_EQ(t->Encode("").ids, (Ids{kCls, kSep}));
  EXPECT_EQ(t->Encode(" \t\n\u00a0\u3000").ids, (Ids{kCls, kSep}));
  EXPECT_EQ(t->Encode(std::string("\0\x01\x7f", 3)).ids, (Ids{kCls, kSep}));
}

TEST_F(WordPieceTokenizerTest, TruncatesSingleSequencesIncludingSpecialTokens) {
  WordPieceOptions options;
  options.max_length = 4;
  auto t = Make(options);
  EXPECT_EQ(t->Encode("x x x x x").ids, (Ids{kCls, kX, kX, kSep}));
  // A multi-piece word is cut in the middle, as in Hugging Face.
  EXPECT_EQ(t->Encode("xxxxx").ids, (Ids{kCls, kX, kXCont, kSep}));
  t->set_max_length(2);
  EXPECT_EQ(t->Encode("x x").ids, (Ids{kCls, kSep}));
  t->set_max_length(1);  // below the special tokens: they stay anyway
  EXPECT_EQ(t->Encode("x x").ids, (Ids{kCls, kSep}));
  t->set_max_length(0);
  EXPECT_EQ(t->Encode("x x x x x").ids.size(), 7u);
  t->set_max_length(-5);
  EXPECT_EQ(t->max_length(), 0);
}

TEST_F(WordPieceTokenizerTest, PairsGetTypeIdsAndOffsetsIntoTheirOwnText) {
  auto t = Make();
  const Encoding e = t->EncodePair("x b", "b x");
  EXPECT_EQ(e.ids, (Ids{kCls, kX, kB, kSep, kB, kX, kSep}));
  EXPECT_EQ(e.type_ids, (Ids{0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(e.offsets, (OffsetList{{0, 0}, {0, 1}, {2, 3}, {0, 0}, {0, 1}, {2, 3}, {0, 0}}));
}

// Expected lengths follow Hugging Face's LongestFirst (checked against it in
// the parity fixture with the real model).
TEST_F(WordPieceTokenizerTest, PairTruncationIsLongestFirst) {
  WordPieceOptions options;
  auto t = Make(options);
  auto lengths = [&](int max_length, const std::string& a, const std::string& b) {
    t->set_max_length(max_length);
    const Encoding e = t->EncodePair(a, b);
    int n_a = 0, n_b = 0;
    for (size_t i = 0; i < e.ids.size(); ++i) {
      if (e.ids[i] == kCls || e.ids[i] == kSep) continue;
      (e.type_ids[i] == 0 ? n_a : n_b)++;
    }
    return std::make_pair(n_a, n_b);
  };
  // Only the longer one is cut when that is enough.
  EXPECT_EQ(lengths(8, "x x x x x x", "b"), std::make_pair(4, 1));
  EXPECT_EQ(lengths(8, "b", "x x x x x x"), std::make_pair(1, 4));
  // Both cut: half each, the longer one gets the odd token...
  EXPECT_EQ(lengths(8, "x x x x x", "b b b"), std::make_pair(3, 2));
  EXPECT_EQ(lengths(8, "b b b", "x x x x x"), std::make_pair(2, 3));
  // ...and on a tie the second one does.
  EXPECT_EQ(lengths(8, "x x x", "b b b"), std::make_pair(2, 3));
  EXPECT_EQ(lengths(7, "x x x x x", "b b b"), std::make_pair(2, 2));
  // Nothing to cut.
  EXPECT_EQ(lengths(8, "x", "b b b b"), std::make_pair(1, 4));
  EXPECT_EQ(lengths(0, "x x x x x", "b b b"), std::make_pair(5, 3));
}

TEST_F(WordPieceTokenizerTest, WithoutSpecialTokens) {
  WordPieceOptions options;
  options.add_special_tokens = false;
  options.max_length = 2;
  auto t = Make(options);
  EXPECT_EQ(t->Encode("x x x").ids, (Ids{kX, kX}));
  const Encoding pair = t->EncodePair("x", "b");
  EXPECT_EQ(pair.ids, (Ids{kX, kB}));
  EXPECT_EQ(pair.type_ids, (Ids{0, 1}));
}

TEST_F(WordPieceTokenizerTest, SpecialTokensWrittenInTheTextAreMatchedVerbatim) {
  auto t = Make();
  const Encoding e = t->Encode("x[SEP]x [MASK]");
  EXPECT_EQ(e.ids, (Ids{kCls, kX, kSep, kX, kMask, kSep}));
  EXPECT_EQ(e.offsets, (OffsetList{{0, 0}, {0, 1}, {1, 6}, {6, 7}, {8, 14}, {0, 0}}));
  // Matching happens before normalization: lowercase is ordinary text.
  EXPECT_EQ(t->Encode("[sep]").ids, (Ids{kCls, kUnk, kUnk, kUnk, kSep}));

  WordPieceOptions options;
  options.split_special_tokens = true;
  EXPECT_EQ(Make(options)->Encode("x[SEP]x").ids, (Ids{kCls, kX, kUnk, kUnk, kUnk, kX, kSep}));
}

TEST_F(WordPieceTokenizerTest, InvalidUtf8NeverCrashesAndReadsAsReplacementChars) {
  auto t = Make();
  // Each invalid byte is U+FFFD, which clean_text removes.
  EXPECT_EQ(t->Encode("\xff" "x\xc3").ids, (Ids{kCls, kX, kSep}));
  EXPECT_EQ(t->Encode("\xff" "x\xc3").offsets, (OffsetList{{0, 0}, {1, 2}, {0, 0}}));
  EXPECT_EQ(t->Encode("x\xe6\x97").ids, (Ids{kCls, kX, kSep}));  // truncated 3-byte char
  EXPECT_EQ(t->Encode("\xed\xa0\x80").ids, (Ids{kCls, kSep}));    // encoded surrogate
  EXPECT_EQ(t->Encode("\xc0\xaf").ids, (Ids{kCls, kSep}));        // overlong '/'
  EXPECT_EQ(t->Encode("\xe6[SEP]").ids, (Ids{kCls, kSep, kSep}));
  // Without clean_text the replacement character is an unknown word.
  WordPieceOptions options;
  options.clean_text = false;
  const Encoding raw = Make(options)->Encode("x\xf0\x9f");
  EXPECT_EQ(raw.ids, (Ids{kCls, kUnk, kSep}));
  EXPECT_EQ(raw.offsets[1], std::make_pair(0, 3));
  // Every byte value alone and in a run: offsets stay inside the text.
  std::string all;
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    for (const auto& [begin, end] : t->Encode(one).offsets) {
      EXPECT_LE(0, begin);
      EXPECT_LE(end, 1);
    }
    all += one;
  }
  for (const auto& [begin, end] : t->Encode(all).offsets) {
    EXPECT_LE(begin, end);
    EXPECT_LE(end, 256);
  }
}

// Random bytes, biased toward UTF-8 lead and continuation bytes, marks and
// special-token fragments: never a crash, offsets always inside the text
// and ordered. (Run under ASan/UBSan to make "never a crash" strict.)
TEST_F(WordPieceTokenizerTest, RandomBytesKeepOffsetsInBounds) {
  auto t = Make();
  WordPieceOptions raw_options;
  raw_options.clean_text = false;
  raw_options.strip_accents = true;
  auto raw = Make(raw_options);
  std::mt19937 rng(12345);
  const std::vector<std::string> fragments = {"[SEP]", "[MAS", "é", "\u0301", "\u302e",
                                              "日",    " ",    "x",  "\xf0\x9f", "\xe6\x97"};
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) {
      switch (rng() % 4) {
        case 0: text += static_cast<char>(rng() % 256); break;
        case 1: text += static_cast<char>(0x80 + rng() % 64); break;
        case 2: text += static_cast<char>(0xC0 + rng() % 64); break;
        default: text += fragments[rng() % fragments.size()]; break;
      }
    }
    for (const WordPieceTokenizer* tok : {t.get(), raw.get()}) {
      for (const Encoding& e : {tok->Encode(text), tok->EncodePair(text, text)}) {
        ASSERT_EQ(e.ids.size(), e.offsets.size());
        ASSERT_EQ(e.ids.size(), e.type_ids.size());
        for (const auto& [begin, end] : e.offsets) {
          ASSERT_LE(0, begin);
          ASSERT_LE(begin, end);
          ASSERT_LE(end, static_cast<int32_t>(text.size()));
        }
      }
    }
  }
}

TEST_F(WordPieceTokenizerTest, Accessors) {
  auto t = Make();
  EXPECT_EQ(t->pad_id(), 0);
  EXPECT_EQ(t->unk_id(), kUnk);
  EXPECT_EQ(t->cls_id(), kCls);
  EXPECT_EQ(t->sep_id(), kSep);
  EXPECT_EQ(t->vocab_size(), 26u);
  EXPECT_EQ(t->max_length(), 512);
  EXPECT_EQ(t->IdToToken(6), "##want");
  EXPECT_EQ(t->IdToToken(26), "");
  EXPECT_EQ(t->IdToToken(-1), "");
}

TEST_F(WordPieceTokenizerTest, ConcurrentEncodeMatchesSequential) {
  auto t = Make();
  const std::vector<std::string> texts = {"unwanted running", "Hello, WORLD!", "café 日本",
                                          "x[SEP]b [MASK]", std::string(300, 'x'), ""};
  std::vector<Encoding> expected;
  for (const auto& text : texts) expected.push_back(t->Encode(text));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int round = 0; round < 500; ++round) {
        for (size_t k = 0; k < texts.size(); ++k) {
          const Encoding e = t->Encode(texts[k]);
          if (e.ids != expected[k].ids || e.offsets != expected[k].offsets) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace nlpflow
