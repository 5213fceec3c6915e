#include "nodes/infer/bert_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "nodes/infer/encoder_family.h"

namespace nlpflow {
namespace {

Status ReadPositive(const nlohmann::json& j, const char* key, bool required,
                    const std::string& path, int64_t* out) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return Status::InvalidArgument(path + ": missing '" + key + "'");
    return Status::Ok();
  }
  if (!it->is_number_integer() || it->get<int64_t>() <= 0) {
    return Status::InvalidArgument(path + ": '" + key + "' must be a positive integer, got " +
                                   it->dump());
  }
  *out = it->get<int64_t>();
  return Status::Ok();
}

}  // namespace

Result<BertConfig> ParseBertConfig(const std::string& json_text, const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) return Status::InvalidArgument(path + ": not a JSON object");

  BertConfig c;
  if (const auto it = j.find("model_type"); it != j.end() && !it->is_null()) {
    if (!it->is_string() || FindEncoderFamily(it->get<std::string>()) == nullptr) {
      return Status::InvalidArgument(path + ": model_type " +
                                     (it->is_string() ? "'" + it->get<std::string>() + "'"
                                                      : it->dump()) +
                                     " is not supported; supported: " + SupportedModelTypes());
    }
    c.model_type = it->get<std::string>();
  }
  if (c.model_type == "distilbert") {
    // DistilBertConfig's own names for the same sizes; its LayerNorms use
    // 1e-12 and it has no token types.
    if (j.value("sinusoidal_pos_embds", false) == true) {
      return Status::InvalidArgument(path +
                                     ": DistilBERT with sinusoidal_pos_embds true is not "
                                     "supported (only learned position embeddings)");
    }
    for (const auto& [from, to] : {std::pair<const char*, const char*>{"dim", "hidden_size"},
                                   {"n_layers", "num_hidden_layers"},
                                   {"n_heads", "num_attention_heads"},
                                   {"hidden_dim", "intermediate_size"},
                                   {"activation", "hidden_act"}}) {
      if (j.contains(from)) j[to] = j[from];
    }
    c.token_types = false;
  }
  if (c.model_type == "roberta" || c.model_type == "xlm-roberta" || c.model_type == "mpnet") {
    c.pad_token_id = 1;  // transformers' default for the three
    if (const auto it = j.find("pad_token_id"); it != j.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 0) {
        return Status::InvalidArgument(path + ": 'pad_token_id' must be a non-negative integer, got " +
                                       it->dump());
      }
      c.pad_token_id = it->get<int64_t>();
    }
    c.position_offset = c.pad_token_id + 1;
  }
  if (c.model_type == "mpnet") {
    c.token_types = false;
    c.relative_attention_num_buckets = 32;
    NLPFLOW_RETURN_IF_ERROR(ReadPositive(j, "relative_attention_num_buckets", false, path,
                                         &c.relative_attention_num_buckets));
  }
  if (const auto it = j.find("position_embedding_type");
      it != j.end() && it->is_string() && it->get<std::string>() != "absolute") {
    return Status::InvalidArgument(path + ": position_embedding_type '" +
                                   it->get<std::string>() +
                                   "' is not supported; supported: absolute");
  }

  NLPFLOW_RETURN_IF_ERROR(ReadPositive(j, "vocab_size", true, path, &c.vocab_size));
  NLPFLOW_RETURN_IF_ERROR(ReadPositive(j, "hidden_size", true, path, &c.hidden_size));
  NLPFLOW_RETURN_IF_ERROR(
      ReadPositive(j, "num_hidden_layers", true, path, &c.num_hidden_layers));
  NLPFLOW_RETURN_IF_ERROR(
      ReadPositive(j, "num_attention_heads", true, path, &c.num_attention_heads));
  NLPFLOW_RETURN_IF_ERROR(
      ReadPositive(j, "intermediate_size", true, path, &c.intermediate_size));
  NLPFLOW_RETURN_IF_ERROR(
      ReadPositive(j, "max_position_embeddings", false, path, &c.max_position_embeddings));
  NLPFLOW_RETURN_IF_ERROR(ReadPositive(j, "type_vocab_size", false, path, &c.type_vocab_size));
  if (c.max_position_embeddings <= c.position_offset) {
    return Status::InvalidArgument(path + ": max_position_embeddings " +
                                   std::to_string(c.max_position_embeddings) +
                                   " leaves no position after pad_token_id " +
                                   std::to_string(c.pad_token_id));
  }
  c.embedding_size = c.hidden_size;
  if (c.model_type == "electra") {
    c.embedding_size = 128;  // ElectraConfig's default
    NLPFLOW_RETURN_IF_ERROR(ReadPositive(j, "embedding_size", false, path, &c.embedding_size));
  }

  if (c.hidden_size % c.num_attention_heads != 0) {
    return Status::InvalidArgument(path + ": hidden_size " + std::to_string(c.hidden_size) +
                                   " is not a multiple of num_attention_heads " +
                                   std::to_string(c.num_attention_heads));
  }
  if (const auto it = j.find("layer_norm_eps"); it != j.end()) {
    if (!it->is_number() || it->get<double>() <= 0) {
      return Status::InvalidArgument(path + ": 'layer_norm_eps' must be a positive number, got " +
                                     it->dump());
    }
    c.layer_norm_eps = it->get<double>();
  }
  if (const auto it = j.find("hidden_act"); it != j.end()) {
    if (!it->is_string()) {
      return Status::InvalidArgument(path + ": 'hidden_act' must be a string, got " +
                                     it->dump());
    }
    c.hidden_act = it->get<std::string>();
  }
  if (c.hidden_act == "swish") c.hidden_act = "silu";  // transformers' alias
  if (c.hidden_act != "gelu" && c.hidden_act != "gelu_new" &&
      c.hidden_act != "gelu_pytorch_tanh" && c.hidden_act != "relu" && c.hidden_act != "silu") {
    return Status::InvalidArgument(path + ": hidden_act '" + c.hidden_act +
                                   "' is not supported; supported: gelu, gelu_new, "
                                   "gelu_pytorch_tanh, relu, silu");
  }
  for (const auto& [key, out, limit] :
       {std::tuple<const char*, std::vector<int64_t>*, int64_t>{
            "nlpflow_intermediate_sizes", &c.layer_intermediate_sizes, INT64_MAX},
        std::tuple<const char*, std::vector<int64_t>*, int64_t>{
            "nlpflow_attention_heads", &c.layer_attention_heads, c.num_attention_heads}}) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_array() || static_cast<int64_t>(it->size()) != c.num_hidden_layers) {
      return Status::InvalidArgument(path + ": '" + key + "' must be a list of " +
                                     std::to_string(c.num_hidden_layers) +
                                     " positive integers (one per layer), got " + it->dump());
    }
    for (const auto& v : *it) {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > limit) {
        return Status::InvalidArgument(path + ": '" + key + "' has a bad entry " + v.dump() +
                                       " (each must be between 1 and " +
                                       (limit == INT64_MAX ? std::string("any size")
                                                           : std::to_string(limit)) +
                                       ")");
      }
      out->push_back(v.get<int64_t>());
    }
  }
  if (const auto it = j.find("nlpflow_quantization"); it != j.end() && !it->is_null()) {
    const std::string where = path + ": 'nlpflow_quantization'";
    if (!it->is_object() || !it->contains("mode") || !(*it)["mode"].is_string()) {
      return Status::InvalidArgument(where + " must be an object with a string 'mode'");
    }
    c.quantization = (*it)["mode"].get<std::string>();
    if (c.quantization != "dynamic_int8" && c.quantization != "static_int8") {
      return Status::InvalidArgument(where + ": mode '" + c.quantization +
                                     "' is not one of dynamic_int8, static_int8");
    }
    auto read_range = [&](const nlohmann::json& r, const std::string& name,
                          BertConfig::Range* out) -> Status {
      if (!r.is_array() || r.size() != 2 || !r[0].is_number() || !r[1].is_number() ||
          !(r[0].get<double>() <= 0.0) || !(r[1].get<double>() >= 0.0) ||
          !(r[1].get<double>() > r[0].get<double>())) {
        return Status::InvalidArgument(where + ": range " + name +
                                       " must be [lo, hi] with lo <= 0 <= hi, lo < hi; got " +
                                       r.dump());
      }
      out->lo = r[0].get<float>();
      out->hi = r[1].get<float>();
      return Status::Ok();
    };
    if (const auto bits = it->find("activation_bits"); bits != it->end()) {
      if (!bits->is_number_integer() || (bits->get<int>() != 7 && bits->get<int>() != 8)) {
        return Status::InvalidArgument(where + ": activation_bits must be 7 or 8; got " +
                                       bits->dump());
      }
      c.activation_bits = bits->get<int>();
    }
    if (const auto ranges = it->find("activation_ranges"); ranges != it->end()) {
      if (!ranges->is_object()) {
        return Status::InvalidArgument(where + ": 'activation_ranges' must be an object");
      }
      for (const auto& [name, value] : ranges->items()) {
        if (!value.is_object() || !value.contains("input") || !value.contains("output")) {
          return Status::InvalidArgument(where + ": activation range '" + name +
                                         "' needs 'input' and 'output'");
        }
        BertConfig::LinearRanges lr;
        NLPFLOW_RETURN_IF_ERROR(read_range(value["input"], name + ".input", &lr.input));
        NLPFLOW_RETURN_IF_ERROR(read_range(value["output"], name + ".output", &lr.output));
        if (value.contains("rows")) {
          NLPFLOW_RETURN_IF_ERROR(read_range(value["rows"], name + ".rows", &lr.rows));
          lr.has_rows = true;
        }
        c.activation_ranges[name] = lr;
      }
    }
    if (c.quantization == "static_int8") {
      for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        for (const char* linear : {"qkv", "attention_out", "intermediate", "output"}) {
          const std::string name = std::to_string(l) + "." + linear;
          if (!c.activation_ranges.contains(name)) {
            return Status::InvalidArgument(where + ": static_int8 has no activation range for '" +
                                           name + "'");
          }
        }
      }
    }
  }
  return c;
}

Result<BertConfig> LoadBertConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  return ParseBertConfig(text.str(), path);
}

}  // namespace nlpflow
