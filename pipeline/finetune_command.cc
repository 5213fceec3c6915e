#include "pipeline/finetune_command.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "nodes/compress/classifier_trainer.h"
#include "nodes/infer/bert_config.h"
#include "nodes/tokenize/wordpiece_tokenizer.h"
#include "pipeline/config.h"
#include "pipeline/labeled_texts.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;

std::string Duration(double s) {
  const int64_t t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(t / 60),
                  static_cast<long long>(t % 60));
  }
  return buf;
}

int Fail(const Status& s, int code) {
  std::cerr << "nlpflow: " << s.message() << "\n";
  return code;
}

// tokenizer.max_length, else the rule the serve graph follows: the model's
// sentence-transformers max_seq_length, else its position limit.
Result<int> MaxLength(const Config& config) {
  const fs::path dir(config.model.path);
  NLPFLOW_ASSIGN_OR_RETURN(BertConfig bert, LoadBertConfig((dir / "config.json").string()));
  int64_t length = config.tokenizer.max_length;
  if (length <= 0) {
    std::ifstream in(dir / "sentence_bert_config.json");
    if (in) {
      try {
        length = nlohmann::json::parse(in).value("max_seq_length", int64_t{0});
      } catch (const nlohmann::json::exception& e) {
        return Status::InvalidArgument((dir / "sentence_bert_config.json").string() +
                                       ": not valid JSON: " + e.what());
      }
    }
  }
  if (length <= 0 || length > bert.max_position_embeddings) length = bert.max_position_embeddings;
  return static_cast<int>(length);
}

std::vector<ClassifierExample> Encode(const WordPieceTokenizer& tokenizer,
                                      const std::vector<LabeledText>& texts) {
  std::vector<ClassifierExample> out;
  out.reserve(texts.size());
  for (const LabeledText& t : texts) out.push_back({tokenizer.Encode(t.text).ids, t.label_id});
  return out;
}

nlohmann::json MetricsJson(const ClassifierMetrics& m, const std::vector<std::string>& labels) {
  nlohmann::json f1 = nlohmann::json::object();
  for (size_t i = 0; i < labels.size() && i < m.label_f1.size(); ++i) f1[labels[i]] = m.label_f1[i];
  return {{"texts", m.texts},
          {"loss", m.loss},
          {"accuracy", m.accuracy},
          {"macro_f1", m.macro_f1},
          {"f1", f1}};
}

}  // namespace

std::string FormatProgressBar(const TrainProgress& p, int width) {
  const double done = p.steps > 0 ? static_cast<double>(p.step) / p.steps : 0;
  const int filled = static_cast<int>(done * width);
  std::string bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
  char buf[160];
  std::snprintf(buf, sizeof(buf), " %3.0f%% %lld/%lld epoch %d loss %.4f eta %s", 100 * done,
                static_cast<long long>(p.step), static_cast<long long>(p.steps), p.epoch, p.loss,
                Duration(p.eta_s).c_str());
  return bar + buf;
}

CLI::App* AddFinetuneCommand(CLI::App& app, FinetuneCommandOptions* o) {
  CLI::App* c = app.add_subcommand(
      "finetune", "fine-tune a sequence classifier from the model (a BERT encoder)");
  c->add_option("--train", o->train, "JSON lines {\"text\", \"label\": name or id}")->required();
  c->add_option("--eval", o->eval, "JSON lines as --train: metrics after every epoch")->required();
  c->add_option("--out", o->out, "classifier folder to write (Hugging Face layout)")->required();
  c->add_option("--epochs", o->epochs, "passes over --train");
  c->add_option("--batch-size", o->batch_size, "texts per step");
  c->add_option("--lr", o->learning_rate, "peak learning rate (AdamW)");
  c->add_option("--warmup", o->warmup_fraction, "fraction of steps warming up");
  c->add_option("--dropout", o->dropout, "dropout on the pooled output while training");
  c->add_option("--labels", o->labels, "label names by id (default: from --train)")
      ->delimiter(',');
  c->add_option("--max-texts", o->max_texts, "use only the first N lines of each file (0: all)");
  c->add_option("--seed", o->seed, "seed of the head's initialization, order and dropout");
  return c;
}

int RunFinetuneCommand(const FinetuneCommandOptions& o, const Config& config) {
  std::error_code ec;
  if (fs::equivalent(o.out, config.model.path, ec)) {
    return Fail(Status::InvalidArgument("finetune: --out " + o.out +
                                        " is model.path; write the classifier elsewhere"),
                2);
  }
  auto train = ReadLabeledTexts(o.train, o.max_texts);
  if (!train.ok()) return Fail(train.status(), 2);
  auto eval = ReadLabeledTexts(o.eval, o.max_texts);
  if (!eval.ok()) return Fail(eval.status(), 2);
  auto labels = ResolveLabels(o.train, &*train, o.labels);
  if (!labels.ok()) return Fail(labels.status(), 2);
  if (Status s = ApplyLabels(o.eval, *labels, &*eval); !s.ok()) return Fail(s, 2);

  auto max_length = MaxLength(config);
  if (!max_length.ok()) return Fail(max_length.status().WithContext("model"), 1);
  const std::string tokenizer_dir =
      config.tokenizer.path.empty() ? config.model.path : config.tokenizer.path;
  auto tokenizer = WordPieceTokenizer::FromModelDir(tokenizer_dir);
  if (!tokenizer.ok()) return Fail(tokenizer.status().WithContext("tokenizer"), 1);
  (*tokenizer)->set_max_length(*max_length);
  const std::vector<ClassifierExample> train_examples = Encode(**tokenizer, *train);
  const std::vector<ClassifierExample> eval_examples = Encode(**tokenizer, *eval);
  std::string joined;
  for (const auto& l : *labels) joined += (joined.empty() ? "" : ", ") + l;
  spdlog::info("finetune: {} training and {} eval texts, labels [{}], max_length {}",
               train_examples.size(), eval_examples.size(), joined, *max_length);

  FinetuneOptions f;
  f.encoder_dir = config.model.path;
  f.out_dir = o.out;
  f.labels = *labels;
  f.epochs = o.epochs;
  f.batch_size = o.batch_size;
  f.learning_rate = o.learning_rate;
  f.warmup_fraction = o.warmup_fraction;
  f.dropout = o.dropout;
  f.seed = o.seed;
  f.threads = config.model.threads;
  // The bar redraws one line in place: only where a person watches it.
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  if (terminal) {
    f.progress = [](const TrainProgress& p) {
      std::fprintf(stderr, "\rfinetune %s\033[K", FormatProgressBar(p, 30).c_str());
      std::fflush(stderr);
    };
  }
  f.epoch_done = [terminal](int epoch, double train_loss, const ClassifierMetrics& m) {
    if (terminal) std::fprintf(stderr, "\n");
    spdlog::info("finetune: epoch {} train loss {:.4f}, eval loss {:.4f} accuracy {:.4f} "
                 "macro F1 {:.4f}",
                 epoch, train_loss, m.loss, m.accuracy, m.macro_f1);
  };
  auto report = FinetuneClassifier(f, train_examples, eval_examples);
  if (!report.ok()) {
    const int code = report.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
    return Fail(report.status(), code);
  }
  nlohmann::json epochs = nlohmann::json::array();
  for (const auto& m : report->epoch_eval) epochs.push_back(MetricsJson(m, *labels));
  nlohmann::json j = {{"model", o.out},
                      {"labels", *labels},
                      {"train_texts", train_examples.size()},
                      {"eval_texts", eval_examples.size()},
                      {"max_length", *max_length},
                      {"epochs", o.epochs},
                      {"batch_size", o.batch_size},
                      {"learning_rate", o.learning_rate},
                      {"steps", report->train.steps},
                      {"seconds", report->train.seconds},
                      {"first_loss", report->train.first_loss},
                      {"last_loss", report->train.last_loss},
                      {"epoch_losses", report->train.epoch_losses},
                      {"epoch_eval", epochs}};
  if (!report->epoch_eval.empty()) j["eval"] = MetricsJson(report->epoch_eval.back(), *labels);
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace nlpflow
