#include "pipeline/progress_bar.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace nlpflow {
namespace {

std::string WithThousands(int64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

ProgressBar::ProgressBar(FILE* out, bool enabled, int64_t total_bytes)
    : out_(out),
      enabled_(enabled),
      total_bytes_(total_bytes),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

bool ProgressBar::IsTerminal(int fd) { return isatty(fd) == 1; }

int64_t ProgressBar::RegularFileSize(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  return static_cast<int64_t>(st.st_size);
}

std::string ProgressBar::Render(int64_t lines, int64_t bytes, int64_t total_bytes,
                                double lines_per_s) {
  std::string out;
  if (total_bytes > 0) {
    const double fraction = std::clamp(static_cast<double>(bytes) / total_bytes, 0.0, 1.0);
    constexpr int kWidth = 20;
    const int filled = static_cast<int>(fraction * kWidth);
    out += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
    char pct[8];
    std::snprintf(pct, sizeof(pct), "%3d%%", static_cast<int>(fraction * 100));
    out += std::string(pct) + "  ";
  }
  out += WithThousands(lines) + " lines  " +
         WithThousands(static_cast<int64_t>(lines_per_s + 0.5)) + " lines/s";
  return out;
}

void ProgressBar::Update(int64_t lines, int64_t bytes) {
  lines_ = lines;
  bytes_ = bytes;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  drawn_ = true;
  const double s = std::chrono::duration<double>(now - start_).count();
  // \033[K clears what a longer earlier line left.
  std::fprintf(out_, "\r%s\033[K", Render(lines, bytes, total_bytes_, s > 0 ? lines / s : 0).c_str());
  std::fflush(out_);
}

void ProgressBar::Finish() {
  if (!enabled_) return;
  drawn_ = false;  // draw the final numbers
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(out_, "\r%s\033[K\n",
               Render(lines_, total_bytes_ > 0 ? total_bytes_ : bytes_, total_bytes_,
                      s > 0 ? lines_ / s : 0)
                   .c_str());
  std::fflush(out_);
}

}  // namespace nlpflow
