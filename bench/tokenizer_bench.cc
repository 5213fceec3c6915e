// Tokenizer throughput and allocations, the C++ half of
// bench/tokenizer_bench.py (which runs Hugging Face's encode_batch on the
// same texts in the same run and writes bench/results/).
//
//   tokenizer_bench --tokenizer PATH --texts corpus.jsonl [--seconds S] [--threads N]
//
// Prints one JSON object: records, tokens, seconds and tokens/s on one
// thread and on N threads (tbb::parallel_for over the texts, as the tokenize
// step of the embed graph runs), and heap allocations per record on one
// thread (counted by replacing the global operator new).
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nodes/tokenize/tokenizer.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using Clock = std::chrono::steady_clock;

struct Run {
  uint64_t records = 0;
  uint64_t tokens = 0;
  double seconds = 0;
};

// Whole passes over the texts until `seconds` have gone by (at least one).
Run SingleThread(const nlpflow::Tokenizer& t, const std::vector<std::string>& texts,
                 double seconds) {
  Run r;
  const auto start = Clock::now();
  do {
    for (const auto& text : texts) r.tokens += t.Encode(text).ids.size();
    r.records += texts.size();
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  } while (r.seconds < seconds);
  return r;
}

Run Parallel(const nlpflow::Tokenizer& t, const std::vector<std::string>& texts, double seconds,
             int threads) {
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);
  Run r;
  const auto start = Clock::now();
  do {
    std::atomic<uint64_t> tokens{0};
    tbb::parallel_for(tbb::blocked_range<size_t>(0, texts.size(), 64),
                      [&](const tbb::blocked_range<size_t>& range) {
                        uint64_t n = 0;
                        for (size_t i = range.begin(); i < range.end(); ++i) {
                          n += t.Encode(texts[i]).ids.size();
                        }
                        tokens += n;
                      });
    r.tokens += tokens;
    r.records += texts.size();
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  } while (r.seconds < seconds);
  return r;
}

nlohmann::json ToJson(const Run& r) {
  return {{"records", r.records},
          {"tokens", r.tokens},
          {"seconds", r.seconds},
          {"tokens_per_s", r.tokens / r.seconds},
          {"records_per_s", r.records / r.seconds}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer_path, texts_path;
  double seconds = 5;
  int threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--tokenizer") tokenizer_path = argv[i + 1];
    else if (flag == "--texts") texts_path = argv[i + 1];
    else if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
    else if (flag == "--threads") threads = std::atoi(argv[i + 1]);
  }
  if (tokenizer_path.empty() || texts_path.empty()) {
    std::cerr << "usage: tokenizer_bench --tokenizer PATH --texts corpus.jsonl "
                 "[--seconds S] [--threads N]\n";
    return 2;
  }
  auto loaded = nlpflow::LoadTokenizer(tokenizer_path);
  if (!loaded.ok()) {
    std::cerr << loaded.status().ToString() << "\n";
    return 1;
  }
  const nlpflow::Tokenizer& t = *loaded->tokenizer;
  std::vector<std::string> texts;
  std::ifstream in(texts_path);
  for (std::string line; std::getline(in, line);) {
    texts.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
  }
  if (texts.empty()) {
    std::cerr << texts_path << ": no texts\n";
    return 1;
  }
  uint64_t bytes = 0;
  for (const auto& s : texts) bytes += s.size();

  SingleThread(t, texts, 0);  // warm-up: caches, thread-local buffers
  const uint64_t allocations_before = g_allocations.load();
  uint64_t warm_tokens = 0;
  for (const auto& text : texts) warm_tokens += t.Encode(text).ids.size();
  const double allocations_per_record =
      double(g_allocations.load() - allocations_before) / texts.size();

  const Run one = SingleThread(t, texts, seconds);
  const Run many = Parallel(t, texts, seconds, threads);
  nlohmann::json out = {{"tokenizer", tokenizer_path},
                        {"model_type", loaded->model_type},
                        {"texts", texts.size()},
                        {"bytes", bytes},
                        {"tokens_per_pass", warm_tokens},
                        {"allocations_per_record", allocations_per_record},
                        {"one_thread", ToJson(one)},
                        {"threads", threads},
                        {"n_threads", ToJson(many)}};
  std::cout << out.dump() << "\n";
  return 0;
}
