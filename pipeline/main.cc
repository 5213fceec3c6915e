// nlpflow: the command line.
//
//   nlpflow run --config FILE [--set key=value ...]      the serve graph, until SIGINT/SIGTERM
//   nlpflow demo --config FILE [--set ...]               serve graph on the embedded broker + sample texts
//   nlpflow embed --config FILE [--set ...] < in > out   offline: one JSON result per input line
//   nlpflow validate-config FILE [--set ...]             prints the resolved config
//   nlpflow config-reference                             docs/config.md: every key
//   nlpflow tokenize --tokenizer PATH < in > out         ids and offsets per line (tokenize_command.h)
//   nlpflow distill|prune|quantize|eval --config FILE ... offline compression (compress_commands.h)
//   nlpflow finetune --config FILE --train F --eval F --out DIR   a classifier (finetune_command.h)
//   nlpflow --version                                    version, commit, libraries, CPU
//
// Logs go to stderr (logging.format text or json, pipeline/logging.h), from
// the first line on: errors before the config is loaded go through the same
// logger. stdout carries only a command's output. Exit codes, the same in
// every subcommand:
//   0  success
//   1  a failure at run time: a model or tokenizer folder that is missing or
//      broken, a broker that does not answer, a failed delivery, bad input
//   2  the command line or the config is wrong as written: an unknown flag or
//      a missing one, a config that does not parse or validate (a key given
//      twice, an unknown librdkafka property, a value out of range); refused
//      before any work starts
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <iostream>

#include "connectors/kafka/property_check.h"
#include "pipeline/build_info.h"
#include "pipeline/compress_commands.h"
#include "pipeline/config.h"
#include "pipeline/demo_command.h"
#include "pipeline/embed_command.h"
#include "pipeline/finetune_command.h"
#include "pipeline/logging.h"
#include "pipeline/model_stack.h"
#include "pipeline/progress_bar.h"
#include "pipeline/serve_command.h"
#include "pipeline/tokenize_command.h"

namespace {

using nlpflow::Config;

// The librdkafka properties of the config (kafka.properties, kafka.consumer,
// kafka.producer and what security.* sets), each set on a scratch librdkafka
// configuration: a misspelt name or a bad value is refused at start-up.
nlpflow::Status CheckKafkaProperties(const Config& config) {
  NLPFLOW_RETURN_IF_ERROR(
      nlpflow::CheckLibrdkafkaProperties(config.kafka.properties, "kafka.properties"));
  NLPFLOW_RETURN_IF_ERROR(
      nlpflow::CheckLibrdkafkaProperties(config.kafka.consumer, "kafka.consumer"));
  NLPFLOW_RETURN_IF_ERROR(
      nlpflow::CheckLibrdkafkaProperties(config.kafka.producer, "kafka.producer"));
  std::map<std::string, std::string> security;
  for (const auto& [k, v] : nlpflow::SecurityProperties(config)) security[k] = v;
  return nlpflow::CheckLibrdkafkaProperties(security, "security (as librdkafka property)");
}

// Loads and validates the config; on failure logs one line and exits 2.
Config LoadOrExit(const std::string& path, const std::vector<std::string>& overrides,
                  bool uses_kafka) {
  nlpflow::SetUpLogging({"info", nlpflow::PeekLogFormat(path, overrides)});
  auto config = nlpflow::LoadConfig(path, overrides);
  if (!config.ok()) {
    spdlog::error("{}", config.status().message());
    std::exit(2);
  }
  if (uses_kafka) {
    if (auto s = CheckKafkaProperties(*config); !s.ok()) {
      spdlog::error("{}: {}", path, s.message());
      std::exit(2);
    }
  }
  return std::move(config).value();
}

}  // namespace

int main(int argc, char** argv) {
  nlpflow::SetUpLogging({});  // stderr, text, until the config says otherwise
  CLI::App app{"nlpflow: NLP models on Kafka streams.\n"
               "Exit codes: 0 success, 1 failure at run time, 2 bad command line or config."};
  app.option_defaults()->always_capture_default();  // --help shows each default
  app.set_version_flag("--version", [] { return nlpflow::VersionText(nlpflow::GetBuildInfo()); },
                       "print the version, the commit, the libraries and the CPU features");
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
  // "embed" runs whatever the model is (embedding, classifier, token tagger);
  // "infer" is the same command under the general name.
  CLI::App* embed = app.add_subcommand(
      "embed", "run the model on stdin (one text or JSON object per line) to JSONL on stdout");
  embed->alias("infer");
  add_config(embed, false);
  std::string progress = "auto";
  embed->add_option("--progress", progress,
                    "auto: a progress line on stderr when it is a terminal; always; never")
      ->check(CLI::IsMember({"auto", "always", "never"}));
  CLI::App* validate = app.add_subcommand(
      "validate-config", "check the config (and its librdkafka properties); print it resolved");
  add_config(validate, true);
  CLI::App* reference = app.add_subcommand(
      "config-reference", "print every config key with its default, unit and effect (Markdown)");
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
  if (*reference) {
    std::cout << nlpflow::ConfigReference();
    return 0;
  }

  const bool uses_kafka = *run || *demo || *validate;
  const Config config = LoadOrExit(config_path, overrides, uses_kafka);
  nlpflow::SetUpLogging({config.logging.level, config.logging.format});

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
    spdlog::error("{}", stack.status().message());
    return 1;
  }
  std::ios::sync_with_stdio(false);
  // std::cerr flushes std::cout before each write; a warning written from a
  // graph worker (LibTorch writes its own to std::cerr) would then touch
  // std::cout's buffer while the sink writes it. EmbedStream unties std::cin.
  std::cerr.tie(nullptr);
  const bool draw = progress == "always" ||
                    (progress == "auto" && nlpflow::ProgressBar::IsTerminal(STDERR_FILENO));
  nlpflow::ProgressBar bar(stderr, draw, nlpflow::ProgressBar::RegularFileSize(STDIN_FILENO));
  auto stats = nlpflow::EmbedStream(config, *stack, std::cin, std::cout,
                                    [&bar](int64_t lines, int64_t bytes) { bar.Update(lines, bytes); });
  bar.Finish();
  if (!stats.ok()) {
    spdlog::error("{}", stats.status().message());
    return 1;
  }
  spdlog::info("embedded {} lines, {} dead letters", stats->records, stats->dead_letters);
  return 0;
}
