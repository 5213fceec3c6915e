// The loaders: vocab.txt, tokenizer.json, model folders, and their errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nodes/tokenize/wordpiece_tokenizer.h"
#include "tests/nodes/tokenize/tokenize_test_util.h"

namespace nlpflow {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using Ids = std::vector<int32_t>;
using Json = nlohmann::json;

// A tokenizer.json as Hugging Face writes it for BERT, over the tiny vocab.
Json TinyTokenizerJson() {
  Json vocab = Json::object();
  int id = 0;
  const std::string text = testing::TinyVocab();
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = text.find('\n', pos);
    vocab[text.substr(pos, end - pos)] = id++;
    pos = end + 1;
  }
  Json added = Json::array();
  for (const auto& [token, token_id] :
       std::vector<std::pair<std::string, int>>{{"[PAD]", 0}, {"[UNK]", 1}, {"[CLS]", 2},
                                                {"[SEP]", 3}, {"[MASK]", 4}}) {
    added.push_back({{"id", token_id}, {"content", token}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                     {"special", true}});
  }
  auto special = [](const char* token, int type_id) {
    return Json{{"SpecialToken", {{"id", token}, {"type_id", type_id}}}};
  };
  auto sequence = [](const char* seq, int type_id) {
    return Json{{"Sequence", {{"id", seq}, {"type_id", type_id}}}};
  };
  return Json{
      {"version", "1.0"},
      {"truncation", {{"max_length", 16}, {"strategy", "LongestFirst"}, {"stride", 0}}},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer",
       {{"type", "BertNormalizer"},
        {"clean_text", true},
        {"handle_chinese_chars", true},
        {"strip_accents", nullptr},
        {"lowercase", true}}},
      {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {special("[CLS]", 0), sequence("A", 0), special("[SEP]", 0)}},
        {"pair",
         {special("[CLS]", 0), sequence("A", 0), special("[SEP]", 0), sequence("B", 1),
          special("[SEP]", 1)}},
        {"special_tokens",
         {{"[CLS]", {{"id", "[CLS]"}, {"ids", {2}}, {"tokens", {"[CLS]"}}}},
          {"[SEP]", {{"id", "[SEP]"}, {"ids", {3}}, {"tokens", {"[SEP]"}}}}}}}},
      {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
      {"model",
       {{"type", "WordPiece"},
        {"unk_token", "[UNK]"},
        {"continuing_subword_prefix", "##"},
        {"max_input_chars_per_word", 100},
        {"vocab", vocab}}},
  };
}

class WordPieceLoadingTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<WordPieceTokenizer>> LoadJson(const Json& j) {
    path_ = dir_.Write("tokenizer.json", j.dump());
    return WordPieceTokenizer::FromTokenizerJson(path_);
  }
  // The error of loading j; fails the test if it loads.
  Status JsonError(const Json& j) {
    auto t = LoadJson(j);
    EXPECT_FALSE(t.ok());
    return t.status();
  }

  testing::TempDir dir_;
  std::string path_;
};

TEST_F(WordPieceLoadingTest, TokenizerJsonMatchesVocabFile) {
  auto from_json = LoadJson(TinyTokenizerJson());
  ASSERT_TRUE(from_json.ok()) << from_json.status().ToString();
  auto from_vocab =
      WordPieceTokenizer::FromVocabFile(dir_.Write("vocab.txt", testing::TinyVocab()), {});
  ASSERT_TRUE(from_vocab.ok()) << from_vocab.status().ToString();
  EXPECT_EQ((*from_json)->max_length(), 16);
  (*from_vocab)->set_max_length(16);
  for (const char* text : {"unwanted running", "Hello, WORLD! [MASK]", "café 日本 xxq", ""}) {
    EXPECT_EQ((*from_json)->Encode(text).ids, (*from_vocab)->Encode(text).ids) << text;
    EXPECT_EQ((*from_json)->Encode(text).offsets, (*from_vocab)->Encode(text).offsets) << text;
    EXPECT_EQ((*from_json)->EncodePair(text, "b x").type_ids,
              (*from_vocab)->EncodePair(text, "b x").type_ids);
  }
  EXPECT_EQ((*from_json)->cls_id(), 2);
  EXPECT_EQ((*from_json)->sep_id(), 3);
  EXPECT_EQ((*from_json)->pad_id(), 0);
  EXPECT_EQ((*from_json)->vocab_size(), 26u);
}

TEST_F(WordPieceLoadingTest, BertProcessingAndNoPostProcessor) {
  Json j = TinyTokenizerJson();
  j["post_processor"] = {{"type", "BertProcessing"},
                         {"sep", {"[SEP]", 3}},
                         {"cls", {"[CLS]", 2}}};
  auto bert = LoadJson(j);
  ASSERT_TRUE(bert.ok()) << bert.status().ToString();
  EXPECT_EQ((*bert)->EncodePair("x", "b").ids, (Ids{2, 19, 3, 17, 3}));
  EXPECT_EQ((*bert)->EncodePair("x", "b").type_ids, (Ids{0, 0, 0, 1, 1}));

  j["post_processor"] = nullptr;
  j["truncation"] = nullptr;
  auto none = LoadJson(j);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ((*none)->Encode("x b").ids, (Ids{19, 17}));
  EXPECT_EQ((*none)->EncodePair("x", "b").type_ids, (Ids{0, 1}));
  EXPECT_EQ((*none)->max_length(), 0);
  EXPECT_EQ((*none)->cls_id(), -1);
}

// all-mpnet-base-v2's tokenizer.json (scripts/setup fetches it): WordPiece
// with RobertaProcessing, a normalized "<unk>" and an lstrip "<mask>". The
// ids and offsets are those of Hugging Face tokenizers 0.19.1.
TEST_F(WordPieceLoadingTest, MpnetTokenizerJson) {
  const std::string path =
      std::string(NLPFLOW_SOURCE_DIR) + "/models/all-mpnet-base-v2/tokenizer.json";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
  auto t = WordPieceTokenizer::FromTokenizerJson(path);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  Encoding e = (*t)->Encode("a <UNK> b <unk>c");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{0, 1041, 3, 1042, 3, 1043, 2}));
  EXPECT_EQ(e.offsets, (std::vector<std::pair<int32_t, int32_t>>{
                           {0, 0}, {0, 1}, {2, 7}, {8, 9}, {10, 15}, {15, 16}, {0, 0}}));
  e = (*t)->Encode("hello  <mask> x");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{0, 7596, 30526, 1064, 2}));
  EXPECT_EQ(e.offsets[2], (std::pair<int32_t, int32_t>{7, 13}));
  EXPECT_EQ((*t)->Encode("A<Unk>").ids, (std::vector<int32_t>{0, 1041, 3, 2}));
  e = (*t)->EncodePair("question?", "answer.");
  EXPECT_EQ(e.ids, (std::vector<int32_t>{0, 3164, 1033, 2, 2, 3441, 1016, 2}));
  EXPECT_EQ(e.type_ids, (std::vector<int32_t>(8, 0)));
}

TEST_F(WordPieceLoadingTest, NormalizerSettingsAreRead) {
  Json j = TinyTokenizerJson();
  j["normalizer"]["lowercase"] = false;
  auto t = LoadJson(j);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_FALSE((*t)->options().lowercase);
  EXPECT_EQ((*t)->Encode("Hello hello").ids, (Ids{2, 1, 13, 3}));
}

TEST_F(WordPieceLoadingTest, MissingFileIsNotFoundNamingThePath) {
  const std::string path = (dir_.path() / "nope" / "tokenizer.json").string();
  auto t = WordPieceTokenizer::FromTokenizerJson(path);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(), HasSubstr(path));

  const std::string vocab = (dir_.path() / "vocab.txt").string();
  auto v = WordPieceTokenizer::FromVocabFile(vocab, {});
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(v.status().message(), HasSubstr(vocab));
}

TEST_F(WordPieceLoadingTest, MalformedJsonNamesTheFile) {
  const std::string path = dir_.Write("tokenizer.json", "{\"model\": {\"vocab\": ");
  auto t = WordPieceTokenizer::FromTokenizerJson(path);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), AllOf(HasSubstr(path), HasSubstr("not valid JSON")));
}

TEST_F(WordPieceLoadingTest, ErrorsNameTheOffendingKey) {
  struct Case {
    const char* name;
    std::function<void(Json&)> mutate;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"no vocab", [](Json& j) { j["model"].erase("vocab"); }, "model.vocab: expected an object"},
      {"vocab not object", [](Json& j) { j["model"]["vocab"] = Json::array(); }, "model.vocab"},
      {"negative id", [](Json& j) { j["model"]["vocab"]["x"] = -3; }, "model.vocab[\"x\"]"},
      {"model type", [](Json& j) { j["model"]["type"] = "BPE"; }, "model.type: \"BPE\""},
      {"unk type", [](Json& j) { j["model"]["unk_token"] = 5; },
       "model.unk_token: expected a string"},
      {"normalizer", [](Json& j) { j["normalizer"] = {{"type", "Lowercase"}}; },
       "normalizer.type: \"Lowercase\" is not supported"},
      {"lowercase type", [](Json& j) { j["normalizer"]["lowercase"] = "yes"; },
       "normalizer.lowercase: expected true or false"},
      {"pre-tokenizer", [](Json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; },
       "pre_tokenizer.type"},
      {"no pre-tokenizer", [](Json& j) { j["pre_tokenizer"] = nullptr; }, "pre_tokenizer"},
      {"single_word", [](Json& j) { j["added_tokens"][1]["single_word"] = true; },
       "added_tokens[1].single_word: true is not supported"},
      {"lstrip type", [](Json& j) { j["added_tokens"][1]["lstrip"] = "yes"; },
       "added_tokens[1].lstrip"},
      {"normalized", [](Json& j) { j["added_tokens"][4]["normalized"] = true; },
       "added_tokens[4].normalized: true is not supported for content that is not lowercase "
       "ASCII"},
      {"added id", [](Json& j) { j["added_tokens"][0].erase("id"); },
       "added_tokens[0].id: missing"},
      {"special entry", [](Json& j) { j["post_processor"]["special_tokens"].erase("[SEP]"); },
       "post_processor.special_tokens: no entry for \"[SEP]\""},
      {"piece", [](Json& j) { j["post_processor"]["single"][0] = {{"Other", {}}}; },
       "post_processor.single[0]"},
      {"template without A", [](Json& j) { j["post_processor"]["single"].erase(1); },
       "single template: must contain sequence A once"},
      {"template id",
       [](Json& j) { j["post_processor"]["special_tokens"]["[CLS]"]["ids"] = {999}; },
       "\"[CLS]\" has id 999, outside the vocabulary"},
      {"processor", [](Json& j) { j["post_processor"] = {{"type", "ByteLevel"}}; },
       "post_processor.type: \"ByteLevel\""},
      {"roberta processing", [](Json& j) { j["post_processor"] = {{"type", "RobertaProcessing"}}; },
       "post_processor.cls: expected [token, id]"},
      {"strategy", [](Json& j) { j["truncation"]["strategy"] = "OnlyFirst"; },
       "truncation.strategy"},
      {"direction", [](Json& j) { j["truncation"]["direction"] = "Left"; },
       "truncation.direction"},
      {"max_length", [](Json& j) { j["truncation"]["max_length"] = "128"; },
       "truncation.max_length: expected an integer"},
      {"no unk", [](Json& j) { j["model"]["vocab"].erase("[UNK]"); },
       "unk_token \"[UNK]\" is not in the vocabulary"},
      {"no pad", [](Json& j) {
         j["model"]["vocab"].erase("[PAD]");
         j["added_tokens"].erase(0);
       },
       "pad_token \"[PAD]\" is not in the vocabulary"},
      {"top level", [](Json& j) { j = Json::array(); }, "expected a JSON object"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Json j = TinyTokenizerJson();
    c.mutate(j);
    const Status status = JsonError(j);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), AllOf(HasSubstr(path_), HasSubstr(c.expected)));
  }
}

TEST_F(WordPieceLoadingTest, VocabFileErrors) {
  const std::string no_cls = dir_.Write("no_cls.txt", "[PAD]\n[UNK]\n[SEP]\nx\n");
  auto t = WordPieceTokenizer::FromVocabFile(no_cls, {});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(),
              AllOf(HasSubstr(no_cls), HasSubstr("cls_token \"[CLS]\" is not in the vocabulary")));

  auto empty = WordPieceTokenizer::FromVocabFile(dir_.Write("empty.txt", ""), {});
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("empty"));

  WordPieceOptions bad;
  bad.max_input_chars_per_word = 0;
  auto zero = WordPieceTokenizer::FromVocabFile(dir_.Write("v.txt", testing::TinyVocab()), bad);
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(zero.status().message(), HasSubstr("max_input_chars_per_word"));
}

TEST_F(WordPieceLoadingTest, VocabLinesAreTrimmedAtTheEndLikeHuggingFace) {
  // CRLF line ends and trailing blanks do not become part of the tokens.
  const std::string path =
      dir_.Write("crlf.txt", "[PAD]\r\n[UNK] \r\n[CLS]\r\n[SEP]\t\r\nhello\r\n");
  auto t = WordPieceTokenizer::FromVocabFile(path, {});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->Encode("hello").ids, (Ids{2, 4, 3}));
  EXPECT_EQ((*t)->vocab_size(), 5u);
}

TEST_F(WordPieceLoadingTest, ModelDirPrefersTokenizerJson) {
  dir_.Write("vocab.txt", testing::TinyVocab());
  auto vocab_only = WordPieceTokenizer::FromModelDir(dir_.path().string());
  ASSERT_TRUE(vocab_only.ok()) << vocab_only.status().ToString();
  EXPECT_EQ((*vocab_only)->max_length(), 512);

  dir_.Write("tokenizer.json", TinyTokenizerJson().dump());
  auto with_json = WordPieceTokenizer::FromModelDir(dir_.path().string());
  ASSERT_TRUE(with_json.ok()) << with_json.status().ToString();
  EXPECT_EQ((*with_json)->max_length(), 16);
}

TEST_F(WordPieceLoadingTest, ModelDirReadsTokenizerConfig) {
  dir_.Write("vocab.txt", testing::TinyVocab());
  dir_.Write("tokenizer_config.json",
             R"({"do_lower_case": false, "model_max_length": 64,
                 "unk_token": {"content": "[UNK]", "lstrip": false}, "cls_token": "[CLS]"})");
  auto t = WordPieceTokenizer::FromModelDir(dir_.path().string());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_FALSE((*t)->options().lowercase);
  EXPECT_EQ((*t)->max_length(), 64);
  EXPECT_EQ((*t)->Encode("Hello hello").ids, (Ids{2, 1, 13, 3}));

  // transformers' "unknown" model_max_length (1e30) keeps the default.
  dir_.Write("tokenizer_config.json", R"({"model_max_length": 1000000000000000019884624838656})");
  auto huge = WordPieceTokenizer::FromModelDir(dir_.path().string());
  ASSERT_TRUE(huge.ok()) << huge.status().ToString();
  EXPECT_EQ((*huge)->max_length(), 512);

  const std::string config = dir_.Write("tokenizer_config.json", R"({"do_lower_case": "no"})");
  auto bad = WordPieceTokenizer::FromModelDir(dir_.path().string());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), AllOf(HasSubstr(config), HasSubstr("do_lower_case")));
}

TEST_F(WordPieceLoadingTest, ModelDirErrors) {
  const std::string missing = (dir_.path() / "absent").string();
  auto t = WordPieceTokenizer::FromModelDir(missing);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(), HasSubstr(missing));

  auto empty = WordPieceTokenizer::FromModelDir(dir_.path().string());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(empty.status().message(), HasSubstr("neither tokenizer.json nor vocab.txt"));
}

TEST(WordPieceRealModelTest, LoadsAllMiniLm) {
  if (!testing::HaveModel()) GTEST_SKIP() << "no model at " << testing::ModelDir();
  auto t = WordPieceTokenizer::FromModelDir(testing::ModelDir());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->max_length(), 128);
  EXPECT_EQ((*t)->vocab_size(), 30522u);
  EXPECT_EQ((*t)->pad_id(), 0);
  EXPECT_EQ((*t)->unk_id(), 100);
  EXPECT_EQ((*t)->cls_id(), 101);
  EXPECT_EQ((*t)->sep_id(), 102);
  const Encoding e = (*t)->Encode("Hello, world!");
  EXPECT_EQ(e.ids, (Ids{101, 7592, 1010, 2088, 999, 102}));
  EXPECT_EQ(e.offsets, (std::vector<std::pair<int32_t, int32_t>>{
                           {0, 0}, {0, 5}, {5, 6}, {7, 12}, {12, 13}, {0, 0}}));
}

}  // namespace
}  // namespace nlpflow
