// Helpers shared by the tokenizer tests.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace nlpflow::testing {

// A fresh directory under the system temp dir, removed with its contents.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("nlpflow_tokenize_test_" + std::to_string(::getpid()) + "_" +
             std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `contents` to path()/name and returns the full path.
  std::string Write(const std::string& name, const std::string& contents) const {
    const auto file = path_ / name;
    std::ofstream(file, std::ios::binary) << contents;
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

// The model folder the parity tests use; models/ is not in git, so tests
// that need it skip when it is absent.
inline std::string ModelDir() {
  return std::string(NLPFLOW_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";
}
inline bool HaveModel() {
  return std::filesystem::is_regular_file(ModelDir() + "/tokenizer.json") &&
         std::filesystem::is_regular_file(ModelDir() + "/vocab.txt");
}

// A small BERT-style vocab.txt (ids are line numbers).
inline std::string TinyVocab() {
  const std::vector<std::string> tokens = {
      "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",  // 0-4
      "un",    "##want", "##ed", "runn",  "##ing",   // 5-9
      "want",  ",",      "!",    "hello", "world",   // 10-14
      "cafe",  "a",      "b",    "##b",   "x",       // 15-19
      "##x",   ".",      "日",   "本",    "i",       // 20-24
      "##\u0307",                                      // 25
  };
  std::string out;
  for (const auto& t : tokens) out += t + "\n";
  return out;
}

}  // namespace nlpflow::testing
