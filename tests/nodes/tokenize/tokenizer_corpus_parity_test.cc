// Parity on the whole corpus (>= 20,000 texts: SpamAssassin e-mails plus
// generated multilingual and hostile text) against Hugging Face `tokenizers`.
//
// ctest first runs tokenizer_parity_reference.py (the fixture
// tokenize_parity), which writes the corpus and Hugging Face's ids into
// <build>/tokenize_parity/; this test encodes every text with LoadTokenizer
// and requires identical ids. Skips when the reference was not produced
// (no .venv or no corpus: scripts/setup makes both).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nodes/tokenize/tokenizer.h"

namespace nlpflow {
namespace {

const std::string kDir = std::string(NLPFLOW_BINARY_DIR) + "/tokenize_parity";

std::string IdsToString(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s + "]";
}

void CheckCorpus(const std::string& name, const std::string& tokenizer_path) {
  const std::string corpus_path = kDir + "/corpus.jsonl";
  const std::string ids_path = kDir + "/" + name + ".ids";
  if (!std::filesystem::exists(corpus_path) || !std::filesystem::exists(ids_path)) {
    GTEST_SKIP() << "no reference in " << kDir << " (ctest's tokenize_parity_reference makes it)";
  }
  auto loaded = LoadTokenizer(tokenizer_path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& tokenizer = *loaded->tokenizer;

  std::ifstream corpus(corpus_path, std::ios::binary);
  std::ifstream reference(ids_path);
  std::string line, ref_line;
  size_t texts = 0, identical = 0, tokens = 0;
  while (std::getline(corpus, line)) {
    ASSERT_TRUE(std::getline(reference, ref_line)) << ids_path << " is shorter than the corpus";
    const std::string text = nlohmann::json::parse(line).at("text").get<std::string>();
    std::vector<int32_t> want;
    std::istringstream in(ref_line);
    for (int32_t id; in >> id;) want.push_back(id);
    const Encoding got = tokenizer.Encode(text);
    ++texts;
    tokens += want.size();
    if (got.ids == want) {
      ++identical;
      continue;
    }
    if (texts - identical == 1) {
      ADD_FAILURE() << name << ": first difference at text " << texts - 1 << ": " << line
                    << "\n  Hugging Face: " << IdsToString(want)
                    << "\n  nlpflow:      " << IdsToString(got.ids);
    }
  }
  EXPECT_GE(texts, 20000u);
  EXPECT_EQ(identical, texts) << name << ": " << texts - identical << " texts differ";
  std::cout << name << ": " << identical << "/" << texts << " texts identical (" << tokens
            << " tokens)\n";
}

TEST(CorpusParity, WordPiece) {
  CheckCorpus("wordpiece",
              std::string(NLPFLOW_SOURCE_DIR) + "/models/all-MiniLM-L6-v2/tokenizer.json");
}

TEST(CorpusParity, Bpe) {
  CheckCorpus("bpe", std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/bpe_tokenizer.json");
}

// The same vocabulary and merges with ByteLevel's add_prefix_space; the
// reference script writes the file next to its ids.
TEST(CorpusParity, BpePrefixSpace) { CheckCorpus("bpe_prefix", kDir + "/bpe_prefix.json"); }

// Unigram files trained at test time (train_unigram.py): SentencePiece's
// nmt_nfkc model converted by transformers (Precompiled normalizer, XLM-R's
// template), the same with byte_fallback, and one trained by tokenizers
// (NFKC, Replace, Lowercase, Strip, WhitespaceSplit + Metaspace "first").
TEST(CorpusParity, UnigramSpm) { CheckCorpus("unigram_spm", kDir + "/unigram_spm.json"); }
TEST(CorpusParity, UnigramSpmBytes) {
  CheckCorpus("unigram_spm_bytes", kDir + "/unigram_spm_bytes.json");
}
TEST(CorpusParity, UnigramHf) { CheckCorpus("unigram_hf", kDir + "/unigram_hf.json"); }

std::string OffsetsToString(const std::vector<std::pair<int32_t, int32_t>>& offsets) {
  std::string s = "[";
  for (size_t i = 0; i < offsets.size(); ++i) {
    s += (i ? " " : "") + std::to_string(offsets[i].first) + "-" + std::to_string(offsets[i].second);
  }
  return s + "]";
}

// Every 16th text alone and paired with the next one: ids, type ids and
// byte offsets as Hugging Face has them (the reference's examples.jsonl).
void CheckExamples(const std::string& name) {
  const std::string path = kDir + "/" + name + ".examples.jsonl";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
  auto loaded = LoadTokenizer(kDir + "/" + name + ".json");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& tokenizer = *loaded->tokenizer;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  size_t examples = 0, differ = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    const std::string a = j.at("a").get<std::string>();
    const std::string b = j.at("b").get<std::string>();
    for (const bool pair : {false, true}) {
      const std::string prefix = pair ? "pair_" : "";
      const Encoding got = pair ? tokenizer.EncodePair(a, b) : tokenizer.Encode(a);
      const auto ids = j.at(prefix + "ids").get<std::vector<int32_t>>();
      const auto type_ids = j.at(prefix + "type_ids").get<std::vector<int32_t>>();
      const auto offsets = j.at(prefix + "offsets").get<std::vector<std::pair<int32_t, int32_t>>>();
      ++examples;
      if (got.ids == ids && got.type_ids == type_ids && got.offsets == offsets) continue;
      if (differ++ == 0) {
        ADD_FAILURE() << name << (pair ? " pair" : " single") << ": first difference: " << line
                      << "\n  Hugging Face: " << IdsToString(ids) << " types "
                      << IdsToString(type_ids) << " offsets " << OffsetsToString(offsets)
                      << "\n  nlpflow:      " << IdsToString(got.ids) << " types "
                      << IdsToString(got.type_ids) << " offsets " << OffsetsToString(got.offsets);
      }
    }
  }
  EXPECT_GE(examples, 2000u);
  EXPECT_EQ(differ, 0u) << name << ": " << differ << " of " << examples << " encodings differ";
  std::cout << name << ": " << examples - differ << "/" << examples
            << " single and pair encodings identical (ids, type ids, offsets)\n";
}

TEST(CorpusParity, UnigramPairs) {
  for (const char* name : {"unigram_spm", "unigram_spm_bytes", "unigram_hf"}) {
    SCOPED_TRACE(name);
    CheckExamples(name);
  }
}

}  // namespace
}  // namespace nlpflow
