// BpeTokenizer::FromTokenizerJson: a Hugging Face tokenizer.json to a
// BpeSpec. Anything that would change ids and is not implemented is refused
// with the key that names it, rather than approximated.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nodes/tokenize/bpe_tokenizer.h"
#include "nodes/tokenize/post_processor_json.h"

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

  // Templates and truncation are read as for every tokenizer; the ByteLevel
  // post-processor (offsets only) and RobertaProcessing's trim_offsets are
  // BPE's own.
  Json shared = Json::object();
  shared["truncation"] = root.value("truncation", Json());
  const Json* post = root.contains("post_processor") ? &root["post_processor"] : nullptr;
  spec.trim_offsets = false;
  if (post != nullptr && post->is_object()) {
    const std::string type = post->value("type", "");
    spec.trim_offsets = type == "ByteLevel" || type == "RobertaProcessing"
                            ? post->value("trim_offsets", true)
                            : true;
    if (type != "ByteLevel") shared["post_processor"] = *post;
  } else if (post != nullptr && !post->is_null()) {
    return err("post_processor", "expected an object or null");
  }
  NLPFLOW_ASSIGN_OR_RETURN(PostProcessorSpec templates, ParsePostProcessorJson(shared, path));
  spec.single_template = std::move(templates.single_template);
  spec.pair_template = std::move(templates.pair_template);
  spec.max_length = templates.max_length;
  if (root.contains("padding") && root["padding"].is_object()) {
    spec.pad_id = root["padding"].value("pad_id", 0);
  }
  return FromSpec(std::move(spec));
}

}  // namespace nlpflow
