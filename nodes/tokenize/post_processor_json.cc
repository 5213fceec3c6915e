#include "nodes/tokenize/post_processor_json.h"

#include <limits>

namespace nlpflow {
namespace {

using Json = nlohmann::json;
using Kind = TemplatePiece::Kind;

Status Error(const std::string& path, const std::string& key, const std::string& what) {
  return Status::InvalidArgument(path + ": " + key + ": " + what);
}

Result<int32_t> Id(const Json& j, const std::string& path, const std::string& key) {
  if (!j.is_number_integer() || j.get<int64_t>() < 0 ||
      j.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
    return Error(path, key, "expected an id (a non-negative int)");
  }
  return j.get<int32_t>();
}

// [name, id], as BertProcessing and RobertaProcessing write cls and sep.
Result<TemplatePiece> NamedToken(const Json& p, const char* key, const std::string& path) {
  const std::string where = std::string("post_processor.") + key;
  auto it = p.find(key);
  if (it == p.end() || !it->is_array() || it->size() != 2 || !(*it)[0].is_string()) {
    return Error(path, where, "expected [token, id]");
  }
  TemplatePiece piece;
  piece.token = (*it)[0].get<std::string>();
  NLPFLOW_ASSIGN_OR_RETURN(const int32_t id, Id((*it)[1], path, where));
  piece.ids = {id};
  return piece;
}

Result<std::vector<TemplatePiece>> ParseTemplate(const Json& pieces, const Json& specials,
                                                 const std::string& path, const std::string& key) {
  if (!pieces.is_array()) return Error(path, key, "expected a list");
  std::vector<TemplatePiece> out;
  for (const Json& p : pieces) {
    TemplatePiece piece;
    if (p.is_object() && p.contains("SpecialToken") && p["SpecialToken"].is_object()) {
      const Json& st = p["SpecialToken"];
      piece.token = st.value("id", "");
      auto s = specials.is_object() ? specials.find(piece.token) : specials.end();
      if (s == specials.end() || !s->is_object() || !s->contains("ids") ||
          !(*s)["ids"].is_array()) {
        return Error(path, key,
                     "special token \"" + piece.token + "\" not in post_processor.special_tokens");
      }
      for (const Json& id : (*s)["ids"]) {
        NLPFLOW_ASSIGN_OR_RETURN(const int32_t v, Id(id, path, key));
        piece.ids.push_back(v);
      }
      piece.type_id = st.value("type_id", 0);
    } else if (p.is_object() && p.contains("Sequence") && p["Sequence"].is_object()) {
      const Json& sq = p["Sequence"];
      const std::string id = sq.value("id", "A");
      if (id != "A" && id != "B") return Error(path, key, "sequence id must be A or B");
      piece.kind = id == "A" ? Kind::kSequenceA : Kind::kSequenceB;
      piece.type_id = sq.value("type_id", 0);
    } else {
      return Error(path, key, "expected SpecialToken or Sequence pieces");
    }
    out.push_back(std::move(piece));
  }
  return out;
}

TemplatePiece Sequence(Kind kind, int32_t type_id) {
  TemplatePiece p;
  p.kind = kind;
  p.type_id = type_id;
  return p;
}

TemplatePiece WithType(TemplatePiece p, int32_t type_id) {
  p.type_id = type_id;
  return p;
}

}  // namespace

Result<PostProcessorSpec> ParsePostProcessorJson(const Json& root, const std::string& path) {
  PostProcessorSpec spec;
  auto post = root.find("post_processor");
  if (post != root.end() && !post->is_null()) {
    if (!post->is_object()) return Error(path, "post_processor", "expected an object or null");
    const std::string type = post->value("type", "");
    if (type == "TemplateProcessing") {
      const Json specials = post->value("special_tokens", Json::object());
      NLPFLOW_ASSIGN_OR_RETURN(spec.single_template,
                               ParseTemplate(post->value("single", Json::array()), specials, path,
                                             "post_processor.single"));
      NLPFLOW_ASSIGN_OR_RETURN(spec.pair_template,
                               ParseTemplate(post->value("pair", Json::array()), specials, path,
                                             "post_processor.pair"));
    } else if (type == "BertProcessing" || type == "RobertaProcessing") {
      NLPFLOW_ASSIGN_OR_RETURN(const TemplatePiece cls, NamedToken(*post, "cls", path));
      NLPFLOW_ASSIGN_OR_RETURN(const TemplatePiece sep, NamedToken(*post, "sep", path));
      const bool bert = type == "BertProcessing";
      spec.single_template = {cls, Sequence(Kind::kSequenceA, 0), sep};
      if (bert) {
        spec.pair_template = {cls, Sequence(Kind::kSequenceA, 0), sep,
                              Sequence(Kind::kSequenceB, 1), WithType(sep, 1)};
      } else {
        spec.pair_template = {cls, Sequence(Kind::kSequenceA, 0), sep, sep,
                              Sequence(Kind::kSequenceB, 0), sep};
      }
    } else {
      return Error(path, "post_processor.type", "\"" + type + "\" is not supported");
    }
  }
  auto t = root.find("truncation");
  if (t != root.end() && !t->is_null()) {
    if (!t->is_object()) return Error(path, "truncation", "expected an object or null");
    if (t->value("strategy", "LongestFirst") != "LongestFirst" ||
        t->value("direction", "Right") != "Right" || t->value("stride", 0) != 0) {
      return Error(path, "truncation", "only LongestFirst from the right without stride is supported");
    }
    auto m = t->find("max_length");
    if (m == t->end() || !m->is_number_unsigned() ||
        m->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      return Error(path, "truncation.max_length", "expected a non-negative int");
    }
    spec.max_length = m->get<int>();
  }
  return spec;
}

}  // namespace nlpflow
