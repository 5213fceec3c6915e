// The oneDNN encoder program (nodes/infer/encoder_program.h) against a plain
// C++ forward of the same random-weight encoder (double accumulation,
// std::erf), for every activation, with and without token types and an
// attention bias; and its primitives built once, whatever the batch sizes.
#include "nodes/infer/encoder_program.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "nodes/infer/attention_kernel.h"

namespace nlpflow {
namespace {

using ::testing::HasSubstr;

// The weights of a small encoder, owned here; spec() points into them.
struct RandomEncoder {
  int64_t hidden = 0, head_dim = 0, ffn = 0, vocab = 50, positions = 600, types = 2;
  std::vector<int64_t> heads;  // per layer
  std::vector<std::vector<float>> store;
  ProgramSpec spec_;

  const float* Fill(int64_t n, float amp, std::mt19937* rng, float offset = 0) {
    std::normal_distribution<float> normal(0.0f, amp);
    store.emplace_back(n);
    for (float& x : store.back()) x = offset + normal(*rng);
    return store.back().data();
  }

  RandomEncoder(int64_t hidden_size, int64_t head_dim_, int64_t ffn_, std::vector<int64_t> heads_,
                Activation act, bool token_types, uint32_t seed)
      : hidden(hidden_size), head_dim(head_dim_), ffn(ffn_), heads(std::move(heads_)) {
    std::mt19937 rng(seed);
    store.reserve(64);
    spec_.hidden = hidden;
    spec_.head_dim = head_dim;
    spec_.layer_norm_eps = 1e-12;
    spec_.activation = act;
    spec_.word_embeddings = Fill(vocab * hidden, 1.0f, &rng);
    spec_.vocab_size = vocab;
    spec_.position_embeddings = Fill(positions * hidden, 0.5f, &rng);
    spec_.max_positions = positions;
    if (token_types) {
      spec_.token_type_embeddings = Fill(types * hidden, 0.5f, &rng);
      spec_.type_vocab_size = types;
    }
    auto norm = [&] { return ProgramNorm{Fill(hidden, 0.2f, &rng, 1.0f), Fill(hidden, 0.1f, &rng)}; };
    auto linear = [&](int64_t out, int64_t in) {
      return ProgramLinear{Fill(out * in, 1.0f / std::sqrt(static_cast<float>(in)), &rng),
                           Fill(out, 0.1f, &rng), out, in};
    };
    spec_.embedding_norm = norm();
    for (int64_t h : heads) {
      const int64_t a = h * head_dim;
      ProgramLayer l;
      l.heads = h;
      l.qkv = linear(3 * a, hidden);
      l.attention_out = linear(hidden, a);
      l.attention_norm = norm();
      l.intermediate = linear(ffn, hidden);
      l.output = linear(hidden, ffn);
      l.output_norm = norm();
      spec_.layers.push_back(l);
    }
  }
  const ProgramSpec& spec() const { return spec_; }
};

double Act(Activation act, double x) {
  switch (act) {
    case Activation::kGeluErf: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case Activation::kGeluTanh:
      return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case Activation::kRelu: return std::max(0.0, x);
    case Activation::kSilu: return x / (1 + std::exp(-x));
  }
  return 0;
}

// y[t] = x[t] W^T + b, row-major [n, out].
std::vector<float> Linear(const ProgramLinear& l, const std::vector<float>& x, int64_t n) {
  std::vector<float> y(n * l.out);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t o = 0; o < l.out; ++o) {
      double acc = l.bias[o];
      for (int64_t i = 0; i < l.in; ++i) acc += static_cast<double>(x[t * l.in + i]) * l.weight[o * l.in + i];
      y[t * l.out + o] = static_cast<float>(acc);
    }
  }
  return y;
}

void Norm(const ProgramNorm& nrm, int64_t h, double eps, std::vector<float>* x) {
  for (size_t t = 0; t < x->size() / h; ++t) {
    float* row = x->data() + t * h;
    double mean = 0, var = 0;
    for (int64_t j = 0; j < h; ++j) mean += row[j];
    mean /= h;
    for (int64_t j = 0; j < h; ++j) var += (row[j] - mean) * (row[j] - mean);
    var /= h;
    for (int64_t j = 0; j < h; ++j) {
      row[j] = static_cast<float>((row[j] - mean) / std::sqrt(var + eps) * nrm.weight[j] + nrm.bias[j]);
    }
  }
}

std::vector<float> ReferenceForward(const ProgramSpec& s, const PackedTokens& tokens,
                                    const float* bias, int64_t bias_head_stride,
                                    int64_t bias_row_stride) {
  const int64_t n = tokens.tokens(), h = s.hidden;
  std::vector<float> x(n * h);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t j = 0; j < h; ++j) {
      float v = s.word_embeddings[tokens.ids[t] * h + j];
      if (s.token_type_embeddings != nullptr) v += s.token_type_embeddings[tokens.type_ids[t] * h + j];
      x[t * h + j] = v + s.position_embeddings[tokens.positions[t] * h + j];
    }
  }
  Norm(s.embedding_norm, h, s.layer_norm_eps, &x);
  for (const ProgramLayer& l : s.layers) {
    const int64_t a = l.heads * s.head_dim;
    const std::vector<float> qkv = Linear(l.qkv, x, n);
    std::vector<float> context(n * a);
    AttentionArgs args;
    args.qkv = qkv.data();
    args.qkv_stride = 3 * a;
    args.k_offset = a;
    args.v_offset = 2 * a;
    args.out = context.data();
    args.out_stride = a;
    args.heads = l.heads;
    args.head_dim = s.head_dim;
    args.lengths = tokens.lengths.data();
    args.rows = tokens.rows;
    args.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
    args.bias = bias;
    args.bias_head_stride = bias_head_stride;
    args.bias_row_stride = bias_row_stride;
    ReferenceAttention(args);
    std::vector<float> y = Linear(l.attention_out, context, n);
    for (int64_t i = 0; i < n * h; ++i) y[i] += x[i];
    Norm(l.attention_norm, h, s.layer_norm_eps, &y);
    x = y;
    std::vector<float> inter = Linear(l.intermediate, x, n);
    for (float& v : inter) v = static_cast<float>(Act(s.activation, v));
    y = Linear(l.output, inter, n);
    for (int64_t i = 0; i < n * h; ++i) y[i] += x[i];
    Norm(l.output_norm, h, s.layer_norm_eps, &y);
    x = y;
  }
  return x;
}

PackedTokens RandomTokens(const std::vector<int64_t>& lengths, int64_t vocab, int64_t types,
                          std::mt19937* rng) {
  PackedTokens t;
  t.rows = static_cast<int64_t>(lengths.size());
  t.lengths = lengths;
  for (int64_t len : lengths) {
    for (int64_t p = 0; p < len; ++p) {
      t.ids.push_back(static_cast<int64_t>((*rng)() % vocab));
      t.type_ids.push_back(static_cast<int64_t>((*rng)() % types));
      t.positions.push_back(p + 2);  // an offset, as RoBERTa's position ids have
    }
  }
  return t;
}

double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, static_cast<double>(std::fabs(a[i] - b[i])));
  return d;
}

TEST(EncoderProgramTest, MatchesPlainForwardForEveryActivation) {
  std::mt19937 rng(3);
  for (Activation act : {Activation::kGeluErf, Activation::kGeluTanh, Activation::kRelu,
                         Activation::kSilu}) {
    // Odd sizes: head_dim 13, a pruned layer with fewer heads.
    const RandomEncoder enc(52, 13, 70, {4, 2}, act, /*token_types=*/true, 11);
    auto program = EncoderProgram::Create(enc.spec());
    ASSERT_TRUE(program.ok()) << program.status().ToString();
    const PackedTokens tokens = RandomTokens({5, 1, 33, 17}, enc.vocab, enc.types, &rng);
    std::vector<float> got(tokens.tokens() * enc.hidden);
    (*program)->Run(tokens, got.data());
    const double d = MaxDiff(got, ReferenceForward(enc.spec(), tokens, nullptr, 0, 0));
    EXPECT_LE(d, 2e-4) << "activation " << static_cast<int>(act);
  }
}

TEST(EncoderProgramTest, WithoutTokenTypesAndWithAnAttentionBias) {
  std::mt19937 rng(4);
  const RandomEncoder enc(64, 16, 128, {4, 4, 4}, Activation::kGeluErf, /*token_types=*/false, 12);
  auto program = EncoderProgram::Create(enc.spec());
  ASSERT_TRUE(program.ok()) << program.status().ToString();
  const int64_t max_len = 40;
  std::vector<float> bias(4 * max_len * max_len);
  std::normal_distribution<float> normal;
  for (float& b : bias) b = normal(rng);
  const PackedTokens tokens = RandomTokens({40, 7, 12}, enc.vocab, 1, &rng);
  std::vector<float> got(tokens.tokens() * enc.hidden);
  (*program)->Run(tokens, got.data(), bias.data(), max_len * max_len, max_len);
  const std::vector<float> want =
      ReferenceForward(enc.spec(), tokens, bias.data(), max_len * max_len, max_len);
  EXPECT_LE(MaxDiff(got, want), 2e-4);
  // The bias matters: without it the result differs.
  std::vector<float> unbiased(got.size());
  (*program)->Run(tokens, unbiased.data());
  EXPECT_GT(MaxDiff(unbiased, want), 1e-2);
}

TEST(EncoderProgramTest, PrimitivesAreBuiltOnceForEveryBatchSize) {
  std::mt19937 rng(5);
  const RandomEncoder enc(32, 8, 64, {4, 4}, Activation::kGeluErf, true, 13);
  auto program = EncoderProgram::Create(enc.spec());
  ASSERT_TRUE(program.ok());
  // 4 Linears per layer, one primitive per row tile (tiles whose weight layout
  // differs from the smallest's are not made, so at most this many).
  const int64_t built = (*program)->primitives_created();
  EXPECT_GE(built, 4 * 2);
  EXPECT_LE(built, 4 * 2 * static_cast<int64_t>(std::size(EncoderProgram::kRowTiles)));
  EXPECT_THAT((*program)->Describe(), HasSubstr("matmul"));
  // Token counts below, at and across every tile: 1, 16, 17, 64, 300, 700.
  const std::vector<std::vector<int64_t>> batches = {
      {1}, {16}, {9, 8}, {64}, {100, 100, 100}, {300, 300, 50, 50}, {3}};
  for (const auto& lengths : batches) {
    const PackedTokens tokens = RandomTokens(lengths, enc.vocab, enc.types, &rng);
    std::vector<float> got(tokens.tokens() * enc.hidden);
    (*program)->Run(tokens, got.data());
    EXPECT_LE(MaxDiff(got, ReferenceForward(enc.spec(), tokens, nullptr, 0, 0)), 2e-4)
        << tokens.tokens() << " tokens";
    EXPECT_EQ((*program)->primitives_created(), built) << tokens.tokens() << " tokens";
  }
}

TEST(EncoderProgramTest, RowsDoNotDependOnTheirBatch) {
  // The same row alone and in a batch of others: equal to fp32 rounding of
  // the GEMM blocking, as the ATen path promised.
  std::mt19937 rng(6);
  const RandomEncoder enc(48, 12, 96, {4}, Activation::kGeluErf, true, 14);
  auto program = EncoderProgram::Create(enc.spec());
  ASSERT_TRUE(program.ok());
  const PackedTokens batch = RandomTokens({20, 9, 31}, enc.vocab, enc.types, &rng);
  PackedTokens alone;
  alone.rows = 1;
  alone.lengths = {9};
  alone.ids.assign(batch.ids.begin() + 20, batch.ids.begin() + 29);
  alone.type_ids.assign(batch.type_ids.begin() + 20, batch.type_ids.begin() + 29);
  alone.positions.assign(batch.positions.begin() + 20, batch.positions.begin() + 29);
  std::vector<float> all(batch.tokens() * enc.hidden), one(alone.tokens() * enc.hidden);
  (*program)->Run(batch, all.data());
  (*program)->Run(alone, one.data());
  EXPECT_LE(MaxDiff(one, std::vector<float>(all.begin() + 20 * enc.hidden,
                                            all.begin() + 29 * enc.hidden)),
            1e-5);
}

TEST(EncoderProgramTest, LoneBatchThreadsSplitAmongRunningBatches) {
  EXPECT_EQ(EncoderProgram::ThreadsFor(2, 1), 2);  // idle pipeline: both cores
  EXPECT_EQ(EncoderProgram::ThreadsFor(2, 2), 1);  // loaded: one per instance
  EXPECT_EQ(EncoderProgram::ThreadsFor(2, 5), 1);
  EXPECT_EQ(EncoderProgram::ThreadsFor(8, 3), 2);
  EXPECT_EQ(EncoderProgram::ThreadsFor(1, 1), 1);
  // A lone batch on 2 threads computes what it does on 1, and the calling
  // thread's own setting is restored.
  std::mt19937 rng(7);
  const RandomEncoder enc(64, 16, 128, {4, 4}, Activation::kGeluErf, true, 16);
  auto program = EncoderProgram::Create(enc.spec());
  ASSERT_TRUE(program.ok());
  const PackedTokens tokens = RandomTokens({70, 33, 5}, enc.vocab, enc.types, &rng);
  std::vector<float> one(tokens.tokens() * enc.hidden), two(one.size());
  omp_set_num_threads(1);
  (*program)->Run(tokens, one.data());
  (*program)->SetLoneBatchThreads(2);
  (*program)->Run(tokens, two.data());
  EXPECT_EQ(omp_get_max_threads(), 1);
  EXPECT_LE(MaxDiff(one, two), 1e-6);
}

// Dynamic int8 (ProgramSpec::int8): every token's hidden state close to the
// fp32 reference in direction, for every activation, 8- and 7-bit codes, with
// smoothing on qkv and intermediate; per-row scales make a row's result
// independent of its batch; primitives built once.
TEST(EncoderProgramTest, Int8IsCloseToThePlainForward) {
  std::mt19937 rng(8);
  for (Activation act : {Activation::kGeluErf, Activation::kGeluTanh, Activation::kRelu,
                         Activation::kSilu}) {
    for (int bits : {8, 7}) {
      RandomEncoder enc(64, 16, 160, {4, 2}, act, /*token_types=*/true, 17);
      std::vector<float> smooth_qkv(64), smooth_inter(64);
      std::uniform_real_distribution<float> uniform(0.5f, 2.0f);
      for (float& v : smooth_qkv) v = uniform(rng);
      for (float& v : smooth_inter) v = uniform(rng);
      ProgramSpec spec = enc.spec();
      spec.int8 = true;
      spec.activation_bits = bits;
      for (ProgramLayer& l : spec.layers) {
        l.qkv.input_smoothing = smooth_qkv.data();
        l.intermediate.input_smoothing = smooth_inter.data();
      }
      auto program = EncoderProgram::Create(spec);
      ASSERT_TRUE(program.ok()) << program.status().ToString();
      EXPECT_THAT((*program)->Describe(), HasSubstr("int8"));
      const int64_t built = (*program)->primitives_created();
      const PackedTokens tokens = RandomTokens({5, 1, 33, 17, 300}, enc.vocab, enc.types, &rng);
      std::vector<float> got(tokens.tokens() * enc.hidden);
      (*program)->Run(tokens, got.data());
      const std::vector<float> want = ReferenceForward(enc.spec(), tokens, nullptr, 0, 0);
      double worst = 1;
      for (int64_t t = 0; t < tokens.tokens(); ++t) {
        double dot = 0, a = 0, b = 0;
        for (int64_t j = 0; j < enc.hidden; ++j) {
          dot += got[t * enc.hidden + j] * want[t * enc.hidden + j];
          a += got[t * enc.hidden + j] * got[t * enc.hidden + j];
          b += want[t * enc.hidden + j] * want[t * enc.hidden + j];
        }
        worst = std::min(worst, dot / std::sqrt(a * b));
      }
      EXPECT_GE(worst, bits == 8 ? 0.999 : 0.995)
          << "activation " << static_cast<int>(act) << ", " << bits << " bits";
      // Far from fp32 rounding: it is int8.
      EXPECT_GT(MaxDiff(got, want), 1e-4);
      // Token 5 (the 1-token row) alone: the same codes, the same result.
      PackedTokens alone;
      alone.rows = 1;
      alone.lengths = {1};
      alone.ids = {tokens.ids[5]};
      alone.type_ids = {tokens.type_ids[5]};
      alone.positions = {tokens.positions[5]};
      std::vector<float> one(enc.hidden);
      (*program)->Run(alone, one.data());
      EXPECT_LE(MaxDiff(one, std::vector<float>(got.begin() + 5 * enc.hidden,
                                                got.begin() + 6 * enc.hidden)),
                1e-5);
      EXPECT_EQ((*program)->primitives_created(), built);
    }
  }
}

TEST(EncoderProgramTest, RejectsShapesThatDoNotChain) {
  RandomEncoder enc(32, 8, 64, {4}, Activation::kGeluErf, true, 15);
  ProgramSpec spec = enc.spec();
  spec.layers[0].attention_out.in = 31;
  auto program = EncoderProgram::Create(spec);
  ASSERT_FALSE(program.ok());
  EXPECT_THAT(program.status().message(), HasSubstr("layer 0: Linear shapes do not chain"));
  EXPECT_THAT(ParseActivation("gelu_fast").status().message(),
              HasSubstr("hidden_act 'gelu_fast' is not one of"));
}

}  // namespace
}  // namespace nlpflow
