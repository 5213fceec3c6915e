#include "pipeline/tokenize_command.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <tbb/parallel_for.h>

#include <charconv>
#include <iostream>
#include <vector>

#include "nodes/decode/decoder.h"

namespace nlpflow {
namespace {

// Lines per block: large enough to keep both cores busy, small enough that
// output starts soon and memory stays flat on endless input.
constexpr size_t kBlockLines = 4096;

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

// One output line (with its "\n") for one input line.
void EncodeLine(const LoadedTokenizer& t, const std::string& line, std::string* out) {
  out->clear();
  const int64_t invalid = FindInvalidUtf8(line);
  if (invalid >= 0) {
    *out = "{\"error\": \"invalid UTF-8 at byte ";
    AppendInt(out, invalid);
    *out += "\"}\n";
    return;
  }
  Encoding e = t.tokenizer->Encode(line);
  Pad(t.padding, &e);
  *out += "{\"ids\": [";
  for (size_t i = 0; i < e.ids.size(); ++i) {
    if (i) *out += ", ";
    AppendInt(out, e.ids[i]);
  }
  *out += "], \"offsets\": [";
  for (size_t i = 0; i < e.offsets.size(); ++i) {
    *out += i ? ", [" : "[";
    AppendInt(out, e.offsets[i].first);
    *out += ", ";
    AppendInt(out, e.offsets[i].second);
    *out += "]";
  }
  *out += "]}\n";
}

}  // namespace

Result<TokenizeStats> TokenizeStream(const LoadedTokenizer& tokenizer, std::istream& in,
                                     std::ostream& out) {
  TokenizeStats stats;
  std::vector<std::string> lines(kBlockLines);
  std::vector<std::string> results(kBlockLines);
  for (bool more = true; more;) {
    size_t n = 0;
    while (n < kBlockLines && std::getline(in, lines[n])) {
      if (!lines[n].empty() && lines[n].back() == '\r') lines[n].pop_back();
      ++n;
    }
    more = n == kBlockLines;
    tbb::parallel_for(size_t{0}, n, [&](size_t i) { EncodeLine(tokenizer, lines[i], &results[i]); });
    for (size_t i = 0; i < n; ++i) {
      out << results[i];
      if (results[i][2] == 'e') ++stats.invalid_lines;  // {"error": ...
    }
    stats.lines += static_cast<int64_t>(n);
    if (!out) return Status::Unavailable("cannot write the output");
  }
  if (in.bad()) return Status::DataLoss("cannot read the input");
  out.flush();
  return stats;
}

CLI::App* AddTokenizeCommand(CLI::App& app, TokenizeCommandOptions* options) {
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "tokenize stdin (one text per line) to one JSON object of ids and offsets per line");
  cmd->add_option("--tokenizer,-t", options->tokenizer_path,
                  "a tokenizer.json or a model folder")
      ->required();
  return cmd;
}

int RunTokenizeCommand(const TokenizeCommandOptions& options) {
  auto tokenizer = LoadTokenizer(options.tokenizer_path);
  if (!tokenizer.ok()) {
    spdlog::error("{}", tokenizer.status().message());
    return 1;  // a missing or broken file is a run-time failure (main.cc)
  }
  std::ios::sync_with_stdio(false);
  auto stats = TokenizeStream(*tokenizer, std::cin, std::cout);
  if (!stats.ok()) {
    spdlog::error("{}", stats.status().message());
    return 1;
  }
  if (stats->invalid_lines > 0) {
    spdlog::error("{} of {} lines were not valid UTF-8", stats->invalid_lines, stats->lines);
    return 1;
  }
  return 0;
}

}  // namespace nlpflow
