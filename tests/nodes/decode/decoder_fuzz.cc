// libFuzzer target: random bytes as the payload of a record, decoded as each
// of the three input formats (text, JSON, Protobuf), with the default limits
// and with a small max_record_bytes. Built with clang and
// -fsanitize=fuzzer,address,undefined (nlpflow_add_fuzzer in
// tests/CMakeLists.txt); any crash, sanitizer report or broken invariant fails:
// a decoded record has non-blank, valid UTF-8 text and an id and attributes
// that are valid UTF-8 (the JSON encoder copies them into its output); a
// rejected one is failed at stage decode with a one-line reason.
//
// Short run: ctest -R decoder_fuzz (NLPFLOW_FUZZ_SECONDS). Longer, by hand,
// from the repo root:
//   B=build/tests/nodes/decode
//   $B/decoder_fuzz -max_total_time=3600 -max_len=4096 -timeout=10 -jobs=2 \
//       $B/decoder_fuzz_corpus tests/nodes/decode/fuzz_seeds
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "nodes/decode/decoder.h"

namespace {

void Require(bool ok, const char* what, const nlpflow::Record& r) {
  if (ok) return;
  std::fprintf(stderr, "decoder_fuzz: %s (reason '%s')\n", what, r.failure_reason.c_str());
  std::abort();
}

void DecodeAs(const nlpflow::Decoder& decoder, const std::string& payload) {
  nlpflow::Record r;
  r.payload = payload;
  const bool decoded = decoder.Decode(&r);
  Require(decoded != r.failed, "Decode's result and record.failed disagree", r);
  if (!decoded) {
    Require(r.failed_stage == nlpflow::Stage::kDecode, "failed at another stage", r);
    Require(!r.failure_reason.empty(), "empty reason", r);
    Require(r.failure_reason.find('\n') == std::string::npos, "reason of several lines", r);
    return;
  }
  Require(!r.text.empty(), "empty text accepted", r);
  Require(nlpflow::FindInvalidUtf8(r.text) < 0, "invalid UTF-8 text accepted", r);
  Require(nlpflow::FindInvalidUtf8(r.id) < 0, "invalid UTF-8 id accepted", r);
  for (const auto& [k, v] : r.attributes) {
    Require(nlpflow::FindInvalidUtf8(k) < 0 && nlpflow::FindInvalidUtf8(v) < 0,
            "invalid UTF-8 attribute accepted", r);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* decoders = [] {
    // Protobuf logs every string field with invalid UTF-8 it rejects.
    google::protobuf::SetLogHandler(
        [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
    auto* d = new std::vector<nlpflow::Decoder>();
    for (auto format : {nlpflow::InputFormat::kText, nlpflow::InputFormat::kJson,
                        nlpflow::InputFormat::kProtobuf}) {
      nlpflow::DecodeOptions o;
      o.format = format;
      d->emplace_back(o);
      o.max_record_bytes = 16;
      d->emplace_back(o);
    }
    return d;
  }();
  const std::string payload(reinterpret_cast<const char*>(data), size);
  for (const auto& decoder : *decoders) DecodeAs(decoder, payload);
  return 0;
}
