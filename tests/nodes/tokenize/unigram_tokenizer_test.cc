// Unigram tokenizer on small hand-made specs: each test pins one rule of
// Hugging Face's Unigram pipeline (the corpus parity test checks them all
// together against `tokenizers`).
#include "nodes/tokenize/unigram_tokenizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "tokenize_test_util.h"

namespace nlpflow {
namespace {

using Offsets = std::vector<std::pair<int32_t, int32_t>>;
using Pre = UnigramSpec::PreTokenizer;

// <unk>=0 ▁=1 a=2 b=3 ab=4 ▁ab=5 <0x78>=6 <0x79>=7 <s>=8 </s>=9 c=10 ▁c=11
UnigramSpec TinySpec() {
  UnigramSpec spec;
  spec.vocab = {{"<unk>", 0.0}, {"\u2581", -1.0}, {"a", -2.0},      {"b", -2.0},
                {"ab", -1.0},   {"\u2581ab", -5.0}, {"<0x78>", -20.0}, {"<0x79>", -20.0},
                {"<s>", 0.0},   {"</s>", 0.0},     {"c", -3.0},      {"\u2581c", -2.5}};
  spec.unk_id = 0;
  spec.pre_tokenizers = {Pre{}};  // Metaspace, prepend always, split
  spec.source = "tiny";
  return spec;
}

std::unique_ptr<UnigramTokenizer> Make(UnigramSpec spec) {
  auto t = UnigramTokenizer::FromSpec(std::move(spec));
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(*t) : nullptr;
}

TEST(Unigram, ViterbiTakesTheBestTotalScore) {
  auto t = Make(TinySpec());
  // "▁ab" alone scores -5; "▁" + "ab" scores -2.
  const Encoding e = t->Encode("ab");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{1, 4}));
  // The prepended "▁" shares the range of the character after it.
  EXPECT_EQ(e.offsets, (Offsets{{0, 1}, {0, 2}}));
  EXPECT_EQ(e.type_ids, (std::vector<int32_t>{0, 0}));
  // "▁c" (-2.5) beats "▁" + "c" (-4).
  EXPECT_EQ(t->Encode("c ab").ids, (std::vector<int32_t>{11, 1, 4}));
}

TEST(Unigram, AdjacentUnknownCharactersFuseIntoOneUnk) {
  auto t = Make(TinySpec());
  const Encoding e = t->Encode("xy\xC3\xA9" "a");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{1, 0, 2}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 1}, {0, 4}, {4, 5}}));
}

TEST(Unigram, ByteFallbackSpellsUnknownPiecesAsBytes) {
  UnigramSpec spec = TinySpec();
  spec.byte_fallback = true;
  auto t = Make(std::move(spec));
  // "xy" is one fused unknown piece; both bytes have pieces: each byte token
  // carries the range of the whole piece.
  Encoding e = t->Encode("xy");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{1, 6, 7}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 1}, {0, 2}, {0, 2}}));
  // "xz": <0x7A> is missing, so the piece falls back to unk as a whole.
  EXPECT_EQ(t->Encode("xz").ids, (std::vector<int32_t>{1, 0}));
}

TEST(Unigram, MetaspacePrependSchemes) {
  for (const auto& [scheme, want] :
       std::vector<std::pair<Pre::Prepend, std::vector<int32_t>>>{
           {Pre::Prepend::kAlways, {1, 4, 8, 1, 4}},
           {Pre::Prepend::kFirst, {1, 4, 8, 4}},
           {Pre::Prepend::kNever, {4, 8, 4}}}) {
    UnigramSpec spec = TinySpec();
    spec.pre_tokenizers[0].prepend = scheme;
    spec.added_tokens = {{"<s>", 8, false, false, false}};
    auto t = Make(std::move(spec));
    // The stretch after an added token does not start the text: "first"
    // leaves it alone.
    EXPECT_EQ(t->Encode("ab<s>ab").ids, want) << static_cast<int>(scheme);
  }
}

TEST(Unigram, MetaspaceWithoutSplitKeepsOnePiece) {
  UnigramSpec spec = TinySpec();
  spec.pre_tokenizers[0].split = false;
  auto t = Make(std::move(spec));
  // One piece "▁ab▁ab": the Viterbi sees across the "▁".
  EXPECT_EQ(t->Encode("ab ab").ids, (std::vector<int32_t>{1, 4, 1, 4}));
  spec = TinySpec();
  spec.pre_tokenizers = {Pre{Pre::Kind::kWhitespaceSplit}, Pre{}};
  spec.pre_tokenizers[1].prepend = Pre::Prepend::kFirst;
  t = Make(std::move(spec));
  // WhitespaceSplit first: only the word at offset 0 gets the "▁".
  const Encoding e = t->Encode("ab  ab");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{1, 4, 4}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 1}, {0, 2}, {4, 6}}));
}

TEST(Unigram, NormalizedAddedTokenWithLstrip) {
  UnigramSpec spec = TinySpec();
  spec.added_tokens = {{"</s>", 9, /*normalized=*/true, /*lstrip=*/true, /*rstrip=*/false}};
  NormalizerStep lower;
  lower.kind = NormalizerStep::Kind::kLowercase;
  spec.normalizers = {lower};
  auto t = Make(std::move(spec));
  // Matched after lowercasing; lstrip takes the spaces before it into its
  // range; the stretch after it gets its own "▁" (prepend always).
  const Encoding e = t->Encode("ab  </S>ab");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{1, 4, 9, 1, 4}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 1}, {0, 2}, {2, 8}, {8, 9}, {8, 10}}));
}

TEST(Unigram, ReplaceRegexRunsAndStrip) {
  UnigramSpec spec = TinySpec();
  NormalizerStep strip;
  strip.kind = NormalizerStep::Kind::kStrip;
  NormalizerStep replace;
  replace.kind = NormalizerStep::Kind::kReplace;
  ASSERT_TRUE(ParseReplaceRegex(" {2,}", &replace).ok());
  replace.content = "c";
  spec.normalizers = {strip, replace};
  auto t = Make(std::move(spec));
  // "  ab   ab " -> "ab   ab" -> "abcab"; the "c" is aligned to the last
  // space of the run it replaced.
  const Encoding e = t->Encode("  ab   ab ");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{1, 4, 10, 4}));
  EXPECT_EQ(e.offsets, (Offsets{{2, 3}, {2, 4}, {6, 7}, {7, 9}}));
}

TEST(Unigram, ParseReplaceRegexRefusesWhatItCannotMatch) {
  NormalizerStep step;
  EXPECT_TRUE(ParseReplaceRegex("\\s+", &step).ok());
  EXPECT_TRUE(step.pattern_whitespace);
  EXPECT_EQ(step.max_repeat, -1);
  EXPECT_TRUE(ParseReplaceRegex("x{2,3}", &step).ok());
  EXPECT_EQ(step.min_repeat, 2);
  EXPECT_EQ(step.max_repeat, 3);
  const Status bad = ParseReplaceRegex("[ab]+", &step);
  EXPECT_EQ(bad.message(),
            "Replace pattern Regex \"[ab]+\" is not supported (one character or \\s, optionally "
            "with +, {n}, {n,} or {n,m})");
  EXPECT_FALSE(ParseReplaceRegex("a{0,}", &step).ok());
}

TEST(Unigram, TruncationAndPairTemplate) {
  UnigramSpec spec = TinySpec();
  using Kind = TemplatePiece::Kind;
  const TemplatePiece s{Kind::kSpecial, {8}, 0, "<s>"};
  const TemplatePiece e{Kind::kSpecial, {9}, 0, "</s>"};
  spec.post_processor.single_template = {s, {Kind::kSequenceA, {}, 0, ""}, e};
  // XLM-R: <s> A </s> </s> B </s>, all type id 0.
  spec.post_processor.pair_template = {s, {Kind::kSequenceA, {}, 0, ""}, e, e,
                                       {Kind::kSequenceB, {}, 0, ""}, e};
  spec.post_processor.max_length = 7;
  auto t = Make(std::move(spec));
  EXPECT_EQ(t->Encode("ab ab ab ab").ids, (std::vector<int32_t>{8, 1, 4, 1, 4, 1, 9}));
  const Encoding p = t->EncodePair("ab ab", "c");
  // Budget 7 - 4 = 3: a (4 tokens) keeps 2, b (1) keeps 1.
  EXPECT_EQ(p.ids, (std::vector<int32_t>{8, 1, 4, 9, 9, 11, 9}));
  EXPECT_EQ(p.offsets, (Offsets{{0, 0}, {0, 1}, {0, 2}, {0, 0}, {0, 0}, {0, 1}, {0, 0}}));
  EXPECT_EQ(p.type_ids, (std::vector<int32_t>(7, 0)));
}

// A file saved without truncation (XLM-R's) gets the model's length through
// the Tokenizer interface, as the model stack sets it.
TEST(Unigram, SetMaxLengthThroughTheInterfaceTruncates) {
  UnigramSpec spec = TinySpec();
  using Kind = TemplatePiece::Kind;
  const TemplatePiece s{Kind::kSpecial, {8}, 0, "<s>"};
  const TemplatePiece e{Kind::kSpecial, {9}, 0, "</s>"};
  spec.post_processor.single_template = {s, {Kind::kSequenceA, {}, 0, ""}, e};
  auto t = Make(std::move(spec));
  EXPECT_EQ(t->Encode("ab ab ab ab").ids.size(), 10u);  // no truncation in the file
  Tokenizer* as_interface = t.get();
  as_interface->set_max_length(5);
  EXPECT_EQ(t->Encode("ab ab ab ab").ids, (std::vector<int32_t>{8, 1, 4, 1, 9}));
}

TEST(Unigram, TokenStringAndUnkId) {
  UnigramSpec spec = TinySpec();
  spec.added_tokens = {{"<mask>", 12, true, true, false}};
  auto t = Make(std::move(spec));
  EXPECT_EQ(t->unk_id(), 0);
  EXPECT_EQ(t->TokenString(5), "\u2581ab");
  EXPECT_EQ(t->TokenString(12), "<mask>");
  EXPECT_EQ(t->TokenString(13), "");
  EXPECT_EQ(t->vocab_size(), 13u);
}

TEST(Unigram, InvalidUtf8ReadsAsReplacementCharacters) {
  auto t = Make(TinySpec());
  const Encoding e = t->Encode("a\xFF\xC3");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{1, 2, 0}));
  EXPECT_EQ(e.offsets, (Offsets{{0, 1}, {0, 1}, {1, 3}}));
}

TEST(Unigram, SerdeF64RoundsTwice) {
  // 17 significant digits: the u64 significand is not exact as a double, so
  // serde_json's value is (double)38222395572172143 / 1e16.
  const double serde = SerdeF64("-3.8222395572172143");
  EXPECT_EQ(serde, -(static_cast<double>(38222395572172143ull) / 1e16));
  EXPECT_EQ(SerdeF64("0.0"), 0.0);
  EXPECT_EQ(SerdeF64("-12.5"), -12.5);
  EXPECT_EQ(SerdeF64("1e-5"), 1.0 / 1e5);
  EXPECT_EQ(SerdeF64("-2.5E+2"), -250.0);
}

TEST(LoadUnigram, ErrorsNameTheKey) {
  testing::TempDir dir;
  const std::string base =
      R"({"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.5]]}})";
  struct Case {
    std::string json;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"model": {"type": "Unigram", "unk_id": null, "vocab": [["a", -1.0]]}})",
       "model.unk_id: expected an id (files without an unknown token are not supported)"},
      {R"({"model": {"type": "Unigram", "unk_id": 5, "vocab": [["a", -1.0]]}})",
       "model.unk_id: 5 is outside the vocabulary"},
      {R"({"model": {"type": "Unigram", "unk_id": 0, "vocab": [["a"]]}})",
       "model.vocab[0]: expected [piece, score]"},
      {base.substr(0, base.size() - 1) + R"(, "normalizer": {"type": "BertNormalizer"}})",
       "normalizer.type: \"BertNormalizer\" is not supported (Sequence, Precompiled, NFKC, "
       "Lowercase, Strip, Replace)"},
      {base.substr(0, base.size() - 1) +
           R"(, "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAAAAAA"}})",
       "normalizer: precompiled_charsmap: trie size 0 does not fit the 6-byte blob"},
      {base.substr(0, base.size() - 1) + R"(, "pre_tokenizer": {"type": "ByteLevel"}})",
       "pre_tokenizer.type: \"ByteLevel\" is not supported (Sequence, Metaspace, WhitespaceSplit)"},
      {base.substr(0, base.size() - 1) +
           R"(, "added_tokens": [{"id": 1, "content": "a", "single_word": true}]})",
       "added_tokens: single_word=true is not supported (\"a\")"},
  };
  for (const Case& c : cases) {
    const std::string path = dir.Write("tokenizer.json", c.json);
    auto loaded = LoadTokenizer(path);
    ASSERT_FALSE(loaded.ok()) << c.json;
    EXPECT_EQ(loaded.status().message(), path + ": " + c.message);
  }
  const std::string path = dir.Write("tokenizer.json", base);
  auto loaded = LoadTokenizer(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->model_type, "Unigram");
  // No pre-tokenizer: the text as one piece, "a" then the unknown "b".
  EXPECT_EQ(loaded->tokenizer->Encode("ab").ids, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(loaded->tokenizer->vocab_size(), 2u);
}

}  // namespace
}  // namespace nlpflow
