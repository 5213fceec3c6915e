#include "nodes/infer/encoder_family.h"

namespace nlpflow {
namespace {

// BERT's names, which RoBERTa, XLM-RoBERTa and ELECTRA keep for the encoder.
EncoderFamily BertLike(std::string model_type, std::string architecture_prefix,
                       std::string encoder_prefix) {
  EncoderFamily f;
  f.model_type = std::move(model_type);
  f.architecture_prefix = std::move(architecture_prefix);
  f.encoder_prefix = std::move(encoder_prefix);
  f.word_embeddings = "embeddings.word_embeddings";
  f.position_embeddings = "embeddings.position_embeddings";
  f.token_type_embeddings = "embeddings.token_type_embeddings";
  f.embedding_norm = "embeddings.LayerNorm";
  f.layer_prefix = "encoder.layer.";
  f.query = "attention.self.query";
  f.key = "attention.self.key";
  f.value = "attention.self.value";
  f.attention_out = "attention.output.dense";
  f.attention_norm = "attention.output.LayerNorm";
  f.intermediate = "intermediate.dense";
  f.output = "output.dense";
  f.output_norm = "output.LayerNorm";
  f.token_out = "classifier";
  // RobertaClassificationHead, ElectraClassificationHead: dense, activation,
  // out_proj on the first token.
  f.sequence_pre = "classifier.dense";
  f.sequence_pre_act = "tanh";
  f.sequence_out = "classifier.out_proj";
  return f;
}

std::vector<EncoderFamily> MakeFamilies() {
  std::vector<EncoderFamily> families;

  EncoderFamily bert = BertLike("bert", "Bert", "bert.");
  bert.sequence_pre = "bert.pooler.dense";  // BertPooler: tanh(dense([CLS]))
  bert.sequence_out = "classifier";
  families.push_back(bert);

  EncoderFamily distil;
  distil.model_type = "distilbert";
  distil.architecture_prefix = "DistilBert";
  distil.encoder_prefix = "distilbert.";
  distil.word_embeddings = "embeddings.word_embeddings";
  distil.position_embeddings = "embeddings.position_embeddings";
  distil.embedding_norm = "embeddings.LayerNorm";
  distil.layer_prefix = "transformer.layer.";
  distil.query = "attention.q_lin";
  distil.key = "attention.k_lin";
  distil.value = "attention.v_lin";
  distil.attention_out = "attention.out_lin";
  distil.attention_norm = "sa_layer_norm";
  distil.intermediate = "ffn.lin1";
  distil.output = "ffn.lin2";
  distil.output_norm = "output_layer_norm";
  distil.sequence_pre = "pre_classifier";  // relu(pre_classifier([CLS]))
  distil.sequence_pre_act = "relu";
  distil.sequence_out = "classifier";
  distil.token_out = "classifier";
  families.push_back(distil);

  EncoderFamily electra = BertLike("electra", "Electra", "electra.");
  electra.embedding_project = "embeddings_project";
  electra.sequence_pre_act = "gelu";
  families.push_back(electra);

  EncoderFamily mpnet;
  mpnet.model_type = "mpnet";
  mpnet.architecture_prefix = "MPNet";
  mpnet.encoder_prefix = "mpnet.";
  mpnet.word_embeddings = "embeddings.word_embeddings";
  mpnet.position_embeddings = "embeddings.position_embeddings";
  mpnet.embedding_norm = "embeddings.LayerNorm";
  mpnet.layer_prefix = "encoder.layer.";
  mpnet.query = "attention.attn.q";
  mpnet.key = "attention.attn.k";
  mpnet.value = "attention.attn.v";
  mpnet.attention_out = "attention.attn.o";
  mpnet.attention_norm = "attention.LayerNorm";
  mpnet.intermediate = "intermediate.dense";
  mpnet.output = "output.dense";
  mpnet.output_norm = "output.LayerNorm";
  mpnet.relative_attention_bias = "encoder.relative_attention_bias";
  mpnet.sequence_pre = "classifier.dense";  // MPNetClassificationHead
  mpnet.sequence_pre_act = "tanh";
  mpnet.sequence_out = "classifier.out_proj";
  mpnet.token_out = "classifier";
  families.push_back(mpnet);

  families.push_back(BertLike("roberta", "Roberta", "roberta."));
  // XLMRobertaFor* keep the encoder under "roberta." too.
  families.push_back(BertLike("xlm-roberta", "XLMRoberta", "roberta."));
  return families;
}

const std::vector<EncoderFamily>& Families() {
  static const std::vector<EncoderFamily> families = MakeFamilies();
  return families;
}

}  // namespace

const EncoderFamily* FindEncoderFamily(std::string_view model_type) {
  for (const EncoderFamily& f : Families()) {
    if (f.model_type == model_type) return &f;
  }
  return nullptr;
}

std::string SupportedModelTypes() {
  std::string out;
  for (const EncoderFamily& f : Families()) out += (out.empty() ? "" : ", ") + f.model_type;
  return out;
}

}  // namespace nlpflow
