// The offline compression commands. Each loads the model named by the config
// (model.path: the teacher, or the model to prune or quantize), runs texts
// through the embedding graph's nodes (pipeline/offline_graph.h), and writes a
// model folder that `model.path` loads unchanged in the serve graph, plus a
// JSON summary on stdout.
//
//   nlpflow distill  --config C --texts F --out DIR [--layers 3] [--ffn N] [--epochs 1] ...
//   nlpflow prune    --config C --texts F --out DIR --method ffn|heads|l1 --amount 0.3 ...
//   nlpflow quantize --config C --out DIR --mode dynamic|static [--texts F] ...
//   nlpflow eval     --config C --variant DIR --train F --test F [--rate R]
//
// Bad input (missing teacher, empty corpus, a student larger than the
// teacher, ...) stops the command with one line on stderr and exit code 1
// (2 for a bad command line or config).
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace nlpflow {

struct Config;

struct CompressCommandOptions {
  std::string texts;  // distill, prune, quantize: corpus file (one text or JSON per line)
  std::string out;    // output model folder (distill, prune, quantize) or JSON (eval)
  int64_t max_texts = 0;          // 0: all
  int64_t calibration_texts = 256;
  // distill
  int layers = 3;
  int ffn = 0;
  int epochs = 1;
  int batch_size = 32;
  double learning_rate = 1e-4;
  double warmup_fraction = 0.1;
  std::string checkpoints;
  double token_loss_weight = 0;
  // prune
  std::string method = "ffn";
  double amount = 0.3;
  int recover_epochs = 0;
  // quantize
  std::string mode = "static";
  int activation_bits = 7;  // static (QuantizeOptions)
  double row_bound = 2;     // static (QuantizeOptions)
  // eval
  std::string variant;
  std::string train;
  std::string test;
  double rate_per_s = 0;
};

struct CompressCommands {
  CLI::App* distill = nullptr;
  CLI::App* prune = nullptr;
  CLI::App* quantize = nullptr;
  CLI::App* eval = nullptr;
  CompressCommandOptions options;
};

// Adds the four subcommands (each also needs --config/--set, which the
// caller adds to the returned apps).
void AddCompressCommands(CLI::App& app, CompressCommands* commands);

// Runs whichever of them was parsed; returns its exit code.
int RunCompressCommand(const CompressCommands& commands, const Config& config);

}  // namespace nlpflow
