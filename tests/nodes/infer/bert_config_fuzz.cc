// libFuzzer target: random bytes as a model folder's config.json, parsed by
// ParseBertConfig. Built with clang and -fsanitize=fuzzer,address,undefined
// (nlpflow_add_fuzzer in tests/CMakeLists.txt); any crash, uncaught
// exception, sanitizer report or broken invariant fails: an error is one line;
// a config that parses has positive sizes, a hidden size its heads divide,
// and one entry per layer in each per-layer list.
//
// Short run: ctest -R bert_config_fuzz (NLPFLOW_FUZZ_SECONDS). Longer, by
// hand, from the repo root:
//   B=build/tests/nodes/infer
//   $B/bert_config_fuzz -max_total_time=3600 -max_len=4096 -timeout=10 -jobs=2 \
//       $B/bert_config_fuzz_corpus tests/nodes/infer/bert_config_fuzz_seeds
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "nodes/infer/bert_config.h"

namespace {

void Require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "bert_config_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = nlpflow::ParseBertConfig(text, "config.json");
  if (!config.ok()) {
    const std::string& m = config.status().message();
    Require(!m.empty(), "empty error");
    Require(m.find('\n') == std::string::npos, "error of several lines");
    return 0;
  }
  const nlpflow::BertConfig& c = *config;
  Require(c.vocab_size > 0 && c.hidden_size > 0 && c.num_hidden_layers > 0 &&
              c.num_attention_heads > 0 && c.intermediate_size > 0,
          "a size that is not positive");
  Require(c.hidden_size % c.num_attention_heads == 0, "heads do not divide the hidden size");
  Require(c.max_position_embeddings > 0 && c.type_vocab_size > 0, "bad embedding sizes");
  for (const auto* per_layer : {&c.layer_intermediate_sizes, &c.layer_attention_heads}) {
    Require(per_layer->empty() ||
                per_layer->size() == static_cast<size_t>(c.num_hidden_layers),
            "a per-layer list of another length");
    for (int64_t v : *per_layer) Require(v >= 1, "a per-layer size below 1");
  }
  return 0;
}
