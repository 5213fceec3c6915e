#include "nodes/compress/student_bert.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "nodes/compress/safetensors_writer.h"
#include "nodes/infer/safetensors.h"
#include "nodes/infer/tensor_reader.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;

// Files of a sentence-transformers model folder other than the weights and
// config.json: the tokenizer's, then the pooling/normalize modules.
const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json", "vocab.txt",
                                       "special_tokens_map.json"};
const char* const kSentenceTransformersFiles[] = {
    "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json",
    "1_Pooling/config.json"};

}  // namespace

const char* LinearSiteName(LinearSite site) {
  switch (site) {
    case LinearSite::kQkv:
      return "qkv";
    case LinearSite::kAttentionOut:
      return "attention_out";
    case LinearSite::kIntermediate:
      return "intermediate";
    case LinearSite::kOutput:
      return "output";
  }
  return "?";
}

Result<StudentBert> StudentBert::Load(const std::string& dir) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) return Status::NotFound("model folder '" + dir + "' does not exist");
  NLPFLOW_ASSIGN_OR_RETURN(BertConfig config, LoadBertConfig((d / "config.json").string()));
  if (config.model_type != "bert") {
    // The compression commands train and write BERT's layout only; the other
    // families run in nodes/infer but are not distilled, pruned or quantized.
    return Status::InvalidArgument((d / "config.json").string() + ": model_type '" +
                                   config.model_type +
                                   "' cannot be compressed; supported: bert");
  }
  NLPFLOW_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                           SafetensorsFile::Open((d / "model.safetensors").string()));
  const std::string prefix =
      file->Find("bert.embeddings.word_embeddings.weight") != nullptr ? "bert." : "";
  StudentBert s;
  s.config_ = config;
  const int64_t h = config.hidden_size;
  try {
    auto get = [&](const std::string& name, std::vector<int64_t> shape) {
      return ReadFloatTensor(*file, prefix + name, shape);
    };
    NLPFLOW_ASSIGN_OR_RETURN(s.word_embeddings_,
                             get("embeddings.word_embeddings.weight", {config.vocab_size, h}));
    NLPFLOW_ASSIGN_OR_RETURN(
        s.position_embeddings_,
        get("embeddings.position_embeddings.weight", {config.max_position_embeddings, h}));
    NLPFLOW_ASSIGN_OR_RETURN(
        s.token_type_embeddings_,
        get("embeddings.token_type_embeddings.weight", {config.type_vocab_size, h}));
    NLPFLOW_ASSIGN_OR_RETURN(s.embedding_norm_weight_, get("embeddings.LayerNorm.weight", {h}));
    NLPFLOW_ASSIGN_OR_RETURN(s.embedding_norm_bias_, get("embeddings.LayerNorm.bias", {h}));
    for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
      const std::string p = "encoder.layer." + std::to_string(i) + ".";
      StudentLayer l;
      l.heads = config.attention_heads_of(i);
      const int64_t a = l.heads * config.head_dim();
      const int64_t f = config.intermediate_size_of(i);
      auto linear = [&](const std::string& name, int64_t out, int64_t in,
                        StudentLinear* dst) -> Status {
        NLPFLOW_ASSIGN_OR_RETURN(dst->weight, get(p + name + ".weight", {out, in}));
        NLPFLOW_ASSIGN_OR_RETURN(dst->bias, get(p + name + ".bias", {out}));
        return Status::Ok();
      };
      NLPFLOW_RETURN_IF_ERROR(linear("attention.self.query", a, h, &l.query));
      NLPFLOW_RETURN_IF_ERROR(linear("attention.self.key", a, h, &l.key));
      NLPFLOW_RETURN_IF_ERROR(linear("attention.self.value", a, h, &l.value));
      NLPFLOW_RETURN_IF_ERROR(linear("attention.output.dense", h, a, &l.attention_out));
      NLPFLOW_RETURN_IF_ERROR(linear("intermediate.dense", f, h, &l.intermediate));
      NLPFLOW_RETURN_IF_ERROR(linear("output.dense", h, f, &l.output));
      NLPFLOW_ASSIGN_OR_RETURN(l.attention_norm_weight,
                               get(p + "attention.output.LayerNorm.weight", {h}));
      NLPFLOW_ASSIGN_OR_RETURN(l.attention_norm_bias,
                               get(p + "attention.output.LayerNorm.bias", {h}));
      NLPFLOW_ASSIGN_OR_RETURN(l.output_norm_weight, get(p + "output.LayerNorm.weight", {h}));
      NLPFLOW_ASSIGN_OR_RETURN(l.output_norm_bias, get(p + "output.LayerNorm.bias", {h}));
      s.layers_.push_back(std::move(l));
    }
  } catch (const std::exception& e) {
    return Status::Internal("loading " + dir + ": LibTorch: " + e.what());
  }
  return s;
}

at::Tensor StudentBert::Forward(const at::Tensor& ids, const at::Tensor& mask,
                                const LinearObserver& observer) const {
  return ForwardImpl(ids, mask, observer, nullptr);
}

at::Tensor StudentBert::Forward(const at::Tensor& ids, const at::Tensor& mask,
                                at::Tensor* tokens) const {
  return ForwardImpl(ids, mask, nullptr, tokens);
}

at::Tensor StudentBert::ForwardImpl(const at::Tensor& ids, const at::Tensor& mask,
                                    const LinearObserver& observer, at::Tensor* tokens) const {
  const int64_t batch = ids.size(0), seq = ids.size(1), h = config_.hidden_size;
  const int64_t head_dim = config_.head_dim();
  const at::Tensor valid = mask.reshape({-1}).nonzero().squeeze(1);  // packed -> padded index
  const at::Tensor packed_ids = ids.reshape({-1}).index_select(0, valid);
  const at::Tensor positions =
      at::arange(seq, at::kLong).unsqueeze(0).expand({batch, seq}).reshape({-1}).index_select(
          0, valid);
  // Same order of additions as the runtime (and Hugging Face).
  at::Tensor hidden = word_embeddings_.index_select(0, packed_ids);
  hidden = hidden + token_type_embeddings_.index_select(0, at::zeros_like(packed_ids));
  hidden = hidden + position_embeddings_.index_select(0, positions);
  hidden = at::layer_norm(hidden, {h}, embedding_norm_weight_, embedding_norm_bias_,
                          config_.layer_norm_eps);
  // 0 for real keys, a large negative number for padding: exp() of it is 0.
  const at::Tensor key_bias =
      (1 - mask.to(at::kFloat)).mul(-1e9).view({batch, 1, 1, seq});

  auto apply = [&](const at::Tensor& x, const StudentLinear& l, int64_t layer,
                   LinearSite site) {
    if (!observer) return at::linear(x, l.weight, l.bias);
    const at::Tensor y = at::linear(x, l.weight);
    observer(layer, site, x, y);
    return y + l.bias;
  };
  auto to_padded = [&](const at::Tensor& packed) {
    return at::zeros({batch * seq, packed.size(1)}, packed.options()).index_copy(0, valid,
                                                                              packed);
  };
  auto activation = [&](const at::Tensor& x) {
    if (config_.hidden_act == "gelu") return at::gelu(x);
    if (config_.hidden_act == "relu") return at::relu(x);
    return at::gelu(x, "tanh");
  };

  for (size_t i = 0; i < layers_.size(); ++i) {
    const StudentLayer& l = layers_[i];
    const int64_t a = l.heads * head_dim;
    at::Tensor q, k, v;
    if (observer) {
      // One fused observation of query, key and value, as the runtime's qkv.
      const at::Tensor w = at::cat({l.query.weight, l.key.weight, l.value.weight}, 0);
      const at::Tensor b = at::cat({l.query.bias, l.key.bias, l.value.bias}, 0);
      const at::Tensor y = at::linear(hidden, w);
      observer(static_cast<int64_t>(i), LinearSite::kQkv, hidden, y);
      const at::Tensor qkv = y + b;
      q = qkv.narrow(1, 0, a);
      k = qkv.narrow(1, a, a);
      v = qkv.narrow(1, 2 * a, a);
    } else {
      q = at::linear(hidden, l.query.weight, l.query.bias);
      k = at::linear(hidden, l.key.weight, l.key.bias);
      v = at::linear(hidden, l.value.weight, l.value.bias);
    }
    auto heads = [&](const at::Tensor& x) {  // [tokens, a] -> [batch, heads, seq, head_dim]
      return to_padded(x).view({batch, seq, l.heads, head_dim}).transpose(1, 2);
    };
    at::Tensor scores = at::matmul(heads(q), heads(k).transpose(-1, -2));
    scores = scores / std::sqrt(static_cast<double>(head_dim)) + key_bias;
    const at::Tensor context = at::matmul(at::softmax(scores, -1), heads(v))
                                   .transpose(1, 2)
                                   .reshape({batch * seq, a})
                                   .index_select(0, valid);
    const int64_t layer = static_cast<int64_t>(i);
    hidden = at::layer_norm(apply(context, l.attention_out, layer, LinearSite::kAttentionOut) +
                                hidden,
                            {h}, l.attention_norm_weight, l.attention_norm_bias,
                            config_.layer_norm_eps);
    const at::Tensor inner =
        activation(apply(hidden, l.intermediate, layer, LinearSite::kIntermediate));
    hidden = at::layer_norm(apply(inner, l.output, layer, LinearSite::kOutput) + hidden, {h},
                            l.output_norm_weight, l.output_norm_bias, config_.layer_norm_eps);
  }
  if (tokens != nullptr) *tokens = hidden;
  const at::Tensor lengths = mask.sum(1, /*keepdim=*/true).to(at::kFloat);  // [batch, 1]
  const at::Tensor pooled = to_padded(hidden).view({batch, seq, h}).sum(1) / lengths;
  return pooled / pooled.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
}

std::vector<at::Tensor> StudentBert::TrainableParameters() const {
  std::vector<at::Tensor> p = {position_embeddings_, token_type_embeddings_,
                               embedding_norm_weight_, embedding_norm_bias_};
  for (const StudentLayer& l : layers_) {
    for (const StudentLinear* x :
         {&l.query, &l.key, &l.value, &l.attention_out, &l.intermediate, &l.output}) {
      p.push_back(x->weight);
      p.push_back(x->bias);
    }
    for (const at::Tensor* t : {&l.attention_norm_weight, &l.attention_norm_bias,
                                &l.output_norm_weight, &l.output_norm_bias}) {
      p.push_back(*t);
    }
  }
  return p;
}

void StudentBert::SetRequiresGrad(bool requires_grad) {
  for (at::Tensor& t : TrainableParameters()) t.set_requires_grad(requires_grad);
}

Status StudentBert::KeepLayers(const std::vector<int64_t>& keep) {
  std::vector<StudentLayer> kept;
  std::vector<int64_t> ffn, heads;
  for (int64_t i : keep) {
    if (i < 0 || i >= static_cast<int64_t>(layers_.size())) {
      return Status::InvalidArgument("layer " + std::to_string(i) + " is not in [0, " +
                                     std::to_string(layers_.size()) + ")");
    }
    kept.push_back(layers_[i]);
    ffn.push_back(config_.intermediate_size_of(i));
    heads.push_back(config_.attention_heads_of(i));
  }
  layers_ = std::move(kept);
  config_.num_hidden_layers = static_cast<int64_t>(layers_.size());
  if (!config_.layer_intermediate_sizes.empty()) config_.layer_intermediate_sizes = ffn;
  if (!config_.layer_attention_heads.empty()) config_.layer_attention_heads = heads;
  return Status::Ok();
}

void StudentBert::KeepFfnNeurons(int64_t layer, const at::Tensor& keep) {
  StudentLayer& l = layers_[layer];
  const at::Tensor idx = keep.to(at::kLong);
  l.intermediate.weight = l.intermediate.weight.index_select(0, idx).contiguous();
  l.intermediate.bias = l.intermediate.bias.index_select(0, idx).contiguous();
  l.output.weight = l.output.weight.index_select(1, idx).contiguous();
  if (config_.layer_intermediate_sizes.empty()) {
    config_.layer_intermediate_sizes.assign(layers_.size(), config_.intermediate_size);
  }
  config_.layer_intermediate_sizes[layer] = idx.numel();
}

void StudentBert::KeepHeads(int64_t layer, const std::vector<int64_t>& keep) {
  StudentLayer& l = layers_[layer];
  const int64_t d = config_.head_dim();
  std::vector<int64_t> rows;
  for (int64_t h : keep) {
    for (int64_t j = 0; j < d; ++j) rows.push_back(h * d + j);
  }
  const at::Tensor idx = at::tensor(rows, at::kLong);
  for (StudentLinear* x : {&l.query, &l.key, &l.value}) {
    x->weight = x->weight.index_select(0, idx).contiguous();
    x->bias = x->bias.index_select(0, idx).contiguous();
  }
  l.attention_out.weight = l.attention_out.weight.index_select(1, idx).contiguous();
  l.heads = static_cast<int64_t>(keep.size());
  if (config_.layer_attention_heads.empty()) {
    config_.layer_attention_heads.assign(layers_.size(), config_.num_attention_heads);
  }
  config_.layer_attention_heads[layer] = l.heads;
}

std::pair<at::Tensor, at::Tensor> StudentBert::QkvInputNorm(int64_t layer) const {
  if (layer == 0) return {embedding_norm_weight_, embedding_norm_bias_};
  return {layers_[layer - 1].output_norm_weight, layers_[layer - 1].output_norm_bias};
}

Status StudentBert::Save(const std::string& dir, const std::string& source_dir,
                         const std::string& extra_config) const {
  return Save(dir, source_dir, extra_config, SaveLayout());
}

Status StudentBert::Save(const std::string& dir, const std::string& source_dir,
                         const std::string& extra_config, const SaveLayout& layout) const {
  const fs::path out(dir);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return Status::Internal("cannot create " + dir + ": " + ec.message());

  std::vector<at::Tensor> keep_alive;
  std::vector<TensorToWrite> tensors;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    at::Tensor c = t.detach().contiguous();
    keep_alive.push_back(c);
    tensors.push_back({name, c.sizes().vec(), c.data_ptr<float>()});
  };
  auto add_encoder = [&](const std::string& name, const at::Tensor& t) {
    add(layout.prefix + name, t);
  };
  add_encoder("embeddings.word_embeddings.weight", word_embeddings_);
  add_encoder("embeddings.position_embeddings.weight", position_embeddings_);
  add_encoder("embeddings.token_type_embeddings.weight", token_type_embeddings_);
  add_encoder("embeddings.LayerNorm.weight", embedding_norm_weight_);
  add_encoder("embeddings.LayerNorm.bias", embedding_norm_bias_);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const StudentLayer& l = layers_[i];
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    auto linear = [&](const std::string& name, const StudentLinear& x) {
      add_encoder(p + name + ".weight", x.weight);
      add_encoder(p + name + ".bias", x.bias);
    };
    linear("attention.self.query", l.query);
    linear("attention.self.key", l.key);
    linear("attention.self.value", l.value);
    linear("attention.output.dense", l.attention_out);
    linear("intermediate.dense", l.intermediate);
    linear("output.dense", l.output);
    add_encoder(p + "attention.output.LayerNorm.weight", l.attention_norm_weight);
    add_encoder(p + "attention.output.LayerNorm.bias", l.attention_norm_bias);
    add_encoder(p + "output.LayerNorm.weight", l.output_norm_weight);
    add_encoder(p + "output.LayerNorm.bias", l.output_norm_bias);
  }
  for (const auto& [name, t] : layout.extra_tensors) add(name, t);
  NLPFLOW_RETURN_IF_ERROR(WriteSafetensors((out / "model.safetensors").string(), tensors,
                                           {{"format", "pt"}}));

  const fs::path src(source_dir);
  nlohmann::json config;
  {
    std::ifstream in(src / "config.json");
    if (!in) return Status::NotFound((src / "config.json").string() + ": cannot open");
    try {
      config = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      return Status::InvalidArgument((src / "config.json").string() + ": " + e.what());
    }
  }
  config["num_hidden_layers"] = layers_.size();
  // Only the encoder is written (no pooler, no classifier head): whatever the
  // source was, the folder is an embedding model (model.task auto reads this).
  config["architectures"] = nlohmann::json::array({"BertModel"});
  config.erase("nlpflow_intermediate_sizes");
  config.erase("nlpflow_attention_heads");
  config.erase("nlpflow_quantization");
  std::vector<int64_t> ffn, heads;
  for (const StudentLayer& l : layers_) {
    ffn.push_back(l.intermediate.weight.size(0));
    heads.push_back(l.heads);
  }
  // Uniform sizes stay plain Hugging Face keys; per-layer sizes need ours.
  if (std::adjacent_find(ffn.begin(), ffn.end(), std::not_equal_to<>()) == ffn.end()) {
    config["intermediate_size"] = ffn.empty() ? config_.intermediate_size : ffn[0];
  } else {
    config["intermediate_size"] = *std::max_element(ffn.begin(), ffn.end());
    config["nlpflow_intermediate_sizes"] = ffn;
  }
  bool all_heads = true;
  for (int64_t n : heads) all_heads = all_heads && n == config_.num_attention_heads;
  if (!all_heads) config["nlpflow_attention_heads"] = heads;
  try {
    config.update(nlohmann::json::parse(extra_config));
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("extra config: ") + e.what());
  }
  {
    std::ofstream o(out / "config.json", std::ios::trunc);
    o << config.dump(2) << "\n";
    if (!o) return Status::Internal("cannot write " + (out / "config.json").string());
  }
  std::vector<const char*> copied(std::begin(kTokenizerFiles), std::end(kTokenizerFiles));
  if (layout.sentence_transformers_files) {
    copied.insert(copied.end(), std::begin(kSentenceTransformersFiles),
                  std::end(kSentenceTransformersFiles));
  }
  for (const char* name : copied) {
    if (!fs::exists(src / name)) continue;
    if (fs::absolute(src / name) == fs::absolute(out / name)) continue;
    fs::create_directories((out / name).parent_path(), ec);
    fs::copy_file(src / name, out / name, fs::copy_options::overwrite_existing, ec);
    if (ec) return Status::Internal("copying " + (src / name).string() + ": " + ec.message());
  }
  return Status::Ok();
}

std::pair<at::Tensor, at::Tensor> PadIds(const std::vector<const std::vector<int32_t>*>& rows) {
  size_t longest = 1;
  for (const auto* r : rows) longest = std::max(longest, r->size());
  const int64_t n = static_cast<int64_t>(rows.size()), s = static_cast<int64_t>(longest);
  at::Tensor ids = at::zeros({n, s}, at::kLong);
  at::Tensor mask = at::zeros({n, s}, at::kLong);
  int64_t* pi = ids.data_ptr<int64_t>();
  int64_t* pm = mask.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    for (size_t t = 0; t < rows[i]->size(); ++t) {
      pi[i * s + t] = (*rows[i])[t];
      pm[i * s + t] = 1;
    }
  }
  return {ids, mask};
}

}  // namespace nlpflow
