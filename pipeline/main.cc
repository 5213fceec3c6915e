// nlpflow: the command line.
//
//   nlpflow run --config FILE [--set key=value ...]      the serve graph, until SIGINT/SIGTERM
//   nlpflow demo --config FILE [--set ...]               serve graph on the embedded broker + sample texts
//   nlpflow embed --config FILE [--set ...] < in > out   offline: one JSON result per input line
//   nlpflow validate-config FILE [--set ...]             prints the resolved config
//   nlpflow tokenize --tokenizer PATH < in > out         ids and offsets per line (tokenize_command.h)
//   nlpflow distill|prune|quantize|eval --config FILE ... offline compression (compress_commands.h)
//   nlpflow finetune --config FILE --train F --eval F --out DIR   a classifier (finetune_command.h)
//
// Logs go to stderr; stdout carries only a command's output. Exit codes:
// 0 success, 1 runtime failure, 2 bad command line or config.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "pipeline/compress_commands.h"
#include "pipeline/config.h"
#include "pipeline/demo_command.h"
#include "pipeline/embed_command.h"
#include "pipeline/finetune_command.h"
#include "pipeline/model_stack.h"
#include "pipeline/serve_command.h"
#include "pipeline/tokenize_command.h"

namespace {

using nlpflow::Config;

void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("nlpflow");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

// Loads and validates the config; on failure prints one line and exits 2.
Config LoadOrExit(const std::string& path, const std::vector<std::string>& overrides) {
  auto config = nlpflow::LoadConfig(path, overrides);
  if (!config.ok()) {
    std::cerr << "nlpflow: " << config.status().message() << "\n";
    std::exit(2);
  }
  return std::move(config).value();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nlpflow: NLP models on Kafka streams"};
  app.require_subcommand(1);
  std::string config_path;
  std::vector<std::string> overrides;

  auto add_config = [&](CLI::App* cmd, bool positional) {
    if (positional) {
      cmd->add_option("config", config_path, "pipeline config (YAML)")->required();
    } else {
      cmd->add_option("--config,-c", config_path, "pipeline config (YAML)")->required();
    }
    cmd->add_option("--set", overrides, "override a config key: --set batch.max_batch_size=16")
        ->allow_extra_args(false);
  };
  CLI::App* run = app.add_subcommand("run", "run the serve graph until SIGINT/SIGTERM");
  add_config(run, false);
  CLI::App* demo = app.add_subcommand(
      "demo", "serve graph on the embedded broker with the sample texts; prints results");
  add_config(demo, false);
  std::string samples_path = "configs/samples/sentences.txt";
  demo->add_option("--samples", samples_path, "one text per line");
  CLI::App* embed = app.add_subcommand("embed", "embed stdin (one text per line) to JSONL on stdout");
  add_config(embed, false);
  CLI::App* validate = app.add_subcommand("validate-config", "print the resolved config");
  add_config(validate, true);
  nlpflow::TokenizeCommandOptions tokenize_options;
  CLI::App* tokenize = nlpflow::AddTokenizeCommand(app, &tokenize_options);
  nlpflow::CompressCommands compress;
  nlpflow::AddCompressCommands(app, &compress);
  for (CLI::App* cmd : {compress.distill, compress.prune, compress.quantize, compress.eval}) {
    add_config(cmd, false);
  }
  nlpflow::FinetuneCommandOptions finetune_options;
  CLI::App* finetune = nlpflow::AddFinetuneCommand(app, &finetune_options);
  add_config(finetune, false);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (*tokenize) return nlpflow::RunTokenizeCommand(tokenize_options);  // needs no config

  const Config config = LoadOrExit(config_path, overrides);
  SetUpLogging(config.logging.level);

  if (*validate) {
    std::cout << nlpflow::DumpConfig(config);
    return 0;
  }
  if (*run) return nlpflow::RunServe(config);
  if (*demo) return nlpflow::RunDemo(config, samples_path);
  if (*finetune) return nlpflow::RunFinetuneCommand(finetune_options, config);
  if (*compress.distill || *compress.prune || *compress.quantize || *compress.eval) {
    return nlpflow::RunCompressCommand(compress, config);
  }

  // embed
  auto stack = nlpflow::LoadModelStack(config);
  if (!stack.ok()) {
    std::cerr << "nlpflow: " << stack.status().message() << "\n";
    return 1;
  }
  std::ios::sync_with_stdio(false);
  auto stats = nlpflow::EmbedStream(config, *stack, std::cin, std::cout);
  if (!stats.ok()) {
    std::cerr << "nlpflow: " << stats.status().message() << "\n";
    return 1;
  }
  spdlog::info("embedded {} lines, {} dead letters", stats->records, stats->dead_letters);
  return 0;
}
