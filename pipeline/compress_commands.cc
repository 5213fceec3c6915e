#include "pipeline/compress_commands.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "nodes/compress/distiller.h"
#include "nodes/compress/evaluator.h"
#include "nodes/compress/pruner.h"
#include "nodes/compress/quantizer.h"
#include "nodes/infer/bert_config.h"
#include "pipeline/config.h"
#include "pipeline/model_stack.h"
#include "pipeline/offline_graph.h"

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

// One progress line about every 5% of the steps (and the last), on stderr.
std::function<void(const TrainProgress&)> ProgressPrinter(const std::string& what) {
  return [what](const TrainProgress& p) {
    const int64_t every = std::max<int64_t>(1, p.steps / 20);
    if (p.step % every != 0 && p.step != p.steps && p.step != 1) return;
    std::fprintf(stderr, "%s: epoch %d step %lld/%lld (%3.0f%%) loss %.3e lr %.2e elapsed %s eta %s\n",
                 what.c_str(), p.epoch, static_cast<long long>(p.step),
                 static_cast<long long>(p.steps), 100.0 * p.step / p.steps, p.loss,
                 p.learning_rate, Duration(p.elapsed_s).c_str(), Duration(p.eta_s).c_str());
  };
}

// A failure at run time: exit 1. The offline commands write their errors as
// one plain line on stderr (their progress lines go there too).
int Fail(const Status& s) {
  std::cerr << "nlpflow: " << s.message() << "\n";
  return 1;
}

// A bad command line (a missing or out-of-range flag): exit 2, as CLI11's own
// parse errors.
int UsageError(const Status& s) {
  std::cerr << "nlpflow: " << s.message() << "\n";
  return 2;
}

// Texts from options.texts; an empty corpus is an error.
Result<std::vector<std::string>> Corpus(const CompressCommandOptions& o, const char* command) {
  if (o.texts.empty()) return Status::InvalidArgument(std::string(command) + ": --texts is required");
  NLPFLOW_ASSIGN_OR_RETURN(std::vector<std::string> texts, ReadTexts(o.texts, o.max_texts));
  if (texts.empty()) {
    return Status::InvalidArgument(std::string(command) + ": " + o.texts +
                                   " has no texts (empty corpus)");
  }
  return texts;
}

Result<ModelStack> LoadStack(const Config& config) {
  // The compression commands work on the encoder's sentence embeddings: a
  // classifier checkpoint's encoder counts, unless model.task says otherwise.
  Config embedding = config;
  if (embedding.model.task == "auto") embedding.model.task = "embedding";
  auto stack = LoadModelStack(embedding);
  if (!stack.ok()) return stack.status();
  if (stack->embedding_model == nullptr) {
    return Status::InvalidArgument("the compression commands need a sentence-embedding model; " +
                                   config.model.path + " is a " +
                                   ModelTaskName(stack->model->task()) + " model");
  }
  if (stack->embedding_model->pooling() != "mean") {
    return Status::InvalidArgument("the compression commands support mean pooling; " +
                                   config.model.path + " uses " +
                                   stack->embedding_model->pooling());
  }
  return stack;
}

// The texts of options.texts (Corpus) through the teacher's graph
// (model.path): the input of every command that learns from the teacher.
// Texts the graph rejects are failed rows.
Result<OfflineRun> RunTeacher(const CompressCommandOptions& o, const char* command,
                              const Config& config) {
  NLPFLOW_ASSIGN_OR_RETURN(std::vector<std::string> texts, Corpus(o, command));
  NLPFLOW_ASSIGN_OR_RETURN(ModelStack stack, LoadStack(config));
  return RunOfflineGraph(config, stack, texts);
}

// The teacher's embeddings of the texts of options.texts, as training
// examples; texts the graph rejects are left out (and counted in the log).
Result<std::vector<DistillExample>> TeacherExamples(const CompressCommandOptions& o,
                                                    const char* command, const Config& config) {
  NLPFLOW_ASSIGN_OR_RETURN(OfflineRun run, RunTeacher(o, command, config));
  std::vector<DistillExample> examples;
  int64_t failed = 0;
  for (auto& row : run.rows) {
    if (row.failed) {
      ++failed;
      continue;
    }
    examples.push_back({std::move(row.ids), std::move(row.output)});
  }
  spdlog::info("teacher: {} texts through the graph in {:.1f} s ({:.1f}/s), {} rejected",
               run.rows.size(), run.wall_s, run.records_per_s, failed);
  return examples;
}

Status CheckOut(const CompressCommandOptions& o, const char* command) {
  if (o.out.empty()) return Status::InvalidArgument(std::string(command) + ": --out is required");
  return Status::Ok();
}

TrainOptions TrainOptionsFrom(const CompressCommandOptions& o, const std::string& what) {
  TrainOptions t;
  t.epochs = o.epochs;
  t.batch_size = o.batch_size;
  t.learning_rate = o.learning_rate;
  t.warmup_fraction = o.warmup_fraction;
  t.checkpoint_dir = o.checkpoints;
  t.progress = ProgressPrinter(what);
  return t;
}

nlohmann::json TrainJson(const TrainReport& r) {
  return {{"steps", r.steps},
          {"seconds", r.seconds},
          {"first_loss", r.first_loss},
          {"last_loss", r.last_loss},
          {"epoch_losses", r.epoch_losses}};
}

int RunDistill(const CompressCommandOptions& o, const Config& config) {
  if (Status s = CheckOut(o, "distill"); !s.ok()) return UsageError(s);
  // Checked before any work: the sizes against the teacher's config.json.
  auto teacher_config = LoadBertConfig((fs::path(config.model.path) / "config.json").string());
  if (!teacher_config.ok()) {
    return Fail(Status::NotFound("distill: teacher model.path " + config.model.path +
                                 " is not a model folder (" + teacher_config.status().message() +
                                 ")"));
  }
  if (o.layers < 1 || o.layers > teacher_config->num_hidden_layers) {
    return UsageError(Status::InvalidArgument(
        "distill: --layers " + std::to_string(o.layers) + ": the student must have 1 to " +
        std::to_string(teacher_config->num_hidden_layers) + " layers (the teacher has " +
        std::to_string(teacher_config->num_hidden_layers) + ")"));
  }
  if (o.ffn > teacher_config->intermediate_size || o.ffn < 0) {
    return UsageError(Status::InvalidArgument("distill: --ffn " + std::to_string(o.ffn) +
                                        " must be between 0 (the teacher's) and the teacher's " +
                                        std::to_string(teacher_config->intermediate_size)));
  }
  auto examples = TeacherExamples(o, "distill", config);
  if (!examples.ok()) return Fail(examples.status());
  DistillOptions d;
  d.teacher_dir = config.model.path;
  d.out_dir = o.out;
  d.layers = o.layers;
  d.ffn = o.ffn;
  d.train = TrainOptionsFrom(o, "distill");
  d.train.token_loss_weight = o.token_loss_weight;
  auto report = Distill(d, *examples);
  if (!report.ok()) return Fail(report.status());
  nlohmann::json j = TrainJson(*report);
  j["student"] = o.out;
  j["layers"] = StudentLayerIndices(teacher_config->num_hidden_layers, o.layers);
  j["texts"] = examples->size();
  std::cout << j.dump() << std::endl;
  return 0;
}

int RunPrune(const CompressCommandOptions& o, const Config& config) {
  if (Status s = CheckOut(o, "prune"); !s.ok()) return UsageError(s);
  std::vector<std::vector<int32_t>> calibration;
  std::vector<DistillExample> examples;
  if (o.method != "l1" || o.recover_epochs > 0) {
    auto ex = TeacherExamples(o, "prune", config);
    if (!ex.ok()) return Fail(ex.status());
    examples = std::move(ex).value();
    for (size_t i = 0; i < examples.size() && static_cast<int64_t>(i) < o.calibration_texts; ++i) {
      calibration.push_back(examples[i].ids);
    }
  }
  PruneOptions p;
  p.model_dir = config.model.path;
  p.out_dir = o.out;
  p.method = o.method;
  p.amount = o.amount;
  p.recover_epochs = o.recover_epochs;
  p.train = TrainOptionsFrom(o, "prune: recover");
  auto report = Prune(p, calibration, examples);
  if (!report.ok()) return Fail(report.status());
  nlohmann::json j = {{"model", o.out},
                      {"method", o.method},
                      {"amount", o.amount},
                      {"ffn_sizes", report->ffn_sizes},
                      {"heads", report->heads},
                      {"sparsity", report->sparsity}};
  if (report->recovery.steps > 0) j["recovery"] = TrainJson(report->recovery);
  std::cout << j.dump() << std::endl;
  return 0;
}

int RunQuantize(const CompressCommandOptions& o, const Config& config) {
  if (Status s = CheckOut(o, "quantize"); !s.ok()) return UsageError(s);
  std::vector<std::vector<int32_t>> calibration;
  if (o.mode == "static") {
    CompressCommandOptions limited = o;
    limited.max_texts = o.calibration_texts;
    auto run = RunTeacher(limited, "quantize", config);
    if (!run.ok()) return Fail(run.status());
    for (auto& row : run->rows) {
      if (!row.failed) calibration.push_back(std::move(row.ids));
    }
  }
  QuantizeOptions q;
  q.model_dir = config.model.path;
  q.out_dir = o.out;
  q.mode = o.mode;
  q.activation_bits = o.activation_bits;
  q.row_bound = o.row_bound;
  auto report = Quantize(q, calibration);
  if (!report.ok()) return Fail(report.status());
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& s : report->sites) {
    sites.push_back({{"linear", s.name},
                     {"input_range", {s.input_lo, s.input_hi}},
                     {"input_seen", {s.input_min, s.input_max}},
                     {"output_range", {s.output_lo, s.output_hi}},
                     {"output_seen", {s.output_min, s.output_max}},
                     {"row_bounds", {s.row_lo, s.row_hi}},
                     {"fp32_row_share", s.fp32_row_share}});
  }
  std::cout << nlohmann::json({{"model", o.out},
                               {"mode", o.mode},
                               {"calibration_tokens", report->calibration_tokens},
                               {"activation_bits", o.mode == "static" ? o.activation_bits : 0},
                               {"row_bound", o.mode == "static" ? o.row_bound : 0.0},
                               {"sites", sites}})
                   .dump()
            << std::endl;
  return 0;
}

std::vector<float> Flatten(const OfflineRun& run, std::vector<int>* keep_labels,
                           const std::vector<int>& labels) {
  std::vector<float> out;
  for (size_t i = 0; i < run.rows.size(); ++i) {
    if (run.rows[i].failed) continue;
    out.insert(out.end(), run.rows[i].output.begin(), run.rows[i].output.end());
    if (keep_labels != nullptr) keep_labels->push_back(labels[i]);
  }
  return out;
}

int64_t FolderBytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) total += static_cast<int64_t>(e.file_size(ec));
  }
  return total;
}

int RunEval(const CompressCommandOptions& o, const Config& config) {
  if (o.variant.empty() || o.train.empty() || o.test.empty()) {
    return UsageError(Status::InvalidArgument("eval: --variant, --train and --test are required"));
  }
  std::vector<int> train_labels, test_labels;
  auto train = ReadTexts(o.train, o.max_texts, &train_labels);
  if (!train.ok()) return Fail(train.status());
  auto test = ReadTexts(o.test, o.max_texts, &test_labels);
  if (!test.ok()) return Fail(test.status());
  if (train->empty() || test->empty()) {
    return Fail(Status::InvalidArgument("eval: the train and test files must not be empty"));
  }
  for (const auto* labels : {&train_labels, &test_labels}) {
    for (int l : *labels) {
      if (l != 0 && l != 1) {
        return Fail(Status::InvalidArgument(
            "eval: every line of --train and --test needs a \"label\" of 0 or 1"));
      }
    }
  }
  // The teacher: embeddings of both splits; the head is trained on its train split.
  auto teacher = LoadStack(config);
  if (!teacher.ok()) return Fail(teacher.status());
  auto teacher_train = RunOfflineGraph(config, *teacher, *train);
  if (!teacher_train.ok()) return Fail(teacher_train.status());
  auto teacher_test = RunOfflineGraph(config, *teacher, *test);
  if (!teacher_test.ok()) return Fail(teacher_test.status());
  std::vector<int> y_train, y_test;
  const std::vector<float> x_train = Flatten(*teacher_train, &y_train, train_labels);
  const std::vector<float> x_test_teacher = Flatten(*teacher_test, &y_test, test_labels);
  const int64_t dim = teacher->embedding_model->dim();
  auto head = LogisticRegression::Train(x_train, dim, y_train, {});
  if (!head.ok()) return Fail(head.status());

  Config vc = config;
  vc.model.path = o.variant;
  vc.model.name = "";
  vc.model.version = "";
  auto variant = LoadStack(vc);
  if (!variant.ok()) return Fail(variant.status());
  if (variant->embedding_model->dim() != dim) {
    return Fail(Status::InvalidArgument("eval: the variant's embeddings have " +
                                        std::to_string(variant->embedding_model->dim()) +
                                        " values, the teacher's " + std::to_string(dim)));
  }
  // Throughput: every test text at once; latency: paced at --rate.
  auto run = RunOfflineGraph(vc, *variant, *test);
  if (!run.ok()) return Fail(run.status());
  std::vector<int> y_variant;
  const std::vector<float> x_test = Flatten(*run, &y_variant, test_labels);
  if (y_variant != y_test) {
    return Fail(Status::Internal("eval: the variant rejected texts the teacher accepted"));
  }
  auto cosine = CompareEmbeddings(x_test, x_test_teacher, dim);
  if (!cosine.ok()) return Fail(cosine.status());
  auto scores = ScoreHead(*head, y_test, x_test, x_test_teacher);
  if (!scores.ok()) return Fail(scores.status().WithContext("eval"));
  const BinaryMetrics* metrics = &scores->variant;
  const BinaryMetrics* teacher_metrics = &scores->teacher;
  int64_t tokens = 0;
  for (const auto& r : run->rows) tokens += static_cast<int64_t>(r.ids.size());

  nlohmann::json j = {
      {"variant", o.variant},
      {"precision", variant->embedding_model->precision()},
      {"test_texts", y_test.size()},
      {"train_texts", y_train.size()},
      {"cosine_to_teacher", {{"mean", cosine->mean}, {"p05", cosine->p05}, {"min", cosine->min}}},
      {"spam", {{"accuracy", metrics->accuracy},
                {"precision", metrics->precision},
                {"recall", metrics->recall},
                {"f1", metrics->f1},
                {"confusion", {{"tp", metrics->true_positives}, {"fp", metrics->false_positives},
                               {"tn", metrics->true_negatives}, {"fn", metrics->false_negatives}}}}},
      {"teacher_spam", {{"accuracy", teacher_metrics->accuracy}, {"f1", teacher_metrics->f1}}},
      {"head_train_loss", head->final_loss()},
      {"weights_bytes", fs::file_size(fs::path(o.variant) / "model.safetensors")},
      {"folder_bytes", FolderBytes(o.variant)},
      {"throughput", {{"records_per_s", run->records_per_s},
                      {"tokens_per_s", static_cast<double>(tokens) / run->wall_s},
                      {"wall_s", run->wall_s},
                      {"p50_us", run->p50_latency_us},
                      {"p99_us", run->p99_latency_us}}},
  };
  if (o.rate_per_s > 0) {
    auto paced = RunOfflineGraph(vc, *variant, *test, o.rate_per_s);
    if (!paced.ok()) return Fail(paced.status());
    j["paced"] = {{"rate_per_s", o.rate_per_s},
                  {"achieved_per_s", paced->records_per_s},
                  {"p50_us", paced->p50_latency_us},
                  {"p99_us", paced->p99_latency_us}};
  }
  std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace

void AddCompressCommands(CLI::App& app, CompressCommands* c) {
  CompressCommandOptions& o = c->options;
  c->distill = app.add_subcommand(
      "distill", "train a smaller student from the model (teacher) on unlabeled texts");
  c->distill->add_option("--texts", o.texts, "training texts (one per line, or JSON lines)");
  c->distill->add_option("--out", o.out, "student model folder to write");
  c->distill->add_option("--layers", o.layers, "student layers, taken evenly from the teacher's");
  c->distill->add_option("--ffn", o.ffn, "student FFN neurons per layer (0: the teacher's)");
  c->distill->add_option("--epochs", o.epochs, "passes over the texts");
  c->distill->add_option("--batch-size", o.batch_size, "texts per step");
  c->distill->add_option("--lr", o.learning_rate, "peak learning rate (AdamW)");
  c->distill->add_option("--warmup", o.warmup_fraction, "fraction of steps warming up");
  c->distill->add_option("--max-texts", o.max_texts, "use only the first N texts (0: all)");
  c->distill->add_option("--checkpoints", o.checkpoints, "folder for a checkpoint per epoch");
  c->distill->add_option("--token-loss", o.token_loss_weight,
                         "weight of a per-token loss on the last layer's states (0: off)");

  c->prune = app.add_subcommand("prune", "prune the model (unstructured L1, FFN neurons, heads)");
  c->prune->add_option("--texts", o.texts, "texts for importance and recovery");
  c->prune->add_option("--out", o.out, "pruned model folder to write");
  c->prune->add_option("--method", o.method, "l1 | ffn | heads");
  c->prune->add_option("--amount", o.amount, "fraction to remove, in [0, 1)");
  c->prune->add_option("--recover-epochs", o.recover_epochs,
                       "epochs of distillation from the unpruned model (0: none)");
  c->prune->add_option("--calibration-texts", o.calibration_texts, "texts for importance");
  c->prune->add_option("--max-texts", o.max_texts, "use only the first N texts (0: all)");
  c->prune->add_option("--batch-size", o.batch_size, "recovery: texts per step");
  c->prune->add_option("--lr", o.learning_rate, "recovery: peak learning rate");

  c->quantize = app.add_subcommand("quantize", "int8 model: dynamic, or static (calibrated)");
  c->quantize->add_option("--mode", o.mode, "dynamic | static");
  c->quantize->add_option("--texts", o.texts, "calibration texts (static)");
  c->quantize->add_option("--calibration-texts", o.calibration_texts, "texts used to calibrate");
  c->quantize->add_option("--activation-bits", o.activation_bits,
                          "static: 7 (8-bit weights) or 8 (7-bit weights)");
  c->quantize->add_option("--row-bound", o.row_bound,
                          "static: rows beyond this x the median row's range run in fp32 (0: none)");
  c->quantize->add_option("--out", o.out, "quantized model folder to write");

  c->eval = app.add_subcommand(
      "eval", "fidelity, spam-vs-ham F1, size, throughput and latency of a model variant");
  c->eval->add_option("--variant", o.variant, "model folder to evaluate (the teacher: model.path)");
  c->eval->add_option("--train", o.train, "JSON lines {text, label}: trains the head (teacher)");
  c->eval->add_option("--test", o.test, "JSON lines {text, label}: held out");
  c->eval->add_option("--rate", o.rate_per_s, "also measure latency at this many records/s");
  c->eval->add_option("--max-texts", o.max_texts, "use only the first N lines of each file");
}

int RunCompressCommand(const CompressCommands& c, const Config& config) {
  if (*c.distill) return RunDistill(c.options, config);
  if (*c.prune) return RunPrune(c.options, config);
  if (*c.quantize) return RunQuantize(c.options, config);
  return RunEval(c.options, config);
}

}  // namespace nlpflow
