#include "nodes/encode/encoder.h"

#include <gtest/gtest.h>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <variant>

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

Record Classified() {
  Record r = Processed();
  ClassificationOutput c;
  c.logits = {0.5f, 2.0f, -1.0f};
  c.scores = {0.25f, 0.7f, 0.05f};
  c.labels = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"ham", "spam", "unsure"});
  r.output = std::move(c);
  return r;
}

Record Tagged() {
  Record r = Processed();
  r.text = "Zürich is big";
  TokenClassificationOutput t;
  t.num_labels = 2;
  t.grouped = true;
  t.entities.push_back({"LOC", 0.9f, "zurich", -1, 0, 6, 0, 7});
  r.output = std::move(t);
  return r;
}

TEST(EncoderTest, JsonClassificationAndEntities) {
  Encoder e({OutputFormat::kJson, "m", "v"});
  Record c = Classified();
  e.EncodeResult(&c);
  auto j = nlohmann::json::parse(c.encoded);
  EXPECT_EQ(j["label"], "spam");
  EXPECT_EQ(j["score"].get<float>(), 0.7f);
  ASSERT_EQ(j["labels"].size(), 3u);
  EXPECT_EQ(j["labels"][0]["label"], "spam");
  EXPECT_EQ(j["labels"][0]["score"].get<float>(), 0.7f);
  EXPECT_EQ(j["labels"][2]["score"].get<float>(), 0.05f);
  EXPECT_EQ(j["labels"][1]["label"], "ham");
  EXPECT_EQ(j["labels"][2]["label"], "unsure");
  EXPECT_EQ(j["logits"].get<std::vector<float>>(), (std::vector<float>{0.5f, 2.0f, -1.0f}));
  EXPECT_FALSE(j.contains("embedding"));

  Record t = Tagged();
  e.EncodeResult(&t);
  j = nlohmann::json::parse(t.encoded);
  ASSERT_EQ(j["entities"].size(), 1u);
  const auto& x = j["entities"][0];
  EXPECT_EQ(x["entity_group"], "LOC");
  EXPECT_EQ(x["word"], "zurich");
  EXPECT_EQ(x["start"], 0);
  EXPECT_EQ(x["end"], 6);
  EXPECT_EQ(x["byte_start"], 0);
  EXPECT_EQ(x["byte_end"], 7);
  EXPECT_FALSE(x.contains("index"));
  EXPECT_FALSE(x.contains("entity"));
  // Aggregation none: "entity" and "index" instead of "entity_group".
  std::get<TokenClassificationOutput>(t.output).grouped = false;
  std::get<TokenClassificationOutput>(t.output).entities[0].index = 3;
  e.EncodeResult(&t);
  j = nlohmann::json::parse(t.encoded);
  EXPECT_EQ(j["entities"][0]["entity"], "LOC");
  EXPECT_EQ(j["entities"][0]["index"], 3);
  EXPECT_FALSE(j["entities"][0].contains("entity_group"));
}

TEST(EncoderTest, ProtobufClassificationAndEntitiesParseWithTheNewSchema) {
  Encoder e({OutputFormat::kProtobuf, "m", "v"});
  Record c = Classified();
  e.EncodeResult(&c);
  nlpflow::v1::Result out;
  ASSERT_TRUE(out.ParseFromString(c.encoded));
  ASSERT_EQ(out.output_case(), nlpflow::v1::Result::kClassification);
  EXPECT_EQ(out.embedding_size(), 0);
  EXPECT_EQ(out.classification().label(), "spam");
  EXPECT_EQ(out.classification().score(), 0.7f);
  ASSERT_EQ(out.classification().labels_size(), 3);
  EXPECT_EQ(out.classification().labels(2).label(), "unsure");
  EXPECT_EQ(out.classification().logits(1), 2.0f);

  Record t = Tagged();
  e.EncodeResult(&t);
  ASSERT_TRUE(out.ParseFromString(t.encoded));
  ASSERT_EQ(out.output_case(), nlpflow::v1::Result::kTokenClassification);
  ASSERT_EQ(out.token_classification().entities_size(), 1);
  const auto& x = out.token_classification().entities(0);
  EXPECT_EQ(x.entity_group(), "LOC");
  EXPECT_EQ(x.index(), -1);
  EXPECT_EQ(x.byte_end(), 7);
  EXPECT_EQ(x.end(), 6);
}

// The Result schema before the typed outputs (fields 1-9, embedding at 4),
// built at run time: what an old reader was compiled from.
const google::protobuf::Descriptor* OldResultDescriptor(google::protobuf::DescriptorPool* pool) {
  google::protobuf::FileDescriptorProto file;
  file.set_name("old_result.proto");
  file.set_package("old");
  file.set_syntax("proto3");
  auto* m = file.add_message_type();
  m->set_name("Result");
  auto add = [m](const char* name, int number, google::protobuf::FieldDescriptorProto::Type type,
                 bool repeated) {
    auto* f = m->add_field();
    f->set_name(name);
    f->set_number(number);
    f->set_type(type);
    f->set_label(repeated ? google::protobuf::FieldDescriptorProto::LABEL_REPEATED
                          : google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
  };
  using T = google::protobuf::FieldDescriptorProto;
  add("id", 1, T::TYPE_STRING, false);
  add("model_name", 2, T::TYPE_STRING, false);
  add("model_version", 3, T::TYPE_STRING, false);
  add("embedding", 4, T::TYPE_FLOAT, true);
  add("scores", 5, T::TYPE_FLOAT, true);
  add("num_tokens", 8, T::TYPE_INT32, false);
  const google::protobuf::FileDescriptor* fd = pool->BuildFile(file);
  return fd == nullptr ? nullptr : fd->FindMessageTypeByName("Result");
}

TEST(EncoderTest, OldEmbeddingReadersStillParseEmbeddings) {
  google::protobuf::DescriptorPool pool;
  const google::protobuf::Descriptor* old = OldResultDescriptor(&pool);
  ASSERT_NE(old, nullptr);
  google::protobuf::DynamicMessageFactory factory(&pool);
  std::unique_ptr<google::protobuf::Message> msg(factory.GetPrototype(old)->New());
  const google::protobuf::Reflection* refl = msg->GetReflection();
  const google::protobuf::FieldDescriptor* embedding = old->FindFieldByName("embedding");

  Encoder e({OutputFormat::kProtobuf, "minilm", "v7"});
  Record r = Processed();
  e.EncodeResult(&r);
  ASSERT_TRUE(msg->ParseFromString(r.encoded));
  ASSERT_EQ(refl->FieldSize(*msg, embedding), 3);
  EXPECT_EQ(refl->GetRepeatedFloat(*msg, embedding, 1), -0.8f);
  EXPECT_EQ(refl->GetString(*msg, old->FindFieldByName("model_name")), "minilm");
  EXPECT_EQ(refl->GetInt32(*msg, old->FindFieldByName("num_tokens")), 3);

  // A classification is unknown to them: it parses, with no embedding.
  Record c = Classified();
  e.EncodeResult(&c);
  msg->Clear();
  ASSERT_TRUE(msg->ParseFromString(c.encoded));
  EXPECT_EQ(refl->FieldSize(*msg, embedding), 0);
  EXPECT_EQ(refl->FieldSize(*msg, old->FindFieldByName("scores")), 0);
  EXPECT_FALSE(refl->GetUnknownFields(*msg).empty());
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
