// libFuzzer target: random bytes as a YAML config file, read by LoadConfig
// (the file as the user gives it; the input's first line is also tried as a
// --set override on the rest). Built with clang and
// -fsanitize=fuzzer,address,undefined (nlpflow_add_fuzzer in
// tests/CMakeLists.txt); any crash, uncaught exception, sanitizer report or
// broken invariant fails: an error is one line, and a config that loads dumps
// to YAML that loads again to the same dump.
//
// Short run: ctest -R config_fuzz (NLPFLOW_FUZZ_SECONDS). Longer, by hand,
// from the repo root:
//   B=build/tests/pipeline
//   $B/config_fuzz -max_total_time=3600 -max_len=4096 -timeout=10 -jobs=2 \
//       $B/config_fuzz_corpus tests/pipeline/config_fuzz_seeds
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "pipeline/config.h"

namespace {

void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "config_fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

void Load(const std::string& path, const std::string& yaml,
          const std::vector<std::string>& overrides) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << yaml;
  }
  auto config = nlpflow::LoadConfig(path, overrides);
  if (!config.ok()) {
    const std::string& m = config.status().message();
    if (m.empty()) Fail("empty error", "");
    if (m.find('\n') != std::string::npos) Fail("error of several lines", m);
    return;
  }
  const std::string dump = nlpflow::DumpConfig(*config);
  auto again = nlpflow::ParseConfig(dump, {});
  if (!again.ok()) Fail("the dump does not load", again.status().message() + "\n" + dump);
  const std::string dump2 = nlpflow::DumpConfig(*again);
  if (dump2 != dump) Fail("the dump changes when loaded", dump + "\n---\n" + dump2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path =
      "/tmp/nlpflow_config_fuzz_" + std::to_string(::getpid()) + ".yaml";
  const std::string text(reinterpret_cast<const char*>(data), size);
  Load(path, text, {});
  const size_t newline = text.find('\n');
  if (newline != std::string::npos) {
    Load(path, text.substr(newline + 1), {text.substr(0, newline)});
  }
  return 0;
}
