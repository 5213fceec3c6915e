// Fine-tuning a sequence classifier from a BERT encoder (a sentence-
// embedding model such as all-MiniLM-L6-v2, or any BERT folder): the
// encoder (StudentBert, the distiller's trainable copy), Hugging Face's
// BertForSequenceClassification head on it (pooler: tanh(dense([CLS])),
// dropout, classifier Linear), cross-entropy on labelled texts, AdamW with
// linear warm-up then linear decay (the distiller's schedule).
//
// The result is a Hugging Face folder as save_pretrained writes it for
// BertForSequenceClassification: config.json (architectures, id2label,
// label2id, num_labels), model.safetensors under Hugging Face's names
// (bert.embeddings.*, bert.encoder.*, bert.pooler.*, classifier.*) and the
// encoder's tokenizer files. `transformers` loads it with the logits this
// trainer computes, and so does nodes/infer's BertClassifier.
//
// The pooler starts from the encoder's (when its folder has one, as
// all-MiniLM-L6-v2 has) and the classifier from N(0, initializer_range),
// bias 0, as transformers initializes it. The word embeddings stay frozen
// (as in distillation: 23% of MiniLM's weights, touched sparsely); every
// other weight trains.
//
// This header deliberately includes no LibTorch header.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodes/compress/distiller.h"  // TrainProgress, TrainReport

namespace nlpflow {

// One labelled text: its token ids (special tokens included, truncated) and
// its label id.
struct ClassifierExample {
  std::vector<int32_t> ids;
  int64_t label = 0;
};

struct ClassifierMetrics {
  int64_t texts = 0;
  double loss = 0;      // mean cross-entropy
  double accuracy = 0;
  // Mean over the labels of each label's F1 (0 for a label that is neither
  // predicted nor true, as scikit-learn's default).
  double macro_f1 = 0;
  // Per label id: F1 of that label against the rest.
  std::vector<double> label_f1;
};

struct FinetuneOptions {
  // BERT folder: config.json, model.safetensors (names with or without
  // "bert."), tokenizer files (copied to out_dir).
  std::string encoder_dir;
  // Written (created if needed); replaced if it holds a model.
  std::string out_dir;
  // Label names by id; at least 2.
  std::vector<std::string> labels;
  int epochs = 3;
  int batch_size = 16;
  // Peak learning rate, reached after the warm-up, then decayed linearly to 0.
  double learning_rate = 5e-5;
  double warmup_fraction = 0.1;
  // AdamW's decoupled weight decay (not applied to biases and LayerNorms).
  double weight_decay = 0.01;
  // Dropout on the pooled output while training (transformers' classifier
  // dropout; its default is hidden_dropout_prob, 0.1). The encoder runs
  // without dropout.
  double dropout = 0.1;
  uint64_t seed = 1;
  // LibTorch intra-op (and OpenBLAS) threads; process-wide.
  int threads = 1;
  // Called after every training step.
  std::function<void(const TrainProgress&)> progress;
  // Called after every epoch with its mean training loss and the eval
  // texts' metrics (texts 0 when there are none).
  std::function<void(int epoch, double train_loss, const ClassifierMetrics&)> epoch_done;
};


struct FinetuneReport {
  TrainReport train;
  // The eval texts after each epoch (empty when there are none).
  std::vector<ClassifierMetrics> epoch_eval;
  // The saved model's logits of the eval texts, row-major [eval, labels],
  // and its predicted label ids.
  std::vector<float> eval_logits;
  std::vector<int64_t> eval_predicted;
};

// Fine-tunes, evaluates on `eval` after each epoch, and saves the classifier
// to options.out_dir. INVALID_ARGUMENT with one line for fewer than 2
// labels, no training examples, a label id out of range, a training set of
// one class, an empty token list, or non-positive epochs / batch size /
// learning rate; the loader's errors (naming file and tensor) for a broken
// encoder folder; INTERNAL for LibTorch failures.
Result<FinetuneReport> FinetuneClassifier(const FinetuneOptions& options,
                                          const std::vector<ClassifierExample>& train,
                                          const std::vector<ClassifierExample>& eval);

}  // namespace nlpflow
