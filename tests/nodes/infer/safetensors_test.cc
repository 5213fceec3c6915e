#include "nodes/infer/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

namespace nlpflow {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("nlpflow_safetensors_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes 8-byte length + header + data; returns the path.
  std::string Write(const std::string& header, const std::string& data,
                    uint64_t header_len_field = UINT64_MAX) {
    const std::string path = (dir_ / "t.safetensors").string();
    std::ofstream out(path, std::ios::binary);
    const uint64_t len = header_len_field == UINT64_MAX ? header.size() : header_len_field;
    out.write(reinterpret_cast<const char*>(&len), 8);
    out << header << data;
    return path;
  }

  fs::path dir_;
};

template <typename T>
std::string Bytes(std::initializer_list<T> values) {
  std::string s(values.size() * sizeof(T), '\0');
  std::memcpy(s.data(), std::data(values), s.size());
  return s;
}

TEST_F(SafetensorsTest, ReadsF32F16AndBF16AsFloat) {
  const std::string data = Bytes<float>({1.f, 2.f, 3.f, 4.f}) +
                           Bytes<uint16_t>({0x3c00, 0xc000, 0x7bff}) +  // F16 1, -2, 65504
                           Bytes<uint16_t>({0x3f80, 0xbf00});           // BF16 1, -0.5
  const std::string path = Write(
      R"({"__metadata__":{"format":"pt"},)"
      R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("b":{"dtype":"F16","shape":[3],"data_offsets":[16,22]},)"
      R"("c":{"dtype":"BF16","shape":[2],"data_offsets":[22,26]}})",
      data);
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->tensors().size(), 3u);
  EXPECT_EQ((*file)->metadata().at("format"), "pt");

  const SafetensorsTensor* a = (*file)->Find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a->numel, 4);
  std::vector<float> out(4);
  ASSERT_TRUE((*file)->ReadFloat32(*a, out).ok());
  EXPECT_EQ(out, (std::vector<float>{1.f, 2.f, 3.f, 4.f}));

  out.resize(3);
  ASSERT_TRUE((*file)->ReadFloat32(*(*file)->Find("b"), out).ok());
  EXPECT_EQ(out, (std::vector<float>{1.f, -2.f, 65504.f}));

  out.resize(2);
  ASSERT_TRUE((*file)->ReadFloat32(*(*file)->Find("c"), out).ok());
  EXPECT_EQ(out, (std::vector<float>{1.f, -0.5f}));

  EXPECT_EQ((*file)->Find("missing"), nullptr);
}

TEST(HalfToFloatTest, SpecialValues) {
  EXPECT_EQ(HalfToFloat(0x0000), 0.f);
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.f, -24));    // smallest subnormal
  EXPECT_EQ(HalfToFloat(0x03ff), std::ldexp(1023.f, -24));  // largest subnormal
  EXPECT_EQ(HalfToFloat(0x0400), std::ldexp(1.f, -14));    // smallest normal
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(HalfToFloat(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(HalfToFloat(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_EQ(BFloat16ToFloat(0x4049), 3.140625f);
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  const std::string path = (dir_ / "nope.safetensors").string();
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(file.status().message(), HasSubstr(path));
}

TEST_F(SafetensorsTest, FileShorterThanLengthFieldIsDataLoss) {
  const std::string path = (dir_ / "short.safetensors").string();
  std::ofstream(path, std::ios::binary) << "abc";
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(file.status().message(), AllOf(HasSubstr(path), HasSubstr("3 bytes")));
}

TEST_F(SafetensorsTest, HeaderLongerThanFileIsDataLoss) {
  const std::string path = Write("{}", "", /*header_len_field=*/1000);
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(file.status().message(),
              AllOf(HasSubstr(path), HasSubstr("header length 1000 does not fit")));
}

TEST_F(SafetensorsTest, MalformedJsonIsDataLoss) {
  const std::string path = Write(R"({"a":{"dtype":)", "");
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(file.status().message(), AllOf(HasSubstr(path), HasSubstr("not valid JSON")));
}

TEST_F(SafetensorsTest, OffsetsPastTheDataAreDataLossNamingTheTensor) {
  const std::string path =
      Write(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", Bytes<float>({1.f}));
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(file.status().message(),
              AllOf(HasSubstr(path), HasSubstr("tensor 'w'"),
                    HasSubstr("data_offsets [0, 16] run past the 4 data bytes")));
}

TEST_F(SafetensorsTest, SizeNotMatchingShapeIsDataLoss) {
  const std::string path = Write(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                                 Bytes<float>({1.f, 2.f}));
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(file.status().message(),
              HasSubstr("tensor 'w': holds 8 bytes but F32 [3] needs 12"));
}

TEST_F(SafetensorsTest, ReversedOffsetsAndBadShapesAreDataLoss) {
  auto reversed = SafetensorsFile::Open(
      Write(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}})", "xx"));
  EXPECT_EQ(reversed.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(reversed.status().message(), HasSubstr("reversed"));

  auto negative = SafetensorsFile::Open(
      Write(R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "x"));
  EXPECT_EQ(negative.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(negative.status().message(), HasSubstr("tensor 'w': shape"));

  auto no_dtype =
      SafetensorsFile::Open(Write(R"({"w":{"shape":[1],"data_offsets":[0,1]}})", "x"));
  EXPECT_EQ(no_dtype.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(no_dtype.status().message(), HasSubstr("tensor 'w': no string 'dtype'"));
}

TEST_F(SafetensorsTest, ReadingIntegersAsFloatIsInvalidArgument) {
  auto file = SafetensorsFile::Open(
      Write(R"({"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", Bytes<int64_t>({7})));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  std::vector<float> out(1);
  const Status st = (*file)->ReadFloat32(*(*file)->Find("ids"), out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("tensor 'ids' has dtype I64"));
}

}  // namespace
}  // namespace nlpflow
