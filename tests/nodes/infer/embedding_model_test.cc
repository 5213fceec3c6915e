// EmbeddingModel against sentence-transformers' own output for
// all-MiniLM-L6-v2 (tests/fixtures/embedding_reference.json, written by
// tests/fixtures/make_embedding_reference.py), plus its error contract.
#include "nodes/infer/embedding_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

namespace nlpflow {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

const std::string kModelDir = std::string(NLPFLOW_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";
const std::string kFixture =
    std::string(NLPFLOW_SOURCE_DIR) + "/tests/fixtures/embedding_reference.json";
constexpr int64_t kDim = 384;
constexpr double kMinCosine = 0.99999;

bool HaveModel() { return fs::exists(kModelDir + "/model.safetensors"); }

struct RefItem {
  std::string text;
  std::vector<int64_t> ids;
  std::vector<float> embedding;  // mean pooling, normalized
  std::vector<float> cls, max;   // only on every 8th item
  double mean_norm = 0;
};

std::vector<RefItem> LoadReference() {
  std::ifstream in(kFixture);
  const nlohmann::json doc = nlohmann::json::parse(in);
  std::vector<RefItem> items;
  for (const auto& j : doc.at("items")) {
    RefItem item;
    item.text = j.at("text").get<std::string>();
    item.ids = j.at("input_ids").get<std::vector<int64_t>>();
    item.embedding = j.at("embedding").get<std::vector<float>>();
    if (j.contains("cls_embedding")) {
      item.cls = j.at("cls_embedding").get<std::vector<float>>();
      item.max = j.at("max_embedding").get<std::vector<float>>();
      item.mean_norm = j.at("mean_norm").get<double>();
    }
    items.push_back(std::move(item));
  }
  return items;
}

// Rows right-padded to the longest one plus `extra_padding`, with id 0.
TokenBatch MakeBatch(const std::vector<const std::vector<int64_t>*>& rows,
                     int64_t extra_padding = 0) {
  TokenBatch b;
  b.batch = static_cast<int64_t>(rows.size());
  for (const auto* r : rows) b.seq_len = std::max<int64_t>(b.seq_len, r->size());
  b.seq_len += extra_padding;
  for (const auto* r : rows) {
    for (int64_t t = 0; t < b.seq_len; ++t) {
      const bool real = t < static_cast<int64_t>(r->size());
      b.input_ids.push_back(real ? (*r)[t] : 0);
      b.attention_mask.push_back(real ? 1 : 0);
    }
  }
  return b;
}

double Cosine(const float* a, const float* b, int64_t n) {
  double dot = 0, na = 0, nb = 0;
  for (int64_t i = 0; i < n; ++i) {
    dot += double{a[i]} * b[i];
    na += double{a[i]} * a[i];
    nb += double{b[i]} * b[i];
  }
  return dot / std::sqrt(na * nb);
}

double Norm(const float* a, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += double{a[i]} * a[i];
  return std::sqrt(s);
}

double MaxAbsDiff(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(double{a[i]} - b[i]));
  return m;
}

// Tracks the worst match and prints it at the end, so that a passing run still
// shows how close it was.
struct Worst {
  explicit Worst(std::string what) : what(std::move(what)) {}
  ~Worst() {
    std::printf("[ worst    ] %s: cosine %.9f = 1 - %.3g (text #%d \"%.40s\"), "
                "max |diff| %.3g, max |norm - 1| %.3g\n",
                what.c_str(), cosine, 1 - cosine, index, text.c_str(), max_diff,
                max_norm_error);
  }
  void Add(int i, const RefItem& ref, const float* got) {
    const double c = Cosine(got, ref.embedding.data(), kDim);
    if (c < cosine) {
      cosine = c;
      index = i;
      text = ref.text;
    }
    max_diff = std::max(max_diff, MaxAbsDiff(got, ref.embedding.data(), kDim));
    max_norm_error = std::max(max_norm_error, std::fabs(Norm(got, kDim) - 1.0));
    EXPECT_GE(c, kMinCosine) << "text #" << i << ": " << ref.text;
    EXPECT_NEAR(Norm(got, kDim), 1.0, 1e-5) << "text #" << i;
  }
  std::string what;
  double cosine = 2;
  int index = -1;
  std::string text;
  double max_diff = 0, max_norm_error = 0;
};

class EmbeddingModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!HaveModel()) return;
    ref_ = new std::vector<RefItem>(LoadReference());
    auto model = EmbeddingModel::Load({.path = kModelDir});
    if (model.ok()) {
      model_ = std::move(model).value().release();
    } else {
      load_error_ = new std::string(model.status().ToString());
    }
  }
  static void TearDownTestSuite() {
    delete model_;
    delete ref_;
    delete load_error_;
    model_ = nullptr;
    ref_ = nullptr;
    load_error_ = nullptr;
  }
  void SetUp() override {
    if (!HaveModel()) GTEST_SKIP() << kModelDir << " is absent (git-ignored; fetch it first)";
    ASSERT_EQ(load_error_, nullptr) << *load_error_;
  }

  static const EmbeddingModel* model_;
  static const std::vector<RefItem>* ref_;
  static const std::string* load_error_;
};
const EmbeddingModel* EmbeddingModelTest::model_ = nullptr;
const std::vector<RefItem>* EmbeddingModelTest::ref_ = nullptr;
const std::string* EmbeddingModelTest::load_error_ = nullptr;

TEST_F(EmbeddingModelTest, DescribesItself) {
  EXPECT_EQ(model_->dim(), kDim);
  EXPECT_EQ(model_->max_positions(), 512);
  EXPECT_EQ(model_->max_seq_length(), 256);
  EXPECT_EQ(model_->name(), "all-MiniLM-L6-v2");
  EXPECT_EQ(model_->pooling(), "mean");  // from 1_Pooling/config.json
}

TEST_F(EmbeddingModelTest, OneDnnLinearPathMatches) {
  // The suite's model_ uses "auto", which is "blas" where libblas.so.3 is
  // OpenBLAS; check the oneDNN path explicitly on a mixed batch.
  auto onednn = EmbeddingModel::Load({.path = kModelDir, .linear = "onednn"});
  ASSERT_TRUE(onednn.ok()) << onednn.status().ToString();
  EXPECT_EQ((*onednn)->linear(), "onednn");
  std::vector<const std::vector<int64_t>*> rows;
  std::vector<int> which;
  for (int i = 0; i < static_cast<int>(ref_->size()); i += 5) {
    rows.push_back(&(*ref_)[i].ids);
    which.push_back(i);
  }
  auto out = (*onednn)->Embed(MakeBatch(rows));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  Worst worst("oneDNN linear");
  for (size_t i = 0; i < rows.size(); ++i) {
    worst.Add(which[i], (*ref_)[which[i]], out->data() + i * kDim);
  }
}

TEST_F(EmbeddingModelTest, MatchesSentenceTransformersInMixedBatches) {
  std::vector<int> order(ref_->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::shuffle(order.begin(), order.end(), std::mt19937(42));
  const int kSizes[] = {1, 7, 16, 3, 32, 2, 5};
  Worst worst("mixed batches");
  size_t next = 0;
  for (int s = 0; next < order.size(); ++s) {
    const size_t size = std::min<size_t>(kSizes[s % std::size(kSizes)], order.size() - next);
    std::vector<const std::vector<int64_t>*> rows;
    for (size_t i = 0; i < size; ++i) rows.push_back(&(*ref_)[order[next + i]].ids);
    auto out = model_->Embed(MakeBatch(rows));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ(out->size(), size * kDim);
    for (size_t i = 0; i < size; ++i) {
      worst.Add(order[next + i], (*ref_)[order[next + i]], out->data() + i * kDim);
    }
    next += size;
  }
}

TEST_F(EmbeddingModelTest, MatchesSentenceTransformersOneAtATime) {
  Worst worst("one at a time");
  for (size_t i = 0; i < ref_->size(); ++i) {
    auto out = model_->Embed(MakeBatch({&(*ref_)[i].ids}));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    worst.Add(static_cast<int>(i), (*ref_)[i], out->data());
  }
}

TEST_F(EmbeddingModelTest, BlasLinearPathMatchesToo) {
  auto blas = EmbeddingModel::Load({.path = kModelDir, .linear = "blas"});
  ASSERT_TRUE(blas.ok()) << blas.status().ToString();
  EXPECT_EQ((*blas)->linear(), "blas");
  // Short texts only: ATen's BLAS path is slow with a reference BLAS.
  std::vector<const std::vector<int64_t>*> rows;
  std::vector<int> which;
  for (size_t i = 0; i < ref_->size() && rows.size() < 12; ++i) {
    if ((*ref_)[i].ids.size() <= 32) {
      rows.push_back(&(*ref_)[i].ids);
      which.push_back(static_cast<int>(i));
    }
  }
  auto out = (*blas)->Embed(MakeBatch(rows));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  Worst worst("BLAS linear");
  for (size_t i = 0; i < rows.size(); ++i) {
    worst.Add(which[i], (*ref_)[which[i]], out->data() + i * kDim);
  }
}

TEST_F(EmbeddingModelTest, Int8LayersAreInt8PerChannel) {
  auto int8 = EmbeddingModel::Load({.path = kModelDir, .precision = "int8"});
  ASSERT_TRUE(int8.ok()) << int8.status().ToString();
  EXPECT_EQ((*int8)->precision(), "int8");
  EXPECT_EQ((*int8)->linear(), "int8");
  const std::vector<std::string> linears = (*int8)->DescribeLinears();
  ASSERT_EQ(linears.size(), 24u);  // 6 layers x (qkv, attention_out, intermediate, output)
  EXPECT_EQ(linears[0], "0 qkv QInt8 per_channel_affine [1152, 384]");
  EXPECT_EQ(linears[1], "0 attention_out QInt8 per_channel_affine [384, 384]");
  EXPECT_EQ(linears[2], "0 intermediate QInt8 per_channel_affine [1536, 384]");
  EXPECT_EQ(linears[23], "5 output QInt8 per_channel_affine [384, 1536]");
  for (const std::string& l : linears) EXPECT_THAT(l, HasSubstr(" QInt8 per_channel_affine "));
  EXPECT_EQ(model_->precision(), "fp32");
  EXPECT_EQ(model_->DescribeLinears()[0], "0 qkv Float none [1152, 384]");
}

TEST_F(EmbeddingModelTest, Int8IsCloseToFp32OnEveryText) {
  auto int8 = EmbeddingModel::Load({.path = kModelDir, .precision = "int8"});
  ASSERT_TRUE(int8.ok()) << int8.status().ToString();
  double worst = 2, sum = 0;
  int worst_index = -1;
  // In batches of 8 mixed lengths and compared with fp32 on the same batches.
  for (size_t start = 0; start < ref_->size(); start += 8) {
    std::vector<const std::vector<int64_t>*> rows;
    for (size_t i = start; i < std::min(ref_->size(), start + 8); ++i) {
      rows.push_back(&(*ref_)[i].ids);
    }
    const TokenBatch batch = MakeBatch(rows);
    auto q = (*int8)->Embed(batch);
    auto f = model_->Embed(batch);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    for (size_t i = 0; i < rows.size(); ++i) {
      const double c = Cosine(q->data() + i * kDim, f->data() + i * kDim, kDim);
      sum += c;
      if (c < worst) {
        worst = c;
        worst_index = static_cast<int>(start + i);
      }
      // The issue's bar, per text. The shortest texts ("OK", "yes": 3 or 4
      // tokens, two of them [CLS] and [SEP]) were at 0.979-0.989 before the
      // outlier rows went to fp32 (nodes/infer/README.md).
      EXPECT_GE(c, 0.99) << "text #" << start + i << ": " << (*ref_)[start + i].text;
    }
  }
  std::printf("[ worst    ] int8 vs fp32: cosine %.6f (text #%d), mean %.6f over %zu texts\n",
              worst, worst_index, sum / ref_->size(), ref_->size());
  EXPECT_GE(sum / ref_->size(), 0.995);
}

TEST_F(EmbeddingModelTest, PaddingDoesNotChangeARow) {
  const std::vector<int64_t>& longest = (*ref_)[59].ids;  // 256 tokens
  ASSERT_EQ(longest.size(), 256u);
  double worst = 0;
  for (int i : {1, 5, 20, 40, 56}) {
    const std::vector<int64_t>& ids = (*ref_)[i].ids;
    auto alone = model_->Embed(MakeBatch({&ids}));
    auto padded = model_->Embed(MakeBatch({&ids}, /*extra_padding=*/7));
    auto beside_long = model_->Embed(MakeBatch({&longest, &ids}, /*extra_padding=*/1));
    ASSERT_TRUE(alone.ok() && padded.ok() && beside_long.ok());
    const double d1 = MaxAbsDiff(alone->data(), padded->data(), kDim);
    const double d2 = MaxAbsDiff(alone->data(), beside_long->data() + kDim, kDim);
    EXPECT_LE(d1, 1e-5) << "text #" << i;
    EXPECT_LE(d2, 1e-5) << "text #" << i;
    worst = std::max({worst, d1, d2});
  }
  std::printf("[ worst    ] padding: max |diff| %.3g\n", worst);
}

TEST_F(EmbeddingModelTest, TokenTypeIdsZeroAreTheDefault) {
  TokenBatch b = MakeBatch({&(*ref_)[9].ids, &(*ref_)[33].ids});
  auto without = model_->Embed(b);
  b.token_type_ids.assign(b.input_ids.size(), 0);
  auto with = model_->Embed(b);
  ASSERT_TRUE(without.ok() && with.ok());
  EXPECT_EQ(*without, *with);
}

TEST_F(EmbeddingModelTest, ConcurrentCallsMatchSerial) {
  std::vector<const std::vector<int64_t>*> rows;
  for (int i = 0; i < 16; ++i) rows.push_back(&(*ref_)[i * 3].ids);  // up to 31 tokens
  const TokenBatch batch = MakeBatch(rows);
  auto serial = model_->Embed(batch);
  ASSERT_TRUE(serial.ok());
  std::vector<std::vector<float>> results(4 * 3);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 3; ++k) {
        auto out = model_->Embed(batch);
        if (out.ok()) results[t * 3 + k] = std::move(out).value();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : results) {
    ASSERT_EQ(r.size(), serial->size());
    EXPECT_LE(MaxAbsDiff(r.data(), serial->data(), r.size()), 1e-6);
  }
}

TEST_F(EmbeddingModelTest, OtherPoolingsAndNoNormalizeMatchSentenceTransformers) {
  auto cls = EmbeddingModel::Load({.path = kModelDir, .pooling = "cls"});
  auto max = EmbeddingModel::Load({.path = kModelDir, .pooling = "max"});
  auto raw = EmbeddingModel::Load({.path = kModelDir, .normalize = false});
  ASSERT_TRUE(cls.ok() && max.ok() && raw.ok());
  std::vector<const std::vector<int64_t>*> rows;
  std::vector<const RefItem*> refs;
  for (const RefItem& r : *ref_) {
    if (!r.cls.empty()) {
      rows.push_back(&r.ids);
      refs.push_back(&r);
    }
  }
  ASSERT_EQ(rows.size(), 8u);
  const TokenBatch batch = MakeBatch(rows);
  auto cls_out = (*cls)->Embed(batch);
  auto max_out = (*max)->Embed(batch);
  auto raw_out = (*raw)->Embed(batch);
  ASSERT_TRUE(cls_out.ok() && max_out.ok() && raw_out.ok());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_GE(Cosine(cls_out->data() + i * kDim, refs[i]->cls.data(), kDim), kMinCosine)
        << refs[i]->text;
    EXPECT_GE(Cosine(max_out->data() + i * kDim, refs[i]->max.data(), kDim), kMinCosine)
        << refs[i]->text;
    EXPECT_GE(Cosine(raw_out->data() + i * kDim, refs[i]->embedding.data(), kDim), kMinCosine);
    EXPECT_NEAR(Norm(raw_out->data() + i * kDim, kDim) / refs[i]->mean_norm, 1.0, 1e-5)
        << refs[i]->text;
  }
}

TEST_F(EmbeddingModelTest, RejectsMalformedBatches) {
  const std::vector<int64_t> ids = {101, 7592, 102};
  TokenBatch b = MakeBatch({&ids});

  TokenBatch sizes = b;
  sizes.attention_mask.pop_back();
  EXPECT_EQ(model_->Embed(sizes).status().message(),
            "token batch: 1 x 3 needs 3 values; got input_ids 3, attention_mask 2, "
            "token_type_ids 0 (may be empty)");

  TokenBatch left = b;
  left.attention_mask = {0, 1, 1};
  EXPECT_EQ(model_->Embed(left).status().message(),
            "token batch row 0: has no real token (mask[0] != 1)");

  TokenBatch gap = b;
  gap.attention_mask = {1, 0, 1};
  EXPECT_EQ(model_->Embed(gap).status().message(),
            "token batch row 0: attention_mask must be 1s then 0s (right padding); found 1 "
            "at position 2");

  TokenBatch oov = b;
  oov.input_ids[1] = 30522;
  EXPECT_EQ(model_->Embed(oov).status().message(),
            "token batch row 0: input id 30522 at position 1 is outside the vocabulary "
            "[0, 30522)");

  TokenBatch types = b;
  types.token_type_ids = {0, 2, 0};
  EXPECT_EQ(model_->Embed(types).status().message(),
            "token batch row 0: token type 2 at position 1 is outside [0, 2)");

  const std::vector<int64_t> too_long(513, 1000);
  EXPECT_EQ(model_->Embed(MakeBatch({&too_long})).status().message(),
            "token batch row 0: 513 tokens exceed the model's max_positions 512");

  EXPECT_EQ(model_->Embed(TokenBatch{}).status().code(), StatusCode::kInvalidArgument);
}

// ---- Loading errors, on modified copies of the model folder. ----

class EmbeddingModelLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("nlpflow_embedding_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string ReadFile(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // A model folder `name` under the temp dir with the real config.json.
  fs::path MakeFolder(const std::string& name) {
    const fs::path d = dir_ / name;
    fs::create_directories(d);
    fs::copy_file(kModelDir + "/config.json", d / "config.json");
    return d;
  }

  // Writes a copy of the real model.safetensors to `out`, each tensor renamed
  // by `rename` (dropped when it returns ""), F32 tensors converted to BF16
  // when `to_bf16`.
  static void WriteCheckpoint(const fs::path& out,
                              const std::function<std::string(const std::string&)>& rename,
                              bool to_bf16 = false) {
    const std::string file = ReadFile(kModelDir + "/model.safetensors");
    uint64_t header_len;
    std::memcpy(&header_len, file.data(), 8);
    const nlohmann::json header = nlohmann::json::parse(file.substr(8, header_len));
    const char* data = file.data() + 8 + header_len;
    nlohmann::json new_header = nlohmann::json::object();
    std::string new_data;
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        new_header[name] = entry;
        continue;
      }
      const std::string new_name = rename(name);
      if (new_name.empty()) continue;
      const uint64_t begin = entry["data_offsets"][0], end = entry["data_offsets"][1];
      std::string bytes(data + begin, data + end);
      nlohmann::json e = entry;
      if (to_bf16 && entry["dtype"] == "F32") {
        std::string converted(bytes.size() / 2, '\0');
        for (size_t i = 0; i < bytes.size() / 4; ++i) {
          uint32_t bits;
          std::memcpy(&bits, bytes.data() + 4 * i, 4);
          const uint16_t bf16 = (bits + 0x7fff + ((bits >> 16) & 1)) >> 16;  // nearest even
          std::memcpy(converted.data() + 2 * i, &bf16, 2);
        }
        bytes = std::move(converted);
        e["dtype"] = "BF16";
      }
      e["data_offsets"] = {new_data.size(), new_data.size() + bytes.size()};
      new_data += bytes;
      new_header[new_name] = e;
    }
    const std::string h = new_header.dump();
    const uint64_t len = h.size();
    std::ofstream o(out, std::ios::binary);
    o.write(reinterpret_cast<const char*>(&len), 8);
    o << h << new_data;
  }

  fs::path dir_;
};

TEST_F(EmbeddingModelLoadTest, MissingFolderIsNotFoundNamingThePath) {
  const std::string path = (dir_ / "no-such-model").string();
  auto model = EmbeddingModel::Load({.path = path});
  EXPECT_EQ(model.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(model.status().message(), "model folder '" + path + "' does not exist");
}

TEST_F(EmbeddingModelLoadTest, MissingConfigIsNotFoundNamingTheFile) {
  fs::create_directories(dir_ / "empty");
  auto model = EmbeddingModel::Load({.path = (dir_ / "empty").string()});
  EXPECT_EQ(model.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(model.status().message(), (dir_ / "empty" / "config.json").string() + ": cannot open");
}

TEST_F(EmbeddingModelLoadTest, InvalidOptionsAreRejected) {
  EXPECT_EQ(EmbeddingModel::Load({}).status().message(), "model path: must not be empty");
  EXPECT_EQ(EmbeddingModel::Load({.path = kModelDir, .pooling = "sum"}).status().message(),
            "model pooling: 'sum' is not one of mean, cls, max (or empty for the model "
            "folder's own)");
  EXPECT_EQ(
      EmbeddingModel::Load({.path = kModelDir, .intra_op_threads = 0}).status().message(),
      "model intra_op_threads: must be at least 1, got 0");
  EXPECT_EQ(EmbeddingModel::Load({.path = kModelDir, .linear = "mkl"}).status().message(),
            "model linear: 'mkl' is not one of auto, program, onednn, blas");
  EXPECT_EQ(
      EmbeddingModel::Load({.path = kModelDir, .precision = "fp16"}).status().message(),
      "model precision: 'fp16' is not one of fp32, int8");
}

TEST_F(EmbeddingModelLoadTest, TruncatedWeightsAreDataLossNamingTheFile) {
  if (!HaveModel()) GTEST_SKIP() << kModelDir << " is absent";
  const fs::path d = MakeFolder("truncated");
  const std::string weights = ReadFile(kModelDir + "/model.safetensors");
  std::ofstream(d / "model.safetensors", std::ios::binary) << weights.substr(0, weights.size() / 2);
  auto model = EmbeddingModel::Load({.path = d.string()});
  EXPECT_EQ(model.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(model.status().message(),
              AllOf(HasSubstr((d / "model.safetensors").string()), HasSubstr("tensor '"),
                    HasSubstr("truncated")));
}

TEST_F(EmbeddingModelLoadTest, ConfigNotMatchingWeightsNamesTensorAndShapes) {
  if (!HaveModel()) GTEST_SKIP() << kModelDir << " is absent";
  const fs::path d = dir_ / "hidden256";
  fs::create_directories(d);
  fs::create_symlink(kModelDir + "/model.safetensors", d / "model.safetensors");
  std::string config = ReadFile(kModelDir + "/config.json");
  config.replace(config.find("\"hidden_size\": 384"), 18, "\"hidden_size\": 256");
  config.replace(config.find("\"num_attention_heads\": 12"), 25, "\"num_attention_heads\": 8");
  std::ofstream(d / "config.json") << config;
  auto model = EmbeddingModel::Load({.path = d.string()});
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(model.status().message(),
            (d / "model.safetensors").string() +
                ": tensor 'embeddings.word_embeddings.weight' has shape [30522, 384] but "
                "config.json implies [30522, 256]");
}

TEST_F(EmbeddingModelLoadTest, MissingTensorIsNotFoundNamingIt) {
  if (!HaveModel()) GTEST_SKIP() << kModelDir << " is absent";
  const fs::path d = MakeFolder("missing-tensor");
  WriteCheckpoint(d / "model.safetensors", [](const std::string& name) {
    return name == "encoder.layer.5.output.dense.weight" ? std::string() : name;
  });
  auto model = EmbeddingModel::Load({.path = d.string()});
  EXPECT_EQ(model.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(model.status().message(), (d / "model.safetensors").string() +
                                          ": no tensor 'encoder.layer.5.output.dense.weight'");
}

class EmbeddingModelCheckpointTest : public EmbeddingModelLoadTest {
 protected:
  // Embeddings of a few reference texts from the model folder `d`.
  static void ExpectMatchesReference(const fs::path& d, double min_cosine,
                                     const std::string& pooling = "") {
    auto model = EmbeddingModel::Load({.path = d.string(), .pooling = pooling});
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const std::vector<RefItem> ref = LoadReference();
    std::vector<const std::vector<int64_t>*> rows;
    for (int i : {3, 17, 33, 47, 50}) rows.push_back(&ref[i].ids);
    auto out = (*model)->Embed(MakeBatch(rows));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    int k = 0;
    for (int i : {3, 17, 33, 47, 50}) {
      EXPECT_GE(Cosine(out->data() + kDim * k++, ref[i].embedding.data(), kDim), min_cosine)
          << ref[i].text;
    }
  }
};

TEST_F(EmbeddingModelCheckpointTest, BertPrefixedNamesLoad) {
  if (!HaveModel()) GTEST_SKIP() << kModelDir << " is absent";
  const fs::path d = MakeFolder("prefixed");
  WriteCheckpoint(d / "model.safetensors",
                  [](const std::string& name) { return "bert." + name; });
  ExpectMatchesReference(d, kMinCosine);
}

TEST_F(EmbeddingModelCheckpointTest, BFloat16WeightsLoadAsFloat) {
  if (!HaveModel()) GTEST_SKIP() << kModelDir << " is absent";
  const fs::path d = MakeFolder("bf16");
  WriteCheckpoint(d / "model.safetensors", [](const std::string& name) { return name; },
                  /*to_bf16=*/true);
  // BF16 keeps 8 bits of mantissa: close, not exact.
  ExpectMatchesReference(d, 0.999);
}

TEST_F(EmbeddingModelCheckpointTest, PoolingComesFromTheFolderUnlessSet) {
  if (!HaveModel()) GTEST_SKIP() << kModelDir << " is absent";
  const fs::path d = MakeFolder("cls-model");
  fs::create_symlink(kModelDir + "/model.safetensors", d / "model.safetensors");
  fs::create_directories(d / "1_Pooling");
  std::ofstream(d / "1_Pooling" / "config.json")
      << R"({"word_embedding_dimension": 384, "pooling_mode_cls_token": true,
             "pooling_mode_mean_tokens": false})";
  auto from_folder = EmbeddingModel::Load({.path = d.string()});
  ASSERT_TRUE(from_folder.ok()) << from_folder.status().ToString();
  EXPECT_EQ((*from_folder)->pooling(), "cls");
  EXPECT_EQ((*from_folder)->name(), "cls-model");
  EXPECT_EQ((*from_folder)->max_seq_length(), 512);  // no sentence_bert_config.json
  ExpectMatchesReference(d, kMinCosine, /*pooling=*/"mean");

  const fs::path bare = MakeFolder("bare");
  fs::create_symlink(kModelDir + "/model.safetensors", bare / "model.safetensors");
  auto fallback = EmbeddingModel::Load({.path = bare.string() + "/"});
  ASSERT_TRUE(fallback.ok()) << fallback.status().ToString();
  EXPECT_EQ((*fallback)->pooling(), "mean");
  EXPECT_EQ((*fallback)->name(), "bare");

  std::ofstream(d / "1_Pooling" / "config.json")
      << R"({"pooling_mode_mean_sqrt_len_tokens": true})";
  auto unsupported = EmbeddingModel::Load({.path = d.string()});
  EXPECT_EQ(unsupported.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(unsupported.status().message(),
              HasSubstr("pooling [pooling_mode_mean_sqrt_len_tokens] is not supported"));
}

}  // namespace
}  // namespace nlpflow
