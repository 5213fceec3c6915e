// BpeTokenizer::FromTokenizerJson: a Hugging Face tokenizer.json to a
// BpeSpec. Anything that would change ids and is not implemented is refused
// with the key that names it, rather than approximated.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nodes/tokenize/bpe_tokenizer.h"

namespace nlpflow {
namespace {

using Json = nlohmann::json;

struct FileError {
  std::string path;
  Status operator()(const std::string& key, const std::string& what) const {
    return Status::InvalidArgument(path + ": " + key + ": " + what);
  }
};

bool IsNullOrFalse(const Json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() || (it->is_boolean() && !it->get<bool>());
}

Result<int32_t> Id(const Json& j, const FileError& err, const std::string& key) {
  if (!j.is_number_integer() || j.get<int64_t>() < 0 ||
      j.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
    return err(key, "expected an id (a non-negative int)");
  }
  return j.get<int32_t>();
}

// [name, id] as RobertaProcessing writes its cls and sep.
Result<int32_t> NamedId(const Json& p, const char* key, const FileError& err) {
  auto it = p.find(key);
  if (it == p.end() || !it->is_array() || it->size() != 2) {
    return err(std::string("post_processor.") + key, "expected [token, id]");
  }
  return Id((*it)[1], err, std::string("post_processor.") + key);
}

Result<std::vector<BpeTemplatePiece>> ParseTemplate(const Json& pieces, const Json& specials,
                                                    const FileError& err,
                                                    const std::string& key) {
  if (!pieces.is_array()) return err(key, "expected a list");
  std::vector<BpeTemplatePiece> out;
  for (const Json& p : pieces) {
    BpeTemplatePiece piece;
    if (p.contains("SpecialToken")) {
      const Json& st = p["SpecialToken"];
      const std::string name = st.value("id", "");
      auto s = specials.find(name);
      if (s == specials.end() || !s->contains("ids") || !(*s)["ids"].is_array()) {
        return err(key, "special token \"" + name + "\" not in post_processor.special_tokens");
      }
      for (const Json& id : (*s)["ids"]) {
        NLPFLOW_ASSIGN_OR_RETURN(const int32_t v, Id(id, err, key));
        piece.ids.push_back(v);
      }
      piece.type_id = st.value("type_id", 0);
    } else if (p.contains("Sequence")) {
      const Json& sq = p["Sequence"];
      piece.kind = sq.value("id", "A") == "A" ? BpeTemplatePiece::Kind::kSequenceA
                                               : BpeTemplatePiece::Kind::kSequenceB;
      piece.type_id = sq.value("type_id", 0);
    } else {
      return err(key, "expected SpecialToken or Sequence pieces");
    }
    out.push_back(std::move(piece));
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromTokenizerJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const Json root = Json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
  const FileError err{path};
  if (root.is_discarded() || !root.is_object()) return err("(root)", "not a JSON object");
  BpeSpec spec;
  spec.source = path;

  if (!IsNullOrFalse(root, "normalizer")) return err("normalizer", "only null is supported");

  const Json* pre = root.contains("pre_tokenizer") ? &root["pre_tokenizer"] : nullptr;
  if (pre == nullptr || !pre->is_object() || pre->value("type", "") != "ByteLevel") {
    return err("pre_tokenizer", "only ByteLevel is supported");
  }
  spec.add_prefix_space = pre->value("add_prefix_space", false);
  spec.use_regex = pre->value("use_regex", true);

  const Json& m = root["model"];
  for (const char* key : {"dropout", "continuing_subword_prefix", "end_of_word_suffix",
                          "byte_fallback"}) {
    if (!IsNullOrFalse(m, key)) return err(std::string("model.") + key, "is not supported");
  }
  if (m.contains("unk_token") && m["unk_token"].is_string()) {
    spec.unk_token = m["unk_token"].get<std::string>();
  }
  spec.ignore_merges = m.value("ignore_merges", false);
  if (!m.contains("vocab") || !m["vocab"].is_object()) {
    return err("model.vocab", "expected an object mapping tokens to ids");
  }
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    NLPFLOW_ASSIGN_OR_RETURN(const int32_t id,
                             Id(it.value(), err, "model.vocab[\"" + it.key() + "\"]"));
    spec.vocab.emplace_back(it.key(), id);
  }
  if (!m.contains("merges") || !m["merges"].is_array()) {
    return err("model.merges", "expected a list");
  }
  for (const Json& merge : m["merges"]) {
    // "left right" (tokenizers < 0.20) or ["left", "right"].
    if (merge.is_string()) {
      const std::string s = merge.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos) return err("model.merges", "\"" + s + "\" has no space");
      spec.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      spec.merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
    } else {
      return err("model.merges", "expected \"a b\" or [\"a\", \"b\"]");
    }
  }

  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const Json& a : root["added_tokens"]) {
      for (const char* key : {"lstrip", "rstrip", "single_word", "normalized"}) {
        if (a.value(key, false)) {
          return err("added_tokens", std::string(key) + "=true is not supported (\"" +
                                         a.value("content", "") + "\")");
        }
      }
      NLPFLOW_ASSIGN_OR_RETURN(const int32_t id, Id(a.value("id", Json(-1)), err, "added_tokens"));
      spec.added_tokens.push_back({a.value("content", ""), id});
    }
  }

  const Json* post = root.contains("post_processor") ? &root["post_processor"] : nullptr;
  if (post != nullptr && !post->is_null()) {
    const std::string type = post->value("type", "");
    if (type == "RobertaProcessing") {
      NLPFLOW_ASSIGN_OR_RETURN(const int32_t cls, NamedId(*post, "cls", err));
      NLPFLOW_ASSIGN_OR_RETURN(const int32_t sep, NamedId(*post, "sep", err));
      using K = BpeTemplatePiece::Kind;
      // <s> A </s> and <s> A </s></s> B </s>, all type id 0.
      spec.single_template = {{K::kSpecial, {cls}, 0}, {K::kSequenceA, {}, 0},
                              {K::kSpecial, {sep}, 0}};
      spec.pair_template = {{K::kSpecial, {cls}, 0}, {K::kSequenceA, {}, 0},
                            {K::kSpecial, {sep, sep}, 0}, {K::kSequenceB, {}, 0},
                            {K::kSpecial, {sep}, 0}};
      spec.trim_offsets = post->value("trim_offsets", true);
    } else if (type == "TemplateProcessing") {
      const Json specials = post->value("special_tokens", Json::object());
      NLPFLOW_ASSIGN_OR_RETURN(
          spec.single_template,
          ParseTemplate(post->value("single", Json::array()), specials, err, "post_processor.single"));
      NLPFLOW_ASSIGN_OR_RETURN(
          spec.pair_template,
          ParseTemplate(post->value("pair", Json::array()), specials, err, "post_processor.pair"));
    } else if (type == "ByteLevel") {
      spec.trim_offsets = post->value("trim_offsets", true);
    } else {
      return err("post_processor.type", "\"" + type + "\" is not supported");
    }
  } else {
    spec.trim_offsets = false;
  }

  if (root.contains("truncation") && root["truncation"].is_object()) {
    const Json& t = root["truncation"];
    if (t.value("strategy", "LongestFirst") != "LongestFirst" ||
        t.value("direction", "Right") != "Right" || t.value("stride", 0) != 0) {
      return err("truncation", "only LongestFirst from the right without stride is supported");
    }
    spec.max_length = t.value("max_length", 0);
  }
  if (root.contains("padding") && root["padding"].is_object()) {
    spec.pad_id = root["padding"].value("pad_id", 0);
  }
  return FromSpec(std::move(spec));
}

}  // namespace nlpflow
