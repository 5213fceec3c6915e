// nodes/compress on tiny models: the trainable BERT against the runtime, the
// safetensors writer, distill / prune / quantize artifacts loading in the
// runtime with the expected shapes and precisions, the histogram observer,
// the metrics on hand-computed cases, and the errors for bad input.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "nodes/compress/distiller.h"
#include "nodes/compress/evaluator.h"
#include "nodes/compress/pruner.h"
#include "nodes/compress/quantizer.h"
#include "nodes/compress/safetensors_writer.h"
#include "nodes/compress/student_bert.h"
#include "nodes/infer/bert_config.h"
#include "nodes/infer/embedding_model.h"
#include "nodes/infer/safetensors.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kFixture = std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/heads/sequence";
const std::string kMiniLm = std::string(NLPFLOW_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";

std::string TempDir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() /
                     ("nlpflow_compress_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  return p.string();
}

// A 4-layer teacher (hidden 32, 4 heads, FFN 64): the fixture's two layers,
// twice. Written once per process.
const std::string& Teacher4() {
  static const std::string dir = [] {
    const std::string d = TempDir("teacher4");
    auto s = StudentBert::Load(kFixture);
    EXPECT_TRUE(s.ok()) << s.status().message();
    EXPECT_TRUE(s->KeepLayers({0, 1, 0, 1}).ok());
    EXPECT_TRUE(s->Save(d, kFixture).ok());
    return d;
  }();
  return dir;
}

std::unique_ptr<EmbeddingModel> LoadRuntime(const std::string& dir) {
  ModelOptions o;
  o.path = dir;
  auto m = EmbeddingModel::Load(o);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

// Random texts: [CLS] ids [SEP], 3 to 20 tokens, ids from the fixture's vocab.
std::vector<std::vector<int32_t>> RandomIds(int n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> out;
  for (int i = 0; i < n; ++i) {
    const int len = 3 + static_cast<int>(rng() % 18);
    std::vector<int32_t> ids = {2};
    for (int t = 1; t < len - 1; ++t) ids.push_back(5 + static_cast<int32_t>(rng() % (vocab - 5)));
    ids.push_back(3);
    out.push_back(ids);
  }
  return out;
}

TokenBatch ToBatch(const std::vector<std::vector<int32_t>>& rows) {
  TokenBatch b;
  b.batch = static_cast<int64_t>(rows.size());
  for (const auto& r : rows) b.seq_len = std::max<int64_t>(b.seq_len, r.size());
  for (const auto& r : rows) {
    for (int64_t t = 0; t < b.seq_len; ++t) {
      const bool real = t < static_cast<int64_t>(r.size());
      b.input_ids.push_back(real ? r[t] : 0);
      b.attention_mask.push_back(real ? 1 : 0);
    }
  }
  return b;
}

std::vector<float> StudentEmbed(const StudentBert& s, const std::vector<std::vector<int32_t>>& rows) {
  c10::NoGradGuard no_grad;
  std::vector<const std::vector<int32_t>*> ptrs;
  for (const auto& r : rows) ptrs.push_back(&r);
  auto [ids, mask] = PadIds(ptrs);
  const at::Tensor out = s.Forward(ids, mask).contiguous();
  return std::vector<float>(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
}

std::vector<DistillExample> TeacherExamples(const std::string& teacher, int n, uint32_t seed) {
  auto model = LoadRuntime(teacher);
  std::vector<DistillExample> out;
  for (const auto& ids : RandomIds(n, 100, seed)) {
    auto e = model->Embed(ToBatch({ids}));
    EXPECT_TRUE(e.ok());
    out.push_back({ids, *e});
  }
  return out;
}

TEST(SafetensorsWriter, RoundTripsThroughTheReader) {
  const std::string dir = TempDir("st");
  fs::create_directories(dir);
  const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -0.125f};
  const std::vector<float> b = {42.0f};
  ASSERT_TRUE(WriteSafetensors(dir + "/x.safetensors",
                               {{"b", {1}, b.data()}, {"a", {2, 3}, a.data()}}, {{"k", "v"}})
                  .ok());
  auto file = SafetensorsFile::Open(dir + "/x.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().message();
  const SafetensorsTensor* t = (*file)->Find("a");
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(t->shape, ElementsAre(2, 3));
  std::vector<float> back(6);
  ASSERT_TRUE((*file)->ReadFloat32(*t, back).ok());
  EXPECT_EQ(back, a);
  EXPECT_EQ((*file)->metadata().at("k"), "v");
  const Status dup = WriteSafetensors(dir + "/y.safetensors",
                                      {{"a", {1}, b.data()}, {"a", {1}, b.data()}});
  EXPECT_THAT(dup.message(), HasSubstr("tensor 'a' given twice"));
}

void ExpectForwardMatchesRuntime(const std::string& dir, int64_t vocab) {
  auto student = StudentBert::Load(dir);
  ASSERT_TRUE(student.ok()) << student.status().message();
  auto runtime = LoadRuntime(dir);
  const auto rows = RandomIds(9, vocab, 7);  // mixed lengths: padding in the student
  const std::vector<float> mine = StudentEmbed(*student, rows);
  auto theirs = runtime->Embed(ToBatch(rows));
  ASSERT_TRUE(theirs.ok());
  ASSERT_EQ(mine.size(), theirs->size());
  double worst = 0;
  for (size_t i = 0; i < mine.size(); ++i) worst = std::max(worst, std::abs(double(mine[i]) - (*theirs)[i]));
  EXPECT_LT(worst, 1e-5);
}

TEST(StudentBert, ForwardEqualsTheRuntimeOnTheSameWeights) {
  ExpectForwardMatchesRuntime(kFixture, 100);
}

TEST(StudentBert, ForwardEqualsTheRuntimeOnMiniLm) {
  if (!fs::exists(kMiniLm + "/model.safetensors")) GTEST_SKIP() << "no " << kMiniLm;
  ExpectForwardMatchesRuntime(kMiniLm, 30522);
}

TEST(StudentBert, SavedFolderLoadsAndComputesTheSame) {
  auto teacher = LoadRuntime(Teacher4());
  auto student = StudentBert::Load(Teacher4());
  ASSERT_TRUE(student.ok());
  EXPECT_EQ(student->config().num_hidden_layers, 4);
  const auto rows = RandomIds(4, 100, 3);
  auto e = teacher->Embed(ToBatch(rows));
  ASSERT_TRUE(e.ok());
  const auto mine = StudentEmbed(*student, rows);
  for (size_t i = 0; i < mine.size(); ++i) EXPECT_NEAR(mine[i], (*e)[i], 1e-5);
}

TEST(Distill, LossFallsAndTheStudentLoadsInTheRuntime) {
  const auto examples = TeacherExamples(Teacher4(), 300, 11);
  DistillOptions o;
  o.teacher_dir = Teacher4();
  o.out_dir = TempDir("student");
  o.layers = 2;
  o.train.epochs = 1;
  o.train.batch_size = 16;
  o.train.learning_rate = 3e-3;
  o.train.checkpoint_dir = o.out_dir + "/checkpoints";
  auto report = Distill(o, examples);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->steps, 19);  // ceil(300 / 16)
  EXPECT_LT(report->last_loss, 0.7 * report->first_loss)
      << report->first_loss << " -> " << report->last_loss;
  EXPECT_THAT(StudentLayerIndices(4, 2), ElementsAre(1, 3));
  auto student = LoadRuntime(o.out_dir);
  ASSERT_NE(student, nullptr);
  EXPECT_THAT(student->DescribeLinears(),
              ::testing::Contains(HasSubstr("1 intermediate Float none [64, 32]")));
  EXPECT_EQ(student->DescribeLinears().size(), 8u);  // 2 layers x 4
  EXPECT_TRUE(fs::exists(o.out_dir + "/checkpoints/epoch-1/model.safetensors"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/tokenizer.json"));
}

TEST(Distill, TokenLossAddsTheTeachersTokenStatesAndStillFalls) {
  const auto examples = TeacherExamples(Teacher4(), 160, 14);
  auto teacher = StudentBert::Load(Teacher4());
  ASSERT_TRUE(teacher.ok());
  auto first_step_loss = [&](double weight, TrainReport* out) {
    auto student = StudentBert::Load(Teacher4());
    EXPECT_TRUE(student.ok());
    EXPECT_TRUE(student->KeepLayers({1, 3}).ok());
    TrainOptions t;
    t.epochs = 2;
    t.batch_size = 16;
    t.learning_rate = 3e-3;
    t.teacher = &*teacher;
    t.token_loss_weight = weight;
    double first = -1;
    t.progress = [&](const TrainProgress& p) {
      if (p.step == 1) first = p.loss;
    };
    auto r = TrainStudent(&*student, examples, t, Teacher4());
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (out != nullptr && r.ok()) *out = *r;
    return first;
  };
  TrainReport with_tokens;
  const double plain = first_step_loss(0, nullptr);
  const double tokens = first_step_loss(1, &with_tokens);
  // Same seed, same first batch: the token term is added on top, and a
  // 2-of-4-layer student's token states differ from the teacher's.
  EXPECT_GT(tokens, plain + 1e-4) << plain << " vs " << tokens;
  EXPECT_LT(with_tokens.last_loss, 0.7 * with_tokens.first_loss)
      << with_tokens.first_loss << " -> " << with_tokens.last_loss;
  // A teacher's own states against themselves: the token term is zero.
  auto same = StudentBert::Load(Teacher4());
  ASSERT_TRUE(same.ok());
  c10::NoGradGuard no_grad;
  std::vector<const std::vector<int32_t>*> rows = {&examples[0].ids, &examples[1].ids};
  auto [ids, mask] = PadIds(rows);
  at::Tensor a, b;
  teacher->Forward(ids, mask, &a);
  same->Forward(ids, mask, &b);
  EXPECT_EQ(a.size(0), static_cast<int64_t>(examples[0].ids.size() + examples[1].ids.size()));
  EXPECT_TRUE(at::allclose(a, b));
}

TEST(Distill, NarrowerFfnHasThatWidth) {
  const auto examples = TeacherExamples(Teacher4(), 40, 12);
  DistillOptions o;
  o.teacher_dir = Teacher4();
  o.out_dir = TempDir("narrow");
  o.layers = 2;
  o.ffn = 24;
  auto report = Distill(o, examples);
  ASSERT_TRUE(report.ok()) << report.status().message();
  auto student = LoadRuntime(o.out_dir);
  EXPECT_THAT(student->DescribeLinears(),
              ::testing::Contains(HasSubstr("0 intermediate Float none [24, 32]")));
  EXPECT_THAT(student->DescribeLinears(),
              ::testing::Contains(HasSubstr("1 output Float none [32, 24]")));
}

TEST(Distill, BadInputsFailWithOneLine) {
  const auto examples = TeacherExamples(Teacher4(), 4, 13);
  DistillOptions o;
  o.teacher_dir = Teacher4();
  o.out_dir = TempDir("bad");
  o.layers = 5;
  EXPECT_EQ(Distill(o, examples).status().message(),
            "distill: the student must have 1 to 4 layers (the teacher's), got 5");
  o.layers = 2;
  EXPECT_EQ(Distill(o, {}).status().message(), "distill: the corpus has no texts to train on");
  o.teacher_dir = TempDir("missing");
  EXPECT_THAT(Distill(o, examples).status().message(),
              HasSubstr("model folder '" + o.teacher_dir + "' does not exist"));
}

TEST(Prune, FfnAndHeadsShrinkTheMatrices) {
  const auto calibration = RandomIds(64, 100, 21);
  PruneOptions o;
  o.model_dir = Teacher4();
  o.out_dir = TempDir("ffn");
  o.method = "ffn";
  o.amount = 0.5;
  auto r = Prune(o, calibration, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_THAT(r->ffn_sizes, ElementsAre(32, 32, 32, 32));
  auto ffn = LoadRuntime(o.out_dir);
  EXPECT_THAT(ffn->DescribeLinears(),
              ::testing::Contains(HasSubstr("3 intermediate Float none [32, 32]")));
  EXPECT_THAT(ffn->DescribeLinears(), ::testing::Contains(HasSubstr("3 output Float none [32, 32]")));

  o.out_dir = TempDir("heads");
  o.method = "heads";
  o.amount = 0.5;  // 4 heads of 8 -> 2
  r = Prune(o, calibration, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_THAT(r->heads, ElementsAre(2, 2, 2, 2));
  auto heads = LoadRuntime(o.out_dir);
  EXPECT_THAT(heads->DescribeLinears(), ::testing::Contains(HasSubstr("0 qkv Float none [48, 32]")));
  EXPECT_THAT(heads->DescribeLinears(),
              ::testing::Contains(HasSubstr("0 attention_out Float none [32, 16]")));
  // The runtime computes what the trainable model computes on the pruned shapes.
  ExpectForwardMatchesRuntime(o.out_dir, 100);
}

TEST(Prune, L1ZeroesTheSmallestWeightsAndKeepsShapes) {
  PruneOptions o;
  o.model_dir = Teacher4();
  o.out_dir = TempDir("l1");
  o.method = "l1";
  o.amount = 0.3;
  auto r = Prune(o, {}, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_NEAR(r->sparsity, 0.3, 0.01);
  auto file = SafetensorsFile::Open(o.out_dir + "/model.safetensors");
  ASSERT_TRUE(file.ok());
  const SafetensorsTensor* t = (*file)->Find("encoder.layer.0.intermediate.dense.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_THAT(t->shape, ElementsAre(64, 32));
  std::vector<float> w(t->numel);
  ASSERT_TRUE((*file)->ReadFloat32(*t, w).ok());
  const auto zeros = std::count(w.begin(), w.end(), 0.0f);
  EXPECT_EQ(zeros, static_cast<int64_t>(0.3 * 64 * 32));  // 614 of 2048

  o.recover_epochs = 1;
  EXPECT_THAT(Prune(o, {}, {}).status().message(), HasSubstr("would refill the zeros"));
  o.method = "rows";
  EXPECT_EQ(Prune(o, {}, {}).status().message(),
            "prune: method 'rows' is not one of l1, ffn, heads");
}

TEST(Quantize, StaticAndDynamicFoldersRunInt8InTheRuntime) {
  const auto calibration = RandomIds(64, 100, 31);
  auto fp32 = LoadRuntime(Teacher4());
  const auto rows = RandomIds(16, 100, 32);
  auto reference = fp32->Embed(ToBatch(rows));
  ASSERT_TRUE(reference.ok());
  for (const std::string mode : {"static", "dynamic"}) {
    QuantizeOptions o;
    o.model_dir = Teacher4();
    o.out_dir = TempDir(mode);
    o.mode = mode;
    auto r = Quantize(o, calibration);
    ASSERT_TRUE(r.ok()) << r.status().message();
    auto q = LoadRuntime(o.out_dir);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->precision(), mode == "static" ? "int8-static" : "int8");
    for (const std::string& line : q->DescribeLinears()) {
      EXPECT_THAT(line, HasSubstr("QInt8 per_channel_affine")) << mode;
    }
    auto out = q->Embed(ToBatch(rows));
    ASSERT_TRUE(out.ok());
    auto cos = CompareEmbeddings(*out, *reference, q->dim());
    // This tiny random model (weights of std 0.5) is harder on int8 than
    // MiniLM: 0.94 (dynamic), 0.97 (static) measured.
    EXPECT_GT(cos->mean, 0.9) << mode;
    if (mode == "static") {
      EXPECT_EQ(r->sites.size(), 16u);  // 4 layers x 4 Linear layers
      std::ifstream f(o.out_dir + "/config.json");
      const auto spec = nlohmann::json::parse(f)["nlpflow_quantization"];
      EXPECT_EQ(spec["activation_bits"], 7);
      for (const auto& site : r->sites) {
        // The row bounds contain the quantization range's reason to exist:
        // the rows within them; the range sits inside the bounds seen.
        EXPECT_LE(site.row_lo, 0.0f) << site.name;
        EXPECT_GE(site.row_hi, 0.0f) << site.name;
        EXPECT_GE(site.input_min, site.row_lo) << site.name;
        EXPECT_LE(site.input_max, site.row_hi) << site.name;
        EXPECT_EQ(spec["activation_ranges"][site.name]["rows"][1].get<float>(), site.row_hi);
      }
      EXPECT_EQ(r->calibration_tokens, [&] {
        int64_t n = 0;
        for (const auto& c : calibration) n += static_cast<int64_t>(c.size());
        return n;
      }());
    }
  }
  QuantizeOptions o;
  o.model_dir = Teacher4();
  o.out_dir = TempDir("nocal");
  EXPECT_EQ(Quantize(o, {}).status().message(),
            "quantize: static int8 needs calibration texts (none given)");
  o.activation_bits = 9;
  EXPECT_EQ(Quantize(o, calibration).status().message(),
            "quantize: --activation-bits must be 7 or 8, got 9");
  o.activation_bits = 8;
  o.row_bound = 0.5;
  EXPECT_THAT(Quantize(o, calibration).status().message(),
              HasSubstr("quantize: --row-bound must be 0 (none) or >= 1, got 0.5"));
}

// Static int8 on the real model: every Linear's rows beyond the calibrated
// bounds run in fp32, so the result stays within 1% of fp32 on every text;
// with 8-bit activations (7-bit weights) as well. Texts (their token ids) of
// the parity fixture, up to 128 tokens: calibrated on 96, checked on 64
// others.
TEST(Quantize, StaticInt8OnMiniLmIsWithinOnePercentOfFp32) {
  if (!fs::exists(kMiniLm + "/model.safetensors")) GTEST_SKIP() << "no " << kMiniLm;
  std::ifstream f(std::string(NLPFLOW_SOURCE_DIR) +
                  "/tests/fixtures/embedding_reference_large.json");
  const auto items = nlohmann::json::parse(f)["items"];
  std::vector<std::vector<int32_t>> calibration, rows;
  for (const auto& item : items) {
    auto ids = item["input_ids"].get<std::vector<int32_t>>();
    if (ids.size() > 128) continue;
    (calibration.size() < 96 ? calibration : rows).push_back(std::move(ids));
    if (rows.size() == 64) break;
  }
  ASSERT_EQ(rows.size(), 64u);
  auto fp32 = LoadRuntime(kMiniLm);
  auto reference = fp32->Embed(ToBatch(rows));
  ASSERT_TRUE(reference.ok());
  for (const int bits : {7, 8}) {
    QuantizeOptions o;
    o.model_dir = kMiniLm;
    o.out_dir = TempDir("minilm_static_" + std::to_string(bits));
    o.activation_bits = bits;
    ASSERT_TRUE(Quantize(o, calibration).ok());
    auto q = LoadRuntime(o.out_dir);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->precision(), "int8-static");
    auto out = q->Embed(ToBatch(rows));
    ASSERT_TRUE(out.ok());
    auto cos = CompareEmbeddings(*out, *reference, q->dim());
    std::printf("static int8, %d-bit activations: cosine to fp32 mean %.5f, min %.5f\n", bits, cos->mean, cos->min);
    EXPECT_GT(cos->min, 0.99) << bits << " bits, mean " << cos->mean;
    EXPECT_GT(cos->mean, 0.995) << bits << " bits, min " << cos->min;
  }
}

TEST(HistogramObserver, ChoosesTheRangeOfLeastExpectedError) {
  // 10,000 values spread evenly over [-1, 1] and one at 100. With 16 levels,
  // the min-max range costs the bulk a step of 101/15 (total error 10,000 *
  // 6.7^2 / 12 = 37,800); clipping at 1 costs 99^2 = 9,801 once; between
  // them, hi near 27 costs about 73^2 + 10,000 * 1.8^2 / 12 = 8,100: the
  // search finds that middle. With 256 levels the min-max step error is
  // 10,000 * 0.396^2 / 12 = 131, far below any clipping: the outlier is kept.
  HistogramObserver h;
  std::vector<float> v;
  for (int i = 0; i < 10000; ++i) v.push_back(-1.0f + 2.0f * (i + 0.5f) / 10000);
  h.Observe(v.data(), static_cast<int64_t>(v.size()));
  const float outlier = 100.0f;
  h.Observe(&outlier, 1);
  EXPECT_EQ(h.count(), 10001);
  EXPECT_EQ(h.max(), 100.0f);
  const auto [lo16, hi16] = h.ChooseRange(16);
  EXPECT_GT(hi16, 20.0f);
  EXPECT_LT(hi16, 35.0f);
  EXPECT_LE(lo16, 0.0f);
  EXPECT_LT(h.ExpectedError(lo16, hi16, 16), 0.25 * h.ExpectedError(h.min(), h.max(), 16));
  EXPECT_LT(h.ExpectedError(lo16, hi16, 16), h.ExpectedError(-1.0f, 1.0f, 16));
  const auto [lo, hi] = h.ChooseRange(256);
  EXPECT_GT(hi, 95.0f);
  // No candidate on a coarse grid does better than the chosen range.
  const double best = h.ExpectedError(lo, hi);
  for (float a = -1.5f; a <= 0.0f; a += 0.1f) {
    for (float b = 0.5f; b <= 110.0f; b += 0.5f) EXPECT_GE(h.ExpectedError(a, b) * 1.0001, best);
  }
}

TEST(Metrics, F1OnAHandMadeConfusion) {
  // tp 3, fn 1, fp 2, tn 4: accuracy 7/10, precision 3/5, recall 3/4,
  // F1 = 2 * 0.6 * 0.75 / 1.35 = 2/3.
  auto m = ComputeBinaryMetrics({1, 1, 1, 1, 0, 0, 0, 0, 0, 0}, {1, 1, 1, 0, 1, 1, 0, 0, 0, 0});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->true_positives, 3);
  EXPECT_EQ(m->false_negatives, 1);
  EXPECT_EQ(m->false_positives, 2);
  EXPECT_EQ(m->true_negatives, 4);
  EXPECT_DOUBLE_EQ(m->accuracy, 0.7);
  EXPECT_DOUBLE_EQ(m->precision, 0.6);
  EXPECT_DOUBLE_EQ(m->recall, 0.75);
  EXPECT_NEAR(m->f1, 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(ComputeBinaryMetrics({0, 0}, {0, 0})->f1, 0.0);  // no positives at all
  EXPECT_THAT(ComputeBinaryMetrics({1}, {}).status().message(), HasSubstr("1 labels and 0"));
}

TEST(Metrics, CosineOfKnownVectors) {
  // Row 0 identical (1), row 1 at 90 degrees (0), row 2 opposite (-1).
  auto c = CompareEmbeddings({1, 0, 0, 1, 2, 2}, {1, 0, 1, 0, -1, -1}, 2);
  ASSERT_TRUE(c.ok());
  EXPECT_NEAR(c->mean, 0.0, 1e-12);
  EXPECT_NEAR(c->min, -1.0, 1e-12);
}

TEST(LogisticRegression, SeparatesSeparableDataAndAppliesItsScaling) {
  // Label 1 iff x0 > 5; x1 is noise. Features far from 0 mean: the stored
  // standardization must be applied to new data.
  std::vector<float> x;
  std::vector<int> y;
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) {
    const float x0 = 3.0f + 4.0f * (rng() % 1000) / 1000.0f;
    x.push_back(x0);
    x.push_back(100.0f + (rng() % 100) / 10.0f);
    y.push_back(x0 > 5.0f ? 1 : 0);
  }
  auto lr = LogisticRegression::Train(x, 2, y, {});
  ASSERT_TRUE(lr.ok());
  auto p = lr->Predict({3.2f, 105.0f, 6.8f, 101.0f});
  ASSERT_TRUE(p.ok());
  EXPECT_THAT(*p, ElementsAre(0, 1));
  auto train_pred = lr->Predict(x);
  EXPECT_GT(ComputeBinaryMetrics(y, *train_pred)->accuracy, 0.97);
}

// A head on two features: label 1 iff x0 > 0.
LogisticRegression TwoFeatureHead() {
  std::vector<float> x;
  std::vector<int> y;
  for (int i = 0; i < 40; ++i) {
    const float x0 = static_cast<float>(i - 20) + 0.5f;
    x.insert(x.end(), {x0, static_cast<float>(i % 3)});
    y.push_back(x0 > 0 ? 1 : 0);
  }
  auto lr = LogisticRegression::Train(x, 2, y, {});
  EXPECT_TRUE(lr.ok()) << lr.status().ToString();
  return *lr;
}

TEST(ScoreHead, ScoresTheVariantAndTheTeacherOnTheSameLabels) {
  const LogisticRegression head = TwoFeatureHead();
  // Truth 1, 0, 1; the variant gets all three right, the teacher the first two.
  auto s = ScoreHead(head, {1, 0, 1}, {5, 0, -5, 1, 6, 2}, {5, 0, -5, 1, -6, 2});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_DOUBLE_EQ(s->variant.accuracy, 1.0);
  EXPECT_EQ(s->teacher.true_positives, 1);
  EXPECT_EQ(s->teacher.false_negatives, 1);
  EXPECT_EQ(s->teacher.true_negatives, 1);
}

// eval returned the variant's (ok, empty) status when the teacher's
// prediction failed: the error must be the teacher's.
TEST(ScoreHead, TeacherPredictionFailureIsNamed) {
  auto s = ScoreHead(TwoFeatureHead(), {1, 0}, {5, 0, -5, 1}, {5, 0, -5});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "teacher embeddings: logistic regression: 3 values are not rows of dim 2");
}

// eval read the teacher's metrics unchecked (bad_variant_access): a teacher
// with a different number of rows than labels must be an error.
TEST(ScoreHead, TeacherMetricsFailureIsAnError) {
  auto s = ScoreHead(TwoFeatureHead(), {1, 0}, {5, 0, -5, 1}, {5, 0, -5, 1, 6, 2});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "teacher embeddings: metrics: 2 labels and 3 predictions (need the same, at least "
            "one)");
  auto v = ScoreHead(TwoFeatureHead(), {1, 0}, {5, 0}, {5, 0, -5, 1});
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.status().message(), HasSubstr("variant embeddings: metrics: 2 labels and 1"));
}

TEST(BertConfig, PerLayerSizesAreParsedAndChecked) {
  const std::string base =
      R"("vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 16)";
  auto c = ParseBertConfig("{" + base +
                               R"(, "nlpflow_intermediate_sizes": [16, 5], "nlpflow_attention_heads": [2, 1]})",
                           "c.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->intermediate_size_of(1), 5);
  EXPECT_EQ(c->attention_heads_of(1), 1);
  EXPECT_THAT(ParseBertConfig("{" + base + R"(, "nlpflow_attention_heads": [2, 3]})", "c.json")
                  .status()
                  .message(),
              HasSubstr("'nlpflow_attention_heads' has a bad entry 3 (each must be between 1 and 2)"));
  EXPECT_THAT(ParseBertConfig("{" + base + R"(, "nlpflow_quantization": {"mode": "static_int8"}})",
                              "c.json")
                  .status()
                  .message(),
              HasSubstr("static_int8 has no activation range for '0.qkv'"));
  const std::string one_layer =
      R"("vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
         "intermediate_size": 16)";
  auto spec = [&](const std::string& bits, const std::string& rows) {
    std::string sites;
    for (const char* l : {"qkv", "attention_out", "intermediate", "output"}) {
      sites += std::string(sites.empty() ? "" : ", ") + "\"0." + l +
               "\": {\"input\": [-1, 2], \"output\": [-3, 3]" + rows + "}";
    }
    return ParseBertConfig("{" + one_layer + R"(, "nlpflow_quantization": {"mode": "static_int8")" +
                               bits + R"(, "activation_ranges": {)" + sites + "}}}",
                           "c.json");
  };
  auto with_rows = spec(R"(, "activation_bits": 8)", R"(, "rows": [-4, 5])");
  ASSERT_TRUE(with_rows.ok()) << with_rows.status().message();
  EXPECT_EQ(with_rows->activation_bits, 8);
  EXPECT_TRUE(with_rows->activation_ranges.at("0.output").has_rows);
  EXPECT_EQ(with_rows->activation_ranges.at("0.output").rows.hi, 5.0f);
  auto without = spec("", "");
  ASSERT_TRUE(without.ok()) << without.status().message();
  EXPECT_EQ(without->activation_bits, 7);
  EXPECT_FALSE(without->activation_ranges.at("0.qkv").has_rows);
  EXPECT_THAT(spec(R"(, "activation_bits": 6)", "").status().message(),
              HasSubstr("activation_bits must be 7 or 8; got 6"));
  EXPECT_THAT(spec("", R"(, "rows": [1, 5])").status().message(),
              HasSubstr("range 0.attention_out.rows must be [lo, hi] with lo <= 0 <= hi"));
}

}  // namespace
}  // namespace nlpflow
