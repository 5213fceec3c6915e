#include "nodes/encode/encoder.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "schemas/dead_letter.pb.h"
#include "schemas/result.pb.h"

namespace nlpflow {
namespace {

Record Processed() {
  Record r;
  r.id = "x1";
  r.coords = {"texts", 2, 41};
  r.timestamp_ms = 1796414179123;
  r.encoding.ids = {101, 7592, 102};
  r.output = EmbeddingOutput{{0.6f, -0.8f, 0.1f}};
  r.attributes["lang"] = "en";
  r.times.arrived_us = 1000;
  r.times.decoded_us = 1010;
  r.times.tokenized_us = 1030;
  r.times.batched_us = 1100;
  r.times.inferred_us = 1500;
  return r;
}

TEST(EncoderTest, DurationsOf) {
  StageTimes t{100, 110, 130, 200, 600, 610};
  StageDurations d = DurationsOf(t);
  EXPECT_EQ(d.decode_us, 10);
  EXPECT_EQ(d.tokenize_us, 20);
  EXPECT_EQ(d.queue_us, 70);
  EXPECT_EQ(d.infer_us, 400);
  EXPECT_EQ(d.encode_us, 10);
  EXPECT_EQ(d.total_us, 510);
}

TEST(EncoderTest, JsonResultCarriesExactFloats) {
  Encoder e({OutputFormat::kJson, "minilm", "v7"});
  Record r = Processed();
  e.EncodeResult(&r);
  auto j = nlohmann::json::parse(r.encoded);
  EXPECT_EQ(j["id"], "x1");
  EXPECT_EQ(j["model"], "minilm");
  EXPECT_EQ(j["model_version"], "v7");
  EXPECT_EQ(j["num_tokens"], 3);
  EXPECT_EQ(j["source"]["partition"], 2);
  EXPECT_EQ(j["source"]["offset"], 41);
  EXPECT_EQ(j["source"]["timestamp_ms"], 1796414179123);  // the input's Kafka timestamp
  EXPECT_EQ(j["attributes"]["lang"], "en");
  ASSERT_EQ(j["embedding"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(j["embedding"][i].get<float>(), std::get<EmbeddingOutput>(r.output).values[i]);
  }
  EXPECT_EQ(j["timings_us"]["infer"], 400);
  // Shortest round-trip text of the float, not of the float widened to double.
  EXPECT_NE(r.encoded.find("\"embedding\":[0.6,-0.8,0.1]"), std::string::npos) << r.encoded;
  EXPECT_GE(j["timings_us"]["total"].get<int64_t>(), 500);
}

TEST(EncoderTest, ProtobufResult) {
  Encoder e({OutputFormat::kProtobuf, "minilm", "v7"});
  Record r = Processed();
  e.EncodeResult(&r);
  nlpflow::v1::Result out;
  ASSERT_TRUE(out.ParseFromString(r.encoded));
  EXPECT_EQ(out.id(), "x1");
  EXPECT_EQ(out.model_name(), "minilm");
  ASSERT_EQ(out.embedding_size(), 3);
  EXPECT_EQ(out.embedding(1), -0.8f);
  EXPECT_EQ(out.source().topic(), "texts");
  EXPECT_EQ(out.source().timestamp_ms(), 1796414179123);
  EXPECT_EQ(out.timings().queue_us(), 70);
}

TEST(EncoderTest, DeadLetterJsonAndProtobuf) {
  Record r;
  r.payload = std::string("bad\xff", 4);
  r.key = "k";
  r.coords = {"texts", 1, 9};
  r.timestamp_ms = 1234;
  r.Fail(Stage::kDecode, "invalid UTF-8 at byte 3");

  auto j = nlohmann::json::parse(Encoder({OutputFormat::kJson, "m", "v"}).EncodeDeadLetter(r));
  EXPECT_EQ(j["stage"], "decode");
  EXPECT_EQ(j["reason"], "invalid UTF-8 at byte 3");
  EXPECT_EQ(j["offset"], 9);
  EXPECT_EQ(j["original_base64"], "YmFk/w==");
  EXPECT_EQ(j["key_base64"], "aw==");

  nlpflow::v1::DeadLetter dl;
  ASSERT_TRUE(dl.ParseFromString(
      Encoder({OutputFormat::kProtobuf, "m", "v"}).EncodeDeadLetter(r)));
  EXPECT_EQ(dl.original(), r.payload);
  EXPECT_EQ(dl.stage(), "decode");
  EXPECT_EQ(dl.partition(), 1);
  EXPECT_TRUE(dl.has_key());
  EXPECT_EQ(dl.timestamp_ms(), 1234);
}

TEST(EncoderTest, Base64) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
}

}  // namespace
}  // namespace nlpflow
