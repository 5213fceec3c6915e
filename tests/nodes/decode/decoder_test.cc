#include "nodes/decode/decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "schemas/input_record.pb.h"

namespace nlpflow {
namespace {

Record WithPayload(std::string payload) {
  Record r;
  r.payload = std::move(payload);
  return r;
}

TEST(DecoderTest, TextPassesThrough) {
  Decoder d({});
  Record r = WithPayload("Héllo wörld");
  ASSERT_TRUE(d.Decode(&r));
  EXPECT_EQ(r.text, "Héllo wörld");
  EXPECT_FALSE(r.failed);
}

TEST(DecoderTest, EmptyAndBlankTextAreRejected) {
  Decoder d({});
  for (const char* s : {"", "  \t\n "}) {
    Record r = WithPayload(s);
    EXPECT_FALSE(d.Decode(&r));
    EXPECT_TRUE(r.failed);
    EXPECT_EQ(r.failed_stage, Stage::kDecode);
    EXPECT_EQ(r.failure_reason, "empty text");
  }
}

TEST(DecoderTest, InvalidUtf8IsRejectedWithPosition) {
  Decoder d({});
  Record r = WithPayload(std::string("abc\xff" "def"));
  EXPECT_FALSE(d.Decode(&r));
  EXPECT_EQ(r.failure_reason, "invalid UTF-8 at byte 3");
}

TEST(DecoderTest, FindInvalidUtf8) {
  EXPECT_EQ(FindInvalidUtf8("plain"), -1);
  EXPECT_EQ(FindInvalidUtf8("日本語 ok 😀"), -1);
  EXPECT_EQ(FindInvalidUtf8(std::string("\xc0\xaf")), 0);          // overlong '/'
  EXPECT_EQ(FindInvalidUtf8(std::string("ab\xed\xa0\x80")), 2);    // surrogate
  EXPECT_EQ(FindInvalidUtf8(std::string("x\xf4\x90\x80\x80")), 1); // > U+10FFFF
  EXPECT_EQ(FindInvalidUtf8(std::string("ok\xe6\x97")), 2);        // truncated
}

TEST(DecoderTest, TooLargeIsRejectedBeforeParsing) {
  DecodeOptions o;
  o.max_record_bytes = 4;
  Decoder d(o);
  Record r = WithPayload("hello");
  EXPECT_FALSE(d.Decode(&r));
  EXPECT_EQ(r.failure_reason, "record too large: 5 bytes, the limit is 4");
}

TEST(DecoderTest, JsonTextIdAndAttributes) {
  DecodeOptions o;
  o.format = InputFormat::kJson;
  Decoder d(o);
  Record r = WithPayload(R"({"text": "a cat", "id": 17, "lang": "en", "nested": {"x": 1}})");
  ASSERT_TRUE(d.Decode(&r)) << r.failure_reason;
  EXPECT_EQ(r.text, "a cat");
  EXPECT_EQ(r.id, "17");
  EXPECT_EQ(r.attributes.size(), 1u);
  EXPECT_EQ(r.attributes.at("lang"), "en");
}

TEST(DecoderTest, JsonErrorsAreExplained) {
  DecodeOptions o;
  o.format = InputFormat::kJson;
  Decoder d(o);
  struct Case { const char* payload; const char* reason; };
  const Case cases[] = {
      {"{not json", "invalid JSON"},
      {"[1, 2]", "JSON is not an object"},
      {R"({"body": "x"})", "JSON field 'text' is missing"},
      {R"({"text": 3})", "JSON field 'text' is not a string"},
      {R"({"text": ""})", "empty text"},
  };
  for (const auto& c : cases) {
    Record r = WithPayload(c.payload);
    EXPECT_FALSE(d.Decode(&r)) << c.payload;
    EXPECT_EQ(r.failure_reason, c.reason) << c.payload;
  }
}

TEST(DecoderTest, ProtobufRoundTrip) {
  DecodeOptions o;
  o.format = InputFormat::kProtobuf;
  Decoder d(o);
  nlpflow::v1::InputRecord in;
  in.set_text("the quick brown fox");
  in.set_id("id-1");
  (*in.mutable_attributes())["k"] = "v";
  Record r = WithPayload(in.SerializeAsString());
  ASSERT_TRUE(d.Decode(&r)) << r.failure_reason;
  EXPECT_EQ(r.text, "the quick brown fox");
  EXPECT_EQ(r.id, "id-1");
  EXPECT_EQ(r.attributes.at("k"), "v");
}

TEST(DecoderTest, SentencePairsFromJsonAndProtobuf) {
  DecodeOptions o;
  o.format = InputFormat::kJson;
  Decoder json(o);
  Record r = WithPayload(R"({"text": "is it good?", "text_pair": "it is very good", "k": 1})");
  ASSERT_TRUE(json.Decode(&r)) << r.failure_reason;
  EXPECT_EQ(r.text, "is it good?");
  ASSERT_TRUE(r.text_pair.has_value());
  EXPECT_EQ(*r.text_pair, "it is very good");
  EXPECT_EQ(r.attributes.count("text_pair"), 0u);  // the pair is not an attribute
  EXPECT_EQ(r.attributes.at("k"), "1");

  Record single = WithPayload(R"({"text": "one text"})");
  ASSERT_TRUE(json.Decode(&single));
  EXPECT_FALSE(single.text_pair.has_value());

  Record bad = WithPayload(R"({"text": "a", "text_pair": 7})");
  EXPECT_FALSE(json.Decode(&bad));
  EXPECT_EQ(bad.failure_reason, "JSON field 'text_pair' is not a string");

  o.json_text_pair_field = "hypothesis";
  Record renamed = WithPayload(R"({"text": "a", "hypothesis": "b", "text_pair": "c"})");
  ASSERT_TRUE(Decoder(o).Decode(&renamed));
  EXPECT_EQ(*renamed.text_pair, "b");
  EXPECT_EQ(renamed.attributes.at("text_pair"), "c");

  o.format = InputFormat::kProtobuf;
  Decoder proto(o);
  nlpflow::v1::InputRecord in;
  in.set_text("premise");
  in.set_text_pair("hypothesis");
  Record p = WithPayload(in.SerializeAsString());
  ASSERT_TRUE(proto.Decode(&p)) << p.failure_reason;
  EXPECT_EQ(*p.text_pair, "hypothesis");
  in.set_text_pair(std::string("bad \xff", 5));
  Record invalid = WithPayload(in.SerializeAsString());
  EXPECT_FALSE(proto.Decode(&invalid));
  // Protobuf checks proto3 strings itself in this build; either way it is a dead letter.
  EXPECT_THAT(invalid.failure_reason,
              ::testing::AnyOf("invalid UTF-8 in text_pair at byte 4",
                               "invalid Protobuf: not an nlpflow.v1.InputRecord"));
  o.format = InputFormat::kJson;
  Record invalid_json = WithPayload(std::string("{\"text\": \"a\", \"text_pair\": \"b\xff\"}"));
  EXPECT_FALSE(Decoder(o).Decode(&invalid_json));
  EXPECT_EQ(invalid_json.failure_reason, "invalid UTF-8 at byte 29");
}

TEST(DecoderTest, ProtobufGarbageIsRejected) {
  DecodeOptions o;
  o.format = InputFormat::kProtobuf;
  Decoder d(o);
  Record r = WithPayload(std::string("\xff\xff\xff\xff", 4));
  EXPECT_FALSE(d.Decode(&r));
  EXPECT_EQ(r.failure_reason, "invalid Protobuf: not an nlpflow.v1.InputRecord");
}

TEST(DecoderTest, ParseInputFormat) {
  EXPECT_EQ(ParseInputFormat("json").value(), InputFormat::kJson);
  auto bad = ParseInputFormat("xml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "unknown input format 'xml' (text, json or protobuf)");
}

}  // namespace
}  // namespace nlpflow
