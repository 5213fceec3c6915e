// `nlpflow tokenize --tokenizer PATH < texts.txt`: one JSON object per input
// line, in input order:
//   {"ids": [101, 7592, 102], "offsets": [[0, 0], [0, 5], [0, 0]]}
// ids equal Hugging Face's Tokenizer.from_file(PATH).encode(line).ids: the
// file's special tokens, truncation and padding apply. offsets are [begin,
// end) UTF-8 byte offsets into the line ([0, 0] for special and pad tokens).
//
// Lines end at "\n"; a "\r" before it is dropped too (CRLF files), so a text
// cannot contain either. A line that is not valid UTF-8 is not repaired (as
// the decode node rejects it): its output line is
//   {"error": "invalid UTF-8 at byte 13"}
// and the command goes on; the exit code is then 1.
//
// PATH: a tokenizer.json (model.type WordPiece or BPE) or a model folder.
// Lines are encoded in parallel in blocks, on the TBB workers.
#pragma once

#include <istream>
#include <ostream>
#include <string>

#include "common/status.h"
#include "nodes/tokenize/tokenizer.h"

namespace CLI {
class App;
}  // namespace CLI

namespace nlpflow {

struct TokenizeCommandOptions {
  std::string tokenizer_path;
};

// Adds the `tokenize` subcommand to app; its options land in *options.
CLI::App* AddTokenizeCommand(CLI::App& app, TokenizeCommandOptions* options);

// Runs the command on stdin/stdout. Returns the exit code: 0, 1 when a line
// was invalid or output failed, 2 when the tokenizer cannot be loaded
// (the message goes to stderr).
int RunTokenizeCommand(const TokenizeCommandOptions& options);

struct TokenizeStats {
  int64_t lines = 0;
  int64_t invalid_lines = 0;
};

// The command's work, on any streams.
Result<TokenizeStats> TokenizeStream(const LoadedTokenizer& tokenizer, std::istream& in,
                                     std::ostream& out);

}  // namespace nlpflow
