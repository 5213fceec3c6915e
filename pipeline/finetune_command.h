// `nlpflow finetune`: a sequence classifier fine-tuned from the config's
// model.path (a BERT encoder, e.g. all-MiniLM-L6-v2) on labelled JSON lines,
// written as a Hugging Face BertForSequenceClassification folder that
// model.path serves and transformers loads (nodes/compress/
// classifier_trainer.h).
//
//   nlpflow finetune -c CONFIG --train train.jsonl --eval eval.jsonl --out DIR
//                    [--epochs 3] [--batch-size 16] [--lr 5e-5] [--labels a,b,...]
//
// Texts are tokenized with the config's tokenizer (tokenizer.path, else
// model.path) truncated at tokenizer.max_length (0: as the serve graph, the
// model's sentence-transformers max_seq_length, else its position limit):
// serve the result with the same tokenizer.max_length. On a terminal, stderr
// shows a progress bar (step, loss, ETA); on a pipe only log lines. stdout
// gets one JSON summary (losses, eval accuracy and F1 per label).
//
// Exit codes: 2 for a bad command line, config or input file (one line
// naming the file and line: malformed JSON, unknown label, one class only,
// empty file); 1 when loading or training fails.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nodes/compress/distiller.h"  // TrainProgress

namespace CLI {
class App;
}  // namespace CLI

namespace nlpflow {

struct Config;

struct FinetuneCommandOptions {
  std::string train;  // JSON lines {"text", "label"}
  std::string eval;   // the same; metrics after every epoch
  std::string out;    // model folder to write
  std::vector<std::string> labels;  // names by id; empty: from --train
  int epochs = 3;
  int batch_size = 16;
  double learning_rate = 5e-5;
  double warmup_fraction = 0.1;
  double dropout = 0.1;
  int64_t max_texts = 0;  // per file; 0: all
  uint64_t seed = 1;
};

// Adds the subcommand (the caller adds --config/--set to it).
CLI::App* AddFinetuneCommand(CLI::App& app, FinetuneCommandOptions* options);

// Runs it; returns the exit code.
int RunFinetuneCommand(const FinetuneCommandOptions& options, const Config& config);

// The progress bar's text for `p`, `width` characters of bar:
// "[#####.....]  50% 10/20 epoch 1 loss 0.6931 eta 0m12s".
std::string FormatProgressBar(const TrainProgress& p, int width);

}  // namespace nlpflow
