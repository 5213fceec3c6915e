#include "nodes/infer/bert_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

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

  if (const auto it = j.find("model_type"); it != j.end() && it->is_string() &&
                                            it->get<std::string>() != "bert") {
    // RoBERTa, DistilBERT & co. differ in tensor names or position ids.
    return Status::InvalidArgument(path + ": model_type '" + it->get<std::string>() +
                                   "' is not supported; supported: bert");
  }
  if (const auto it = j.find("position_embedding_type");
      it != j.end() && it->is_string() && it->get<std::string>() != "absolute") {
    return Status::InvalidArgument(path + ": position_embedding_type '" +
                                   it->get<std::string>() +
                                   "' is not supported; supported: absolute");
  }

  BertConfig c;
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
  if (c.hidden_act != "gelu" && c.hidden_act != "gelu_new" &&
      c.hidden_act != "gelu_pytorch_tanh" && c.hidden_act != "relu") {
    return Status::InvalidArgument(path + ": hidden_act '" + c.hidden_act +
                                   "' is not supported; supported: gelu, gelu_new, "
                                   "gelu_pytorch_tanh, relu");
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
