// libFuzzer target: random bytes into every tokenizer (WordPiece, byte-level
// BPE, and Unigram: the SentencePiece file with byte_fallback and the
// tokenizers-trained one, which the parity reference trains into
// <build>/tokenize_parity; ctest runs that first), single texts and pairs. Built with clang and
// -fsanitize=fuzzer,address,undefined (tests/nodes/tokenize/CMakeLists.txt);
// any crash, sanitizer report or broken invariant fails.
//
// Short run: ctest -L fuzz (NLPFLOW_FUZZ_SECONDS, 30 s by default). Longer, by
// hand, from the repo root:
//   B=build/tests/nodes/tokenize
//   $B/tokenizer_fuzz -max_total_time=3600 -max_len=4096 -timeout=10 -jobs=2 \
//       $B/tokenizer_fuzz_corpus tests/nodes/tokenize/fuzz_seeds
// (the first folder collects the inputs it finds; a crash leaves crash-<sha>
// in the working folder, or under -artifact_prefix; replay with
// `tokenizer_fuzz crash-<sha>`).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "nodes/tokenize/tokenizer.h"

namespace {

std::unique_ptr<nlpflow::Tokenizer> Load(const std::string& path) {
  auto loaded = nlpflow::LoadTokenizer(path);
  if (!loaded.ok()) {
    fprintf(stderr, "tokenizer_fuzz: %s\n", loaded.status().ToString().c_str());
    std::abort();
  }
  return std::move(loaded->tokenizer);
}

// Ids in range, offsets inside the text they point into (for a pair, a or b:
// type ids do not tell which, RoBERTa's are all 0).
void Check(const nlpflow::Tokenizer& t, const nlpflow::Encoding& e, size_t text_size) {
  if (e.ids.size() != e.offsets.size() || e.ids.size() != e.type_ids.size()) std::abort();
  for (size_t i = 0; i < e.ids.size(); ++i) {
    if (e.ids[i] < 0 || static_cast<size_t>(e.ids[i]) >= t.vocab_size()) std::abort();
    const auto [begin, end] = e.offsets[i];
    if (begin < 0 || end < begin || static_cast<size_t>(end) > text_size) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto wordpiece = Load(NLPFLOW_FUZZ_WORDPIECE);
  static const auto bpe = Load(NLPFLOW_FUZZ_BPE);
  static const auto unigram_spm =
      Load(std::string(NLPFLOW_FUZZ_UNIGRAM_DIR) + "/unigram_spm_bytes.json");
  static const auto unigram_hf = Load(std::string(NLPFLOW_FUZZ_UNIGRAM_DIR) + "/unigram_hf.json");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string_view a = text.substr(0, size / 2);
  const std::string_view b = text.substr(size / 2);
  for (const nlpflow::Tokenizer* t :
       {wordpiece.get(), bpe.get(), unigram_spm.get(), unigram_hf.get()}) {
    Check(*t, t->Encode(text), text.size());
    Check(*t, t->EncodePair(a, b), std::max(a.size(), b.size()));
  }
  return 0;
}
