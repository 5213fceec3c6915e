// UnigramTokenizer::FromTokenizerJson: a Hugging Face tokenizer.json to a
// UnigramSpec. Anything that would change ids and is not implemented is
// refused with the key that names it, rather than approximated.
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nodes/tokenize/post_processor_json.h"
#include "nodes/tokenize/unigram_tokenizer.h"

namespace nlpflow {
namespace {

using Json = nlohmann::json;
using PreTokenizer = UnigramSpec::PreTokenizer;

struct FileError {
  std::string path;
  Status operator()(const std::string& key, const std::string& what) const {
    return Status::InvalidArgument(path + ": " + key + ": " + what);
  }
};

Status ParseNormalizer(const Json& n, const FileError& err, const std::string& key,
                       std::vector<NormalizerStep>* out) {
  if (n.is_null()) return Status::Ok();
  if (!n.is_object()) return err(key, "expected an object or null");
  const std::string type = n.value("type", "");
  NormalizerStep step;
  using Kind = NormalizerStep::Kind;
  if (type == "Sequence") {
    auto list = n.find("normalizers");
    if (list == n.end() || !list->is_array()) return err(key + ".normalizers", "expected a list");
    for (size_t i = 0; i < list->size(); ++i) {
      NLPFLOW_RETURN_IF_ERROR(ParseNormalizer((*list)[i], err,
                                              key + ".normalizers[" + std::to_string(i) + "]", out));
    }
    return Status::Ok();
  }
  if (type == "Precompiled") {
    auto map = n.find("precompiled_charsmap");
    std::string blob;
    if (map != n.end() && map->is_string()) {
      auto decoded = Base64Decode(map->get<std::string>());
      if (!decoded.ok()) return err(key + ".precompiled_charsmap", "not base64");
      blob = std::move(*decoded);
    } else if (map != n.end() && map->is_array()) {
      for (const Json& b : *map) {
        if (!b.is_number_unsigned() || b.get<uint64_t>() > 255) {
          return err(key + ".precompiled_charsmap", "expected bytes");
        }
        blob.push_back(static_cast<char>(b.get<int>()));
      }
    } else if (map == n.end() || !map->is_null()) {
      return err(key + ".precompiled_charsmap", "expected a base64 string");
    }
    if (blob.empty()) return Status::Ok();  // no rules: the identity
    auto parsed = PrecompiledCharsmap::Parse(std::move(blob));
    if (!parsed.ok()) return err(key, parsed.status().message());
    step.kind = Kind::kPrecompiled;
    step.charsmap = std::make_shared<const PrecompiledCharsmap>(std::move(*parsed));
  } else if (type == "NFKC") {
    step.kind = Kind::kNfkc;
  } else if (type == "Lowercase") {
    step.kind = Kind::kLowercase;
  } else if (type == "Strip") {
    step.kind = Kind::kStrip;
    step.strip_left = n.value("strip_left", true);
    step.strip_right = n.value("strip_right", true);
  } else if (type == "Replace") {
    step.kind = Kind::kReplace;
    auto pattern = n.find("pattern");
    auto content = n.find("content");
    if (content == n.end() || !content->is_string()) return err(key + ".content", "expected a string");
    step.content = content->get<std::string>();
    if (pattern != n.end() && pattern->is_object() && pattern->contains("String") &&
        (*pattern)["String"].is_string()) {
      step.literal = (*pattern)["String"].get<std::string>();
      if (step.literal.empty()) return err(key + ".pattern", "empty String");
    } else if (pattern != n.end() && pattern->is_object() && pattern->contains("Regex") &&
               (*pattern)["Regex"].is_string()) {
      const Status s = ParseReplaceRegex((*pattern)["Regex"].get<std::string>(), &step);
      if (!s.ok()) return err(key + ".pattern", s.message());
    } else {
      return err(key + ".pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
    }
  } else {
    return err(key + ".type", "\"" + type +
                                  "\" is not supported (Sequence, Precompiled, NFKC, Lowercase, "
                                  "Strip, Replace)");
  }
  out->push_back(std::move(step));
  return Status::Ok();
}

Status ParsePreTokenizer(const Json& p, const FileError& err, const std::string& key,
                         std::vector<PreTokenizer>* out) {
  if (p.is_null()) return Status::Ok();
  if (!p.is_object()) return err(key, "expected an object or null");
  const std::string type = p.value("type", "");
  PreTokenizer pre;
  if (type == "Sequence") {
    auto list = p.find("pretokenizers");
    if (list == p.end() || !list->is_array()) return err(key + ".pretokenizers", "expected a list");
    for (size_t i = 0; i < list->size(); ++i) {
      NLPFLOW_RETURN_IF_ERROR(ParsePreTokenizer(
          (*list)[i], err, key + ".pretokenizers[" + std::to_string(i) + "]", out));
    }
    return Status::Ok();
  }
  if (type == "WhitespaceSplit") {
    pre.kind = PreTokenizer::Kind::kWhitespaceSplit;
  } else if (type == "Metaspace") {
    pre.kind = PreTokenizer::Kind::kMetaspace;
    const std::string replacement = p.value("replacement", std::string("\u2581"));
    char32_t cp = 0;
    if (replacement.empty() ||
        static_cast<size_t>(DecodeUtf8(replacement, 0, &cp)) != replacement.size()) {
      return err(key + ".replacement", "expected one character");
    }
    pre.replacement = cp;
    auto scheme = p.find("prepend_scheme");
    if (scheme != p.end() && scheme->is_string()) {
      const std::string s = scheme->get<std::string>();
      if (s == "always") {
        pre.prepend = PreTokenizer::Prepend::kAlways;
      } else if (s == "first") {
        pre.prepend = PreTokenizer::Prepend::kFirst;
      } else if (s == "never") {
        pre.prepend = PreTokenizer::Prepend::kNever;
      } else {
        return err(key + ".prepend_scheme", "\"" + s + "\" is not always, first or never");
      }
    } else {
      // Files from before prepend_scheme: add_prefix_space.
      pre.prepend = p.value("add_prefix_space", true) ? PreTokenizer::Prepend::kAlways
                                                      : PreTokenizer::Prepend::kNever;
    }
    pre.split = p.value("split", true);
  } else {
    return err(key + ".type", "\"" + type + "\" is not supported (Sequence, Metaspace, WhitespaceSplit)");
  }
  out->push_back(pre);
  return Status::Ok();
}

// The score text of each model.vocab entry, as written in the file.
// Hugging Face reads the file with serde_json, whose default float parsing
// is not always correctly rounded (it multiplies or divides the decimal
// significand by a power of ten: two roundings), and a score one ulp off
// changes which of two equally good Viterbi paths wins. So the scores are
// parsed from their text the way serde_json does (SerdeF64), and that needs
// the text, which only nlohmann's SAX interface hands out.
class VocabScoreText : public nlohmann::json_sax<Json> {
 public:
  std::vector<std::string> scores;  // "" where a score was an integer

  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Number(""); }
  bool number_unsigned(number_unsigned_t) override { return Number(""); }
  bool number_float(number_float_t, const string_t& s) override { return Number(s); }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override {
    Value();
    stack_.push_back({false, "", 0});
    return true;
  }
  bool key(string_t& k) override {
    stack_.back().key = k;
    return true;
  }
  bool end_object() override { return Pop(); }
  bool start_array(std::size_t) override {
    Value();
    stack_.push_back({true, "", 0});
    return true;
  }
  bool end_array() override { return Pop(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  struct Level {
    bool array;
    std::string key;
    size_t index;  // arrays: the index of the next value
  };
  // True when the value about to be read is model.vocab[i][1].
  bool AtScore() const {
    const size_t n = stack_.size();
    return n == 4 && !stack_[0].array && stack_[0].key == "model" && !stack_[1].array &&
           stack_[1].key == "vocab" && stack_[2].array && stack_[3].array && stack_[3].index == 1;
  }
  bool Number(const std::string& text) {
    if (AtScore()) {
      const size_t i = stack_[2].index - 1;
      if (scores.size() <= i) scores.resize(i + 1);
      scores[i] = text;
    }
    return Value();
  }
  bool Value() {
    if (!stack_.empty() && stack_.back().array) ++stack_.back().index;
    return true;
  }
  bool Pop() {
    stack_.pop_back();
    return true;
  }
  std::vector<Level> stack_;
};

}  // namespace

// serde_json's f64 parsing without its float_roundtrip feature: digits into
// a u64 significand (digits past its range are dropped, the exponent kept),
// then one multiplication or division by the power of ten.
double SerdeF64(std::string_view text) {
  static const double* pow10 = [] {
    static double table[309];
    for (int k = 0; k < 309; ++k) table[k] = std::strtod(("1e" + std::to_string(k)).c_str(), nullptr);
    return table;
  }();
  size_t i = 0;
  const bool negative = i < text.size() && text[i] == '-';
  if (negative) ++i;
  uint64_t significand = 0;
  int64_t exponent = 0;
  bool overflow = false;
  auto add_digit = [&](int d) {
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    if (significand > kMax / 10 ||
        (significand == kMax / 10 && static_cast<uint64_t>(d) > kMax % 10)) {
      overflow = true;
      return false;
    }
    significand = significand * 10 + static_cast<uint64_t>(d);
    return true;
  };
  bool long_integer = false;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (overflow) {
      ++exponent;  // an integer part too long for u64: serde's long-integer path
      long_integer = true;
    } else if (!add_digit(text[i] - '0')) {
      ++exponent;
      long_integer = true;
    }
  }
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      if (!overflow && add_digit(text[i] - '0')) --exponent;
    }
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool neg_exp = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) neg_exp = text[i++] == '-';
    int64_t e = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      e = std::min<int64_t>(e * 10 + (text[i] - '0'), 1000000);
    }
    exponent += neg_exp ? -e : e;
  }
  if (long_integer) {
    // Not what serde does digit for digit, and never written by it.
    return std::strtod(std::string(text).c_str(), nullptr);
  }
  double f = static_cast<double>(significand);
  while (true) {
    const int64_t magnitude = exponent < 0 ? -exponent : exponent;
    if (magnitude <= 308) {
      f = exponent >= 0 ? f * pow10[magnitude] : f / pow10[magnitude];
      break;
    }
    if (f == 0.0 || exponent >= 0) break;
    f /= 1e308;
    exponent += 308;
  }
  return negative ? -f : f;
}

Result<std::unique_ptr<UnigramTokenizer>> UnigramTokenizer::FromTokenizerJson(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string contents = buffer.str();
  const Json root = Json::parse(contents, nullptr, /*allow_exceptions=*/false);
  const FileError err{path};
  if (root.is_discarded() || !root.is_object()) return err("(root)", "not a JSON object");
  VocabScoreText score_text;
  Json::sax_parse(contents, &score_text);
  UnigramSpec spec;
  spec.source = path;

  if (root.contains("normalizer")) {
    NLPFLOW_RETURN_IF_ERROR(ParseNormalizer(root["normalizer"], err, "normalizer", &spec.normalizers));
  }
  if (root.contains("pre_tokenizer")) {
    NLPFLOW_RETURN_IF_ERROR(
        ParsePreTokenizer(root["pre_tokenizer"], err, "pre_tokenizer", &spec.pre_tokenizers));
  }

  if (!root.contains("model") || !root["model"].is_object()) return err("model", "expected an object");
  const Json& m = root["model"];
  auto unk = m.find("unk_id");
  if (unk == m.end() || !unk->is_number_unsigned()) {
    return err("model.unk_id", "expected an id (files without an unknown token are not supported)");
  }
  if (unk->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    return err("model.unk_id", "out of range");
  }
  spec.unk_id = unk->get<int32_t>();
  spec.byte_fallback = m.value("byte_fallback", false);
  auto vocab = m.find("vocab");
  if (vocab == m.end() || !vocab->is_array()) return err("model.vocab", "expected a list of [piece, score]");
  spec.vocab.reserve(vocab->size());
  for (size_t i = 0; i < vocab->size(); ++i) {
    const Json& e = (*vocab)[i];
    if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number()) {
      return err("model.vocab[" + std::to_string(i) + "]", "expected [piece, score]");
    }
    const bool have_text = i < score_text.scores.size() && !score_text.scores[i].empty();
    spec.vocab.emplace_back(e[0].get<std::string>(),
                            have_text ? SerdeF64(score_text.scores[i]) : e[1].get<double>());
  }

  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const Json& a : root["added_tokens"]) {
      if (!a.is_object()) return err("added_tokens", "expected objects");
      if (a.value("single_word", false)) {
        return err("added_tokens", "single_word=true is not supported (\"" +
                                       a.value("content", "") + "\")");
      }
      UnigramSpec::AddedToken added;
      added.content = a.value("content", "");
      auto id = a.find("id");
      if (id == a.end() || !id->is_number_unsigned() ||
          id->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
        return err("added_tokens", "\"" + added.content + "\": expected an id");
      }
      added.id = id->get<int32_t>();
      added.normalized = a.value("normalized", !a.value("special", false));
      added.lstrip = a.value("lstrip", false);
      added.rstrip = a.value("rstrip", false);
      spec.added_tokens.push_back(std::move(added));
    }
  }
  NLPFLOW_ASSIGN_OR_RETURN(spec.post_processor, ParsePostProcessorJson(root, path));
  if (root.contains("padding") && root["padding"].is_object()) {
    spec.pad_id = root["padding"].value("pad_id", 0);
  }
  return FromSpec(std::move(spec));
}

}  // namespace nlpflow
