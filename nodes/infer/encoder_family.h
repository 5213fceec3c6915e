// Encoder families: what tells BERT, DistilBERT, RoBERTa, XLM-RoBERTa, MPNet
// and ELECTRA apart, as data over one execution path (bert_encoder.cc).
//
// All of them are post-LayerNorm transformer encoders with the same layer:
// self-attention, residual, LayerNorm, FFN, residual, LayerNorm. They differ
// in the Hugging Face names of their tensors, in the embedding step
// (position ids, token types, an embedding projection) and, for MPNet, in a
// relative-position attention bias. The numbers (position offset, token types,
// buckets, activation) are read from config.json into BertConfig; this file
// holds the names.
//
// Left out: ALBERT (shared layers and factorized embeddings need a second
// layer loop and its own names: not done yet) and DistilBERT's
// sinusoidal_pos_embds (refused at config time).
//
// No LibTorch here.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nlpflow {

struct EncoderFamily {
  // config.json's model_type.
  std::string model_type;
  // The class-name prefix of its transformers task models
  // ("<prefix>ForSequenceClassification", "<prefix>ForTokenClassification").
  std::string architecture_prefix;
  // Where task models keep the encoder ("roberta." in
  // RobertaForSequenceClassification); base checkpoints have no prefix.
  std::string encoder_prefix;

  // Tensor names under the encoder prefix, without ".weight"/".bias".
  std::string word_embeddings, position_embeddings, token_type_embeddings, embedding_norm;
  // ELECTRA: the Linear from embedding_size to hidden_size (only present when
  // they differ). Empty for the others.
  std::string embedding_project;
  // Layer i's tensors are layer_prefix + i + "." + one of these.
  std::string layer_prefix;
  std::string query, key, value, attention_out, attention_norm, intermediate, output, output_norm;
  // MPNet: the [buckets, heads] table of the attention bias shared by all
  // layers. Empty for the others.
  std::string relative_attention_bias;

  // Sequence classification head on the first token: `sequence_pre` (a
  // hidden x hidden Linear, with its name as the checkpoint has it, prefix
  // included), the activation `sequence_pre_act` ("tanh", "relu" or
  // "gelu"), then the `sequence_out` Linear to the labels. Token
  // classification: the `token_out` Linear on every token.
  std::string sequence_pre, sequence_pre_act, sequence_out, token_out;
};

// nullptr when nlpflow does not support the type.
const EncoderFamily* FindEncoderFamily(std::string_view model_type);

// "bert, distilbert, electra, mpnet, roberta, xlm-roberta": for messages.
std::string SupportedModelTypes();

}  // namespace nlpflow
