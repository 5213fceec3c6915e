// The loaders of WordPieceTokenizer: vocab.txt, Hugging Face tokenizer.json,
// and model folders. Each turns a file into a WordPieceSpec; FromSpec does
// the validation that does not depend on the file format.
#include <utf8proc.h>

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nodes/tokenize/hf_unicode.h"
#include "nodes/tokenize/wordpiece_tokenizer.h"

namespace nlpflow {
namespace {

using Json = nlohmann::json;
using Kind = WordPieceTemplatePiece::Kind;

Result<std::string> ReadFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::NotFound(path + ": no such file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Unavailable(path + ": cannot open for reading");
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return Status::DataLoss(path + ": read error");
  return contents.str();
}

// Rust's str::trim_end, which Hugging Face applies to each vocab.txt line.
std::string_view TrimEnd(std::string_view s) {
  while (!s.empty()) {
    size_t start = s.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    utf8proc_int32_t cp = -1;
    const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(s.data() + start);
    if (utf8proc_iterate(bytes, static_cast<utf8proc_ssize_t>(s.size() - start), &cp) < 0 ||
        !hf_unicode::IsWhitespace(static_cast<char32_t>(cp))) {
      break;
    }
    s.remove_suffix(s.size() - start);
  }
  return s;
}

Result<std::vector<std::pair<std::string, int32_t>>> ReadVocabTxt(const std::string& path) {
  NLPFLOW_ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  std::vector<std::pair<std::string, int32_t>> vocab;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    vocab.emplace_back(std::string(TrimEnd(std::string_view(text).substr(pos, end - pos))),
                       static_cast<int32_t>(vocab.size()));
    pos = end + 1;
  }
  if (vocab.empty()) return Status::InvalidArgument(path + ": the vocabulary is empty");
  return vocab;
}

// Reads typed values out of a parsed JSON file. Every error names the file
// and the key path ("model.vocab"), because that is what a person must fix.
class JsonFile {
 public:
  explicit JsonFile(std::string path) : path_(std::move(path)) {}

  Status Error(const std::string& key, const std::string& message) const {
    return Status::InvalidArgument(path_ + ": " + key + ": " + message);
  }

  Result<Json> Parse(const std::string& text) const {
    try {
      return Json::parse(text);
    } catch (const Json::parse_error& e) {
      return Status::InvalidArgument(path_ + ": not valid JSON: " + e.what());
    }
  }

  // The member `name` of `obj` (which is at `key`), or nullptr if absent.
  const Json* Find(const Json& obj, const std::string& name) const {
    auto it = obj.find(name);
    return it == obj.end() ? nullptr : &*it;
  }

  Result<bool> Bool(const Json& obj, const std::string& key, const std::string& name,
                    bool fallback) const {
    const Json* v = Find(obj, name);
    if (v == nullptr || v->is_null()) return fallback;
    if (!v->is_boolean()) return Error(Join(key, name), "expected true or false");
    return v->get<bool>();
  }
  Result<std::optional<bool>> OptionalBool(const Json& obj, const std::string& key,
                                           const std::string& name) const {
    const Json* v = Find(obj, name);
    if (v == nullptr || v->is_null()) return std::optional<bool>();
    if (!v->is_boolean()) return Error(Join(key, name), "expected true, false or null");
    return std::optional<bool>(v->get<bool>());
  }
  Result<std::string> String(const Json& obj, const std::string& key, const std::string& name,
                             std::optional<std::string> fallback = std::nullopt) const {
    const Json* v = Find(obj, name);
    if (v == nullptr || v->is_null()) {
      if (fallback) return *fallback;
      return Error(Join(key, name), "missing");
    }
    if (!v->is_string()) return Error(Join(key, name), "expected a string");
    return v->get<std::string>();
  }
  Result<int64_t> Int(const Json& obj, const std::string& key, const std::string& name,
                      std::optional<int64_t> fallback = std::nullopt) const {
    const Json* v = Find(obj, name);
    if (v == nullptr || v->is_null()) {
      if (fallback) return *fallback;
      return Error(Join(key, name), "missing");
    }
    if (!v->is_number_integer()) return Error(Join(key, name), "expected an integer");
    return v->get<int64_t>();
  }
  // An int32 id in [0, 2^31).
  Result<int32_t> Id(const Json& v, const std::string& key) const {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
        v.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return Error(key, "expected a non-negative 32-bit integer id");
    }
    return static_cast<int32_t>(v.get<int64_t>());
  }
  Result<std::string> Type(const Json& obj, const std::string& key) const {
    if (!obj.is_object()) return Error(key, "expected an object");
    return String(obj, key, "type");
  }

  static std::string Join(const std::string& key, const std::string& name) {
    return key.empty() ? name : key + "." + name;
  }

 private:
  std::string path_;
};

Status ReadNormalizer(const JsonFile& f, const Json& root, WordPieceOptions* o) {
  const Json* n = f.Find(root, "normalizer");
  if (n == nullptr || n->is_null()) {  // no normalizer: text goes through as it is
    o->clean_text = o->handle_chinese_chars = o->lowercase = false;
    o->strip_accents = false;
    return Status::Ok();
  }
  NLPFLOW_ASSIGN_OR_RETURN(const std::string type, f.Type(*n, "normalizer"));
  if (type != "BertNormalizer") {
    return f.Error("normalizer.type", "\"" + type + "\" is not supported (only BertNormalizer)");
  }
  NLPFLOW_ASSIGN_OR_RETURN(o->clean_text, f.Bool(*n, "normalizer", "clean_text", true));
  NLPFLOW_ASSIGN_OR_RETURN(o->handle_chinese_chars,
                           f.Bool(*n, "normalizer", "handle_chinese_chars", true));
  NLPFLOW_ASSIGN_OR_RETURN(o->strip_accents, f.OptionalBool(*n, "normalizer", "strip_accents"));
  NLPFLOW_ASSIGN_OR_RETURN(o->lowercase, f.Bool(*n, "normalizer", "lowercase", true));
  return Status::Ok();
}

Status ReadPreTokenizer(const JsonFile& f, const Json& root) {
  const Json* p = f.Find(root, "pre_tokenizer");
  if (p == nullptr || p->is_null()) {
    return f.Error("pre_tokenizer", "missing (only BertPreTokenizer is supported)");
  }
  NLPFLOW_ASSIGN_OR_RETURN(const std::string type, f.Type(*p, "pre_tokenizer"));
  if (type != "BertPreTokenizer") {
    return f.Error("pre_tokenizer.type",
                   "\"" + type + "\" is not supported (only BertPreTokenizer)");
  }
  return Status::Ok();
}

Status ReadModel(const JsonFile& f, const Json& root, WordPieceSpec* spec) {
  const Json* m = f.Find(root, "model");
  if (m == nullptr || !m->is_object()) return f.Error("model", "missing or not an object");
  NLPFLOW_ASSIGN_OR_RETURN(const std::string type, f.String(*m, "model", "type", "WordPiece"));
  if (type != "WordPiece") {
    return f.Error("model.type", "\"" + type + "\" is not supported (only WordPiece)");
  }
  WordPieceOptions& o = spec->options;
  NLPFLOW_ASSIGN_OR_RETURN(o.unk_token, f.String(*m, "model", "unk_token", o.unk_token));
  NLPFLOW_ASSIGN_OR_RETURN(
      o.continuing_subword_prefix,
      f.String(*m, "model", "continuing_subword_prefix", o.continuing_subword_prefix));
  NLPFLOW_ASSIGN_OR_RETURN(
      const int64_t max_chars,
      f.Int(*m, "model", "max_input_chars_per_word", o.max_input_chars_per_word));
  if (max_chars <= 0 || max_chars > std::numeric_limits<int>::max()) {
    return f.Error("model.max_input_chars_per_word", "must be a positive int");
  }
  o.max_input_chars_per_word = static_cast<int>(max_chars);
  const Json* vocab = f.Find(*m, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    return f.Error("model.vocab", "expected an object mapping tokens to ids");
  }
  spec->vocab.reserve(vocab->size());
  for (auto it = vocab->begin(); it != vocab->end(); ++it) {
    NLPFLOW_ASSIGN_OR_RETURN(const int32_t id,
                             f.Id(it.value(), "model.vocab[\"" + it.key() + "\"]"));
    spec->vocab.emplace_back(it.key(), id);
  }
  if (spec->vocab.empty()) return f.Error("model.vocab", "is empty");
  return Status::Ok();
}

Status ReadAddedTokens(const JsonFile& f, const Json& root, WordPieceSpec* spec) {
  const Json* added = f.Find(root, "added_tokens");
  if (added == nullptr || added->is_null()) return Status::Ok();
  if (!added->is_array()) return f.Error("added_tokens", "expected an array");
  for (size_t i = 0; i < added->size(); ++i) {
    const Json& a = (*added)[i];
    const std::string key = "added_tokens[" + std::to_string(i) + "]";
    if (!a.is_object()) return f.Error(key, "expected an object");
    WordPieceAddedToken token;
    const Json* id = f.Find(a, "id");
    if (id == nullptr) return f.Error(key + ".id", "missing");
    NLPFLOW_ASSIGN_OR_RETURN(token.id, f.Id(*id, key + ".id"));
    NLPFLOW_ASSIGN_OR_RETURN(token.content, f.String(a, key, "content"));
    if (token.content.empty()) return f.Error(key + ".content", "is empty");
    NLPFLOW_ASSIGN_OR_RETURN(token.special, f.Bool(a, key, "special", false));
    // single_word changes how a token is matched; approximating it would
    // break parity silently, so it is refused until someone needs it.
    NLPFLOW_ASSIGN_OR_RETURN(const bool single_word, f.Bool(a, key, "single_word", false));
    if (single_word) return f.Error(key + ".single_word", "true is not supported");
    // lstrip / rstrip (all-mpnet-base-v2's "<mask>") strip the whitespace
    // around the token; under BertPreTokenizer that whitespace makes no token
    // anyway, and Hugging Face's offsets stay the content's (checked with
    // tokenizers 0.19.1: "hello  <mask> x" gives <mask> at (7, 13)). Nothing
    // to do.
    for (const char* flag : {"lstrip", "rstrip"}) {
      NLPFLOW_ASSIGN_OR_RETURN(const bool set, f.Bool(a, key, flag, false));
      (void)set;
    }
    NLPFLOW_ASSIGN_OR_RETURN(const bool normalized, f.Bool(a, key, "normalized", !token.special));
    if (normalized) {
      // Matched in the normalized text by Hugging Face. For lowercase ASCII
      // content under BertNormalizer that is a case-insensitive match in the
      // raw text (wordpiece_tokenizer.h says what it misses).
      const bool lower_ascii = std::all_of(token.content.begin(), token.content.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x80 && !(c >= 'A' && c <= 'Z');
      });
      if (!lower_ascii) {
        return f.Error(key + ".normalized",
                       "true is not supported for content that is not lowercase ASCII");
      }
      token.ascii_case_insensitive = true;
    }
    spec->added_tokens.push_back(std::move(token));
  }
  return Status::Ok();
}

Result<WordPieceTemplatePiece> ReadTemplatePiece(const JsonFile& f, const Json& piece,
                                                 const std::string& key,
                                                 const Json* special_tokens) {
  WordPieceTemplatePiece p;
  if (!piece.is_object() || piece.size() != 1) {
    return f.Error(key, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
  }
  const std::string kind = piece.begin().key();
  const Json& body = piece.begin().value();
  const std::string body_key = key + "." + kind;
  if (!body.is_object()) return f.Error(body_key, "expected an object");
  NLPFLOW_ASSIGN_OR_RETURN(const std::string id, f.String(body, body_key, "id"));
  NLPFLOW_ASSIGN_OR_RETURN(const int64_t type_id, f.Int(body, body_key, "type_id", 0));
  if (type_id < 0 || type_id > std::numeric_limits<int32_t>::max()) {
    return f.Error(body_key + ".type_id", "out of range");
  }
  p.type_id = static_cast<int32_t>(type_id);
  if (kind == "Sequence") {
    if (id != "A" && id != "B") return f.Error(body_key + ".id", "expected \"A\" or \"B\"");
    p.kind = id == "A" ? Kind::kSequenceA : Kind::kSequenceB;
    return p;
  }
  if (kind != "SpecialToken") {
    return f.Error(key, "unknown piece \"" + kind + "\" (expected Sequence or SpecialToken)");
  }
  p.kind = Kind::kSpecial;
  p.token = id;
  const std::string tokens_key = "post_processor.special_tokens";
  const Json* entry = special_tokens ? f.Find(*special_tokens, id) : nullptr;
  if (entry == nullptr || !entry->is_object()) {
    return f.Error(tokens_key, "no entry for \"" + id + "\" used in " + key);
  }
  const Json* ids = f.Find(*entry, "ids");
  const std::string ids_key = tokens_key + "[\"" + id + "\"].ids";
  if (ids == nullptr || !ids->is_array() || ids->empty()) {
    return f.Error(ids_key, "expected a non-empty array of ids");
  }
  for (size_t i = 0; i < ids->size(); ++i) {
    NLPFLOW_ASSIGN_OR_RETURN(const int32_t v, f.Id((*ids)[i], ids_key));
    p.ids.push_back(v);
  }
  return p;
}

Status ReadPostProcessor(const JsonFile& f, const Json& root, WordPieceSpec* spec) {
  const Json* pp = f.Find(root, "post_processor");
  if (pp == nullptr || pp->is_null()) {  // no post-processor: no special tokens
    spec->single_template.emplace();
    spec->pair_template.emplace();
    return Status::Ok();
  }
  NLPFLOW_ASSIGN_OR_RETURN(const std::string type, f.Type(*pp, "post_processor"));
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    // "cls": ["[CLS]", 101], "sep": ["[SEP]", 102]. RobertaProcessing (MPNet's
    // WordPiece tokenizers, e.g. all-mpnet-base-v2): <s> A </s> and
    // <s> A </s> </s> B </s>, every type id 0. Its trim_offsets changes
    // nothing here: WordPiece tokens carry no spaces.
    WordPieceTemplatePiece cls, sep;
    for (auto [name, piece] : {std::pair{"cls", &cls}, std::pair{"sep", &sep}}) {
      const std::string key = std::string("post_processor.") + name;
      const Json* v = f.Find(*pp, name);
      if (v == nullptr || !v->is_array() || v->size() != 2 || !(*v)[0].is_string()) {
        return f.Error(key, "expected [token, id]");
      }
      piece->token = (*v)[0].get<std::string>();
      NLPFLOW_ASSIGN_OR_RETURN(const int32_t id, f.Id((*v)[1], key + "[1]"));
      piece->ids = {id};
    }
    spec->options.cls_token = cls.token;
    spec->options.sep_token = sep.token;
    WordPieceTemplatePiece a, b;
    a.kind = Kind::kSequenceA;
    b.kind = Kind::kSequenceB;
    b.type_id = 1;
    WordPieceTemplatePiece sep1 = sep;
    sep1.type_id = 1;
    spec->single_template = {cls, a, sep};
    spec->pair_template = {cls, a, sep, b, sep1};
    if (type == "RobertaProcessing") {
      b.type_id = 0;
      spec->pair_template = {cls, a, sep, sep, b, sep};
    }
    return Status::Ok();
  }
  if (type != "TemplateProcessing") {
    return f.Error("post_processor.type",
                   "\"" + type +
                       "\" is not supported (only TemplateProcessing, BertProcessing, "
                       "RobertaProcessing)");
  }
  const Json* special_tokens = f.Find(*pp, "special_tokens");
  for (const char* name : {"single", "pair"}) {
    const std::string key = std::string("post_processor.") + name;
    const Json* pieces = f.Find(*pp, name);
    if (pieces == nullptr || !pieces->is_array()) return f.Error(key, "expected an array");
    std::vector<WordPieceTemplatePiece> out;
    for (size_t i = 0; i < pieces->size(); ++i) {
      NLPFLOW_ASSIGN_OR_RETURN(
          WordPieceTemplatePiece p,
          ReadTemplatePiece(f, (*pieces)[i], key + "[" + std::to_string(i) + "]", special_tokens));
      out.push_back(std::move(p));
    }
    (std::string(name) == "single" ? spec->single_template : spec->pair_template) = std::move(out);
  }
  // Name cls/sep after the template, for options() readers.
  bool after_a = false;
  for (const auto& p : *spec->single_template) {
    if (p.kind == Kind::kSequenceA) {
      after_a = true;
    } else if (p.kind == Kind::kSpecial) {
      (after_a ? spec->options.sep_token : spec->options.cls_token) = p.token;
    }
  }
  return Status::Ok();
}

Status ReadTruncationAndPadding(const JsonFile& f, const Json& root, WordPieceOptions* o) {
  const Json* t = f.Find(root, "truncation");
  if (t == nullptr || t->is_null()) {
    o->max_length = 0;
  } else {
    if (!t->is_object()) return f.Error("truncation", "expected an object or null");
    NLPFLOW_ASSIGN_OR_RETURN(const int64_t max_length, f.Int(*t, "truncation", "max_length"));
    if (max_length < 0 || max_length > std::numeric_limits<int>::max()) {
      return f.Error("truncation.max_length", "out of range");
    }
    o->max_length = static_cast<int>(max_length);
    NLPFLOW_ASSIGN_OR_RETURN(const std::string strategy,
                             f.String(*t, "truncation", "strategy", "LongestFirst"));
    if (strategy != "LongestFirst") {
      return f.Error("truncation.strategy",
                     "\"" + strategy + "\" is not supported (only LongestFirst)");
    }
    NLPFLOW_ASSIGN_OR_RETURN(const std::string direction,
                             f.String(*t, "truncation", "direction", "Right"));
    if (direction != "Right") {
      return f.Error("truncation.direction",
                     "\"" + direction + "\" is not supported (only Right)");
    }
  }
  // Padding itself is the batcher's job; only the pad token is taken.
  const Json* p = f.Find(root, "padding");
  if (p != nullptr && p->is_object()) {
    NLPFLOW_ASSIGN_OR_RETURN(o->pad_token, f.String(*p, "padding", "pad_token", o->pad_token));
  }
  return Status::Ok();
}

// A special token in tokenizer_config.json: a string, or {"content": ...} in
// newer transformers versions.
Status ReadConfigToken(const JsonFile& f, const Json& config, const char* name, std::string* out) {
  const Json* v = f.Find(config, name);
  if (v == nullptr || v->is_null()) return Status::Ok();
  if (v->is_string()) {
    *out = v->get<std::string>();
    return Status::Ok();
  }
  if (v->is_object()) {
    NLPFLOW_ASSIGN_OR_RETURN(*out, f.String(*v, name, "content"));
    return Status::Ok();
  }
  return f.Error(name, "expected a string or {\"content\": ...}");
}

Status ReadTokenizerConfig(const std::string& path, WordPieceOptions* o) {
  NLPFLOW_ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  const JsonFile f(path);
  NLPFLOW_ASSIGN_OR_RETURN(const Json config, f.Parse(text));
  if (!config.is_object()) return Status::InvalidArgument(path + ": expected a JSON object");
  NLPFLOW_ASSIGN_OR_RETURN(const bool basic, f.Bool(config, "", "do_basic_tokenize", true));
  if (!basic) return f.Error("do_basic_tokenize", "false is not supported");
  NLPFLOW_ASSIGN_OR_RETURN(o->lowercase, f.Bool(config, "", "do_lower_case", o->lowercase));
  NLPFLOW_ASSIGN_OR_RETURN(o->strip_accents, f.OptionalBool(config, "", "strip_accents"));
  NLPFLOW_ASSIGN_OR_RETURN(
      o->handle_chinese_chars,
      f.Bool(config, "", "tokenize_chinese_chars", o->handle_chinese_chars));
  NLPFLOW_RETURN_IF_ERROR(ReadConfigToken(f, config, "unk_token", &o->unk_token));
  NLPFLOW_RETURN_IF_ERROR(ReadConfigToken(f, config, "cls_token", &o->cls_token));
  NLPFLOW_RETURN_IF_ERROR(ReadConfigToken(f, config, "sep_token", &o->sep_token));
  NLPFLOW_RETURN_IF_ERROR(ReadConfigToken(f, config, "pad_token", &o->pad_token));
  NLPFLOW_RETURN_IF_ERROR(ReadConfigToken(f, config, "mask_token", &o->mask_token));
  // transformers writes a huge number (1e30) when the length is unknown;
  // keep the default then.
  const Json* max_len = f.Find(config, "model_max_length");
  if (max_len != nullptr && max_len->is_number() && max_len->get<double>() >= 1 &&
      max_len->get<double>() <= 1e6) {
    o->max_length = static_cast<int>(max_len->get<double>());
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromVocabFile(
    const std::string& vocab_path, WordPieceOptions options) {
  WordPieceSpec spec;
  spec.source = vocab_path;
  NLPFLOW_ASSIGN_OR_RETURN(spec.vocab, ReadVocabTxt(vocab_path));
  // As transformers' BertTokenizerFast: the special tokens of the vocab are
  // matched when written in the input.
  for (const std::string* token : {&options.unk_token, &options.cls_token, &options.sep_token,
                                   &options.pad_token, &options.mask_token}) {
    if (token->empty()) continue;
    bool seen = false;
    for (const auto& added : spec.added_tokens) seen |= added.content == *token;
    if (seen) continue;
    for (const auto& [text, id] : spec.vocab) {
      if (text == *token) {
        spec.added_tokens.push_back({*token, id, true});
        break;
      }
    }
  }
  spec.options = std::move(options);
  return FromSpec(std::move(spec));
}

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromTokenizerJson(
    const std::string& path) {
  NLPFLOW_ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  const JsonFile f(path);
  NLPFLOW_ASSIGN_OR_RETURN(const Json root, f.Parse(text));
  if (!root.is_object()) return Status::InvalidArgument(path + ": expected a JSON object");
  WordPieceSpec spec;
  spec.source = path;
  NLPFLOW_RETURN_IF_ERROR(ReadNormalizer(f, root, &spec.options));
  NLPFLOW_RETURN_IF_ERROR(ReadPreTokenizer(f, root));
  NLPFLOW_RETURN_IF_ERROR(ReadModel(f, root, &spec));
  NLPFLOW_RETURN_IF_ERROR(ReadAddedTokens(f, root, &spec));
  NLPFLOW_RETURN_IF_ERROR(ReadPostProcessor(f, root, &spec));
  NLPFLOW_RETURN_IF_ERROR(ReadTruncationAndPadding(f, root, &spec.options));
  return FromSpec(std::move(spec));
}

Result<std::unique_ptr<WordPieceTokenizer>> WordPieceTokenizer::FromModelDir(
    const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root(dir);
  if (!fs::is_directory(root, ec)) return Status::NotFound(dir + ": no such directory");
  const fs::path json = root / "tokenizer.json";
  if (fs::is_regular_file(json, ec)) return FromTokenizerJson(json.string());
  const fs::path vocab = root / "vocab.txt";
  if (!fs::is_regular_file(vocab, ec)) {
    return Status::NotFound(dir + ": has neither tokenizer.json nor vocab.txt");
  }
  WordPieceOptions options;
  const fs::path config = root / "tokenizer_config.json";
  if (fs::is_regular_file(config, ec)) {
    NLPFLOW_RETURN_IF_ERROR(ReadTokenizerConfig(config.string(), &options));
  }
  return FromVocabFile(vocab.string(), std::move(options));
}

}  // namespace nlpflow
