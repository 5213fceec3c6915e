// A token batch for the model benchmarks (embedding_model_bench,
// encoder_profile): `batch` rows of exactly `seq` tokens, [CLS], random
// ordinary WordPiece ids, [SEP]; no padding.
#pragma once

#include <cstdint>
#include <random>

#include "nodes/infer/embedding_model.h"

namespace nlpflow::bench {

inline TokenBatch RandomTokenBatch(int64_t batch, int64_t seq, std::mt19937& rng) {
  std::uniform_int_distribution<int64_t> word(1996, 29611);  // ordinary WordPiece tokens
  TokenBatch b;
  b.batch = batch;
  b.seq_len = seq;
  for (int64_t r = 0; r < batch; ++r) {
    for (int64_t t = 0; t < seq; ++t) {
      b.input_ids.push_back(t == 0 ? 101 : t == seq - 1 ? 102 : word(rng));
      b.attention_mask.push_back(1);
    }
  }
  return b;
}

}  // namespace nlpflow::bench
