// The model alone, without Kafka or the graph: the ceiling that the
// end-to-end benchmark (bench/e2e_latency.py) compares the pipeline with.
//
//   model_only_bench --config FILE [--set key=value]... --texts FILE.jsonl
//                    --batch N [--max-real-tokens T] [--group-window W]
//                    [--instances K] [--min-seconds S]
//
// Loads the tokenizer and the model exactly as `nlpflow run` does (the same
// config, LoadModelStack, RunBatch), tokenizes every text up front, then runs
// the texts in batches of N in file order, round after round, for at least S
// seconds, on K threads at once (the pipeline's model.instances; each thread
// uses model.threads intra-op threads). With --group-window W, each window of W consecutive texts is first
// sorted by token count (the best a length-grouping batcher with W records
// waiting could do); 0 keeps arrival order. With --max-real-tokens T a batch
// also closes before the text that would take its real tokens (the sum of
// token counts) over T, as batch.max_batch_real_tokens does; a text longer
// than T goes alone.
//
// Prints one JSON object: records/s, batches, mean padded and real tokens per
// batch, and the per-batch latency percentiles in ms (with --batch 1, the
// single-record model latency of the mix).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/cpu_time.h"
#include "nodes/infer/batch_runner.h"
#include "pipeline/config.h"
#include "pipeline/model_stack.h"

namespace {

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nlpflow model-only throughput on a text file"};
  std::string config_path, texts_path;
  std::vector<std::string> overrides;
  int batch_size = 32;
  int group_window = 0;
  int64_t max_real_tokens = 0;
  int instances = 1;
  double min_seconds = 10;
  app.add_option("--config", config_path, "pipeline config (model and tokenizer keys)")->required();
  app.add_option("--set", overrides, "config override key=value");
  app.add_option("--texts", texts_path, "JSONL file, one {\"text\": ...} per line")->required();
  app.add_option("--batch", batch_size, "records per batch")->check(CLI::Range(1, 4096));
  app.add_option("--max-real-tokens", max_real_tokens,
                 "close a batch before its token counts sum past T (0: no)")
      ->check(CLI::Range(int64_t{0}, int64_t{16777216}));
  app.add_option("--group-window", group_window, "sort each window of W texts by length (0: no)");
  app.add_option("--min-seconds", min_seconds, "run at least this long");
  app.add_option("--instances", instances, "threads running batches at once (model.instances)")
      ->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);

  auto config = nlpflow::LoadConfig(config_path, overrides);
  if (!config.ok()) {
    std::fprintf(stderr, "model_only_bench: %s\n", config.status().ToString().c_str());
    return 1;
  }
  auto stack = nlpflow::LoadModelStack(*config);
  if (!stack.ok()) {
    std::fprintf(stderr, "model_only_bench: %s\n", stack.status().ToString().c_str());
    return 1;
  }

  std::ifstream in(texts_path);
  if (!in) {
    std::fprintf(stderr, "model_only_bench: cannot open %s\n", texts_path.c_str());
    return 1;
  }
  std::vector<std::vector<int32_t>> ids;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const std::string text = nlohmann::json::parse(line).at("text").get<std::string>();
    ids.push_back(stack->tokenizer->Encode(text).ids);
  }
  if (ids.empty()) {
    std::fprintf(stderr, "model_only_bench: no texts in %s\n", texts_path.c_str());
    return 1;
  }
  if (group_window > 1) {
    for (size_t start = 0; start < ids.size(); start += group_window) {
      const size_t end = std::min(ids.size(), start + static_cast<size_t>(group_window));
      std::stable_sort(ids.begin() + start, ids.begin() + end,
                       [](const auto& a, const auto& b) { return a.size() < b.size(); });
    }
  }

  // The batches, formed once: instance threads take them in turn, round
  // after round, as the pipeline's infer instances take closed batches.
  std::vector<std::vector<size_t>> batches;
  std::vector<size_t> members;
  int64_t members_real = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto tokens = static_cast<int64_t>(ids[i].size());
    if (!members.empty() && max_real_tokens > 0 && members_real + tokens > max_real_tokens) {
      batches.push_back(std::move(members));
      members.clear();
      members_real = 0;
    }
    members.push_back(i);
    members_real += tokens;
    if (static_cast<int>(members.size()) == batch_size) {
      batches.push_back(std::move(members));
      members.clear();
      members_real = 0;
    }
  }
  if (!members.empty()) batches.push_back(std::move(members));

  using Clock = std::chrono::steady_clock;
  std::mutex mu;
  std::vector<double> batch_ms;                 // GUARDED_BY(mu)
  int64_t records = 0, padded_tokens = 0, real_tokens = 0;  // GUARDED_BY(mu)
  std::string error;                            // GUARDED_BY(mu)
  std::atomic<size_t> next{0};
  std::atomic<bool> done{false};
  const double cpu0 = nlpflow::bench::ProcessCpuSeconds();
  const auto t0 = Clock::now();
  const auto work = [&] {
    while (true) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
      if (done.load()) return;
      const size_t n = next.fetch_add(1);
      // At least min_seconds, and (but for the batches other instances are
      // still running) whole rounds over the texts.
      if (elapsed >= min_seconds && n % batches.size() == 0) {
        done.store(true);
        return;
      }
      nlpflow::Batch batch;
      size_t longest = 0, real = 0;
      for (size_t i : batches[n % batches.size()]) {
        auto record = std::make_shared<nlpflow::Record>();
        record->encoding.ids = ids[i];
        record->encoding.type_ids.assign(ids[i].size(), 0);
        longest = std::max(longest, ids[i].size());
        real += ids[i].size();
        batch.records.push_back(std::move(record));
      }
      const auto b0 = Clock::now();
      nlpflow::RunBatch(*stack->model, stack->tokenizer->pad_id(), &batch);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - b0).count();
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& r : batch.records) {
        if (r->failed && error.empty()) error = r->failure_reason;
      }
      batch_ms.push_back(ms);
      records += static_cast<int64_t>(batch.records.size());
      padded_tokens += static_cast<int64_t>(longest * batch.records.size());
      real_tokens += static_cast<int64_t>(real);
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < instances; ++i) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu_seconds = nlpflow::bench::ProcessCpuSeconds() - cpu0;
  if (!error.empty()) {
    std::fprintf(stderr, "model_only_bench: %s\n", error.c_str());
    return 1;
  }

  const double n = static_cast<double>(batch_ms.size());
  nlohmann::json out = {
      {"batch", batch_size},
      {"group_window", group_window},
      {"max_real_tokens", max_real_tokens},
      {"instances", instances},
      {"texts", ids.size()},
      {"records", records},
      {"seconds", elapsed},
      {"records_per_s", static_cast<double>(records) / elapsed},
      // The process's CPU time over the same span: the cores the model had.
      {"cpu_seconds", cpu_seconds},
      {"records_per_cpu_s", static_cast<double>(records) / cpu_seconds},
      {"batches", batch_ms.size()},
      {"mean_padded_tokens_per_batch", static_cast<double>(padded_tokens) / n},
      {"mean_real_tokens_per_batch", static_cast<double>(real_tokens) / n},
      {"batch_ms_mean", std::accumulate(batch_ms.begin(), batch_ms.end(), 0.0) / n},
      {"batch_ms_p50", Percentile(batch_ms, 0.50)},
      {"batch_ms_p99", Percentile(batch_ms, 0.99)},
      {"batch_ms_max", Percentile(batch_ms, 1.0)},
  };
  std::cout << out.dump() << std::endl;
  return 0;
}
