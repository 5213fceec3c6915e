// libFuzzer target: random bytes as a model.safetensors file, opened by
// SafetensorsFile::Open (the header reader) and, when it opens, every float
// tensor read with ReadFloat32. Built with clang and
// -fsanitize=fuzzer,address,undefined (nlpflow_add_fuzzer in
// tests/CMakeLists.txt); any crash, uncaught exception, sanitizer report or
// broken invariant fails: an error is one line; an opened file's tensors lie
// inside the file, after its header, and hold dtype x shape bytes.
//
// Short run: ctest -R safetensors_fuzz (NLPFLOW_FUZZ_SECONDS). Longer, by
// hand, from the repo root:
//   B=build/tests/nodes/infer
//   $B/safetensors_fuzz -max_total_time=3600 -max_len=4096 -timeout=10 -jobs=2 \
//       $B/safetensors_fuzz_corpus tests/nodes/infer/safetensors_fuzz_seeds
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "nodes/infer/safetensors.h"

namespace {

void Require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "safetensors_fuzz: %s\n", what);
  std::abort();
}

size_t DTypeSize(nlpflow::SafetensorsDType d) {
  using D = nlpflow::SafetensorsDType;
  switch (d) {
    case D::kF64: case D::kI64: return 8;
    case D::kF32: case D::kI32: return 4;
    case D::kF16: case D::kBF16: case D::kI16: return 2;
    case D::kI8: case D::kU8: case D::kBool: return 1;
    case D::kUnknown: return 0;
  }
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path =
      "/tmp/nlpflow_safetensors_fuzz_" + std::to_string(::getpid()) + ".safetensors";
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto file = nlpflow::SafetensorsFile::Open(path);
  if (!file.ok()) {
    const std::string& m = file.status().message();
    Require(!m.empty(), "empty error");
    Require(m.find('\n') == std::string::npos, "error of several lines");
    return 0;
  }
  Require(size >= 8, "opened a file shorter than its length prefix");
  uint64_t header_len;
  std::memcpy(&header_len, data, 8);
  const size_t data_begin = 8 + static_cast<size_t>(header_len);
  for (const auto& [name, t] : (*file)->tensors()) {
    Require(name == t.name, "a tensor filed under another name");
    Require((*file)->Find(name) == &t, "Find does not find a tensor");
    Require(t.nbytes <= size - data_begin, "a tensor larger than the data");
    if (const size_t s = DTypeSize(t.dtype); s != 0) {
      Require(t.nbytes == static_cast<size_t>(t.numel) * s, "bytes are not dtype x shape");
    }
    if (t.nbytes > 0) {
      // Touch the first and last byte: ASan does not see the mapping, but a
      // range outside it faults.
      volatile std::byte first = t.data[0], last = t.data[t.nbytes - 1];
      (void)first;
      (void)last;
    }
    using D = nlpflow::SafetensorsDType;
    if (t.dtype == D::kF32 || t.dtype == D::kF16 || t.dtype == D::kBF16) {
      std::vector<float> out(static_cast<size_t>(t.numel));
      Require((*file)->ReadFloat32(t, out).ok(), "a float tensor that cannot be read");
    }
  }
  return 0;
}
