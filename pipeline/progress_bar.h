// A progress line on stderr for `nlpflow embed`, drawn only when stderr is a
// terminal (never into a pipe or a log file):
//   [##########..........]  50%  12,345 lines  812 lines/s
// The percentage and bar come from the bytes read of the input when its size
// is known (a regular file on stdin); otherwise the line shows the count and
// rate only. Redrawn at most every 100 ms; Finish() ends the line.
//
// Threads: one (the reading thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace nlpflow {

class ProgressBar {
 public:
  // `total_bytes` <= 0: unknown. `enabled` false: draws nothing.
  ProgressBar(FILE* out, bool enabled, int64_t total_bytes);

  // Whether a progress bar belongs on `fd` (isatty).
  static bool IsTerminal(int fd);
  // The size of the regular file open as `fd`; 0 for a pipe or a terminal.
  static int64_t RegularFileSize(int fd);

  // After each line: the lines and bytes read so far.
  void Update(int64_t lines, int64_t bytes);
  void Finish();

  // The text of the line for these numbers (no carriage return), for tests.
  static std::string Render(int64_t lines, int64_t bytes, int64_t total_bytes,
                            double lines_per_s);

 private:
  FILE* out_;
  const bool enabled_;
  const int64_t total_bytes_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  int64_t lines_ = 0;
  int64_t bytes_ = 0;
  bool drawn_ = false;
};

}  // namespace nlpflow
