#include "nodes/decode/decoder.h"

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "schemas/input_record.pb.h"

namespace nlpflow {

Result<InputFormat> ParseInputFormat(const std::string& name) {
  if (name == "text") return InputFormat::kText;
  if (name == "json") return InputFormat::kJson;
  if (name == "protobuf") return InputFormat::kProtobuf;
  return Status::InvalidArgument("unknown input format '" + name +
                                 "' (text, json or protobuf)");
}

int64_t FindInvalidUtf8(const std::string& s) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  const utf8proc_ssize_t n = static_cast<utf8proc_ssize_t>(s.size());
  utf8proc_ssize_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {  // ASCII fast path
      ++i;
      continue;
    }
    utf8proc_int32_t cp;
    // utf8proc_iterate rejects overlong forms, surrogates and > U+10FFFF.
    const utf8proc_ssize_t len = utf8proc_iterate(p + i, n - i, &cp);
    if (len <= 0 || cp < 0) return i;
    i += len;
  }
  return -1;
}

namespace {

bool IsBlank(const std::string& text) {
  for (unsigned char c : text) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') {
      return false;
    }
  }
  return true;
}

}  // namespace

bool Decoder::Decode(Record* record) const {
  const auto size = static_cast<int64_t>(record->payload.size());
  if (size > options_.max_record_bytes) {
    record->Fail(Stage::kDecode, "record too large: " + std::to_string(size) +
                                     " bytes, the limit is " +
                                     std::to_string(options_.max_record_bytes));
    return false;
  }
  switch (options_.format) {
    case InputFormat::kText:
      record->text = record->payload;
      return CheckText(record);
    case InputFormat::kJson:
      return DecodeJson(record);
    case InputFormat::kProtobuf:
      return DecodeProtobuf(record);
  }
  record->Fail(Stage::kDecode, "unknown input format");
  return false;
}

bool Decoder::CheckText(Record* record) const {
  const int64_t bad = FindInvalidUtf8(record->text);
  if (bad >= 0) {
    record->Fail(Stage::kDecode, "invalid UTF-8 at byte " + std::to_string(bad));
    return false;
  }
  if (IsBlank(record->text)) {
    record->Fail(Stage::kDecode, "empty text");
    return false;
  }
  if (record->text_pair) {
    const int64_t bad_pair = FindInvalidUtf8(*record->text_pair);
    if (bad_pair >= 0) {
      record->Fail(Stage::kDecode, "invalid UTF-8 in text_pair at byte " + std::to_string(bad_pair));
      return false;
    }
  }
  return true;
}

bool Decoder::DecodeJson(Record* record) const {
  // The JSON parser checks UTF-8 itself; check first so the reason is the
  // same one that raw text gets.
  const int64_t bad = FindInvalidUtf8(record->payload);
  if (bad >= 0) {
    record->Fail(Stage::kDecode, "invalid UTF-8 at byte " + std::to_string(bad));
    return false;
  }
  nlohmann::json doc = nlohmann::json::parse(record->payload, nullptr,
                                             /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    record->Fail(Stage::kDecode, "invalid JSON");
    return false;
  }
  if (!doc.is_object()) {
    record->Fail(Stage::kDecode, "JSON is not an object");
    return false;
  }
  auto text = doc.find(options_.json_text_field);
  if (text == doc.end()) {
    record->Fail(Stage::kDecode, "JSON field '" + options_.json_text_field + "' is missing");
    return false;
  }
  if (!text->is_string()) {
    record->Fail(Stage::kDecode, "JSON field '" + options_.json_text_field + "' is not a string");
    return false;
  }
  record->text = text->get<std::string>();
  auto pair = options_.json_text_pair_field.empty() ? doc.end()
                                                    : doc.find(options_.json_text_pair_field);
  if (pair != doc.end()) {
    if (!pair->is_string()) {
      record->Fail(Stage::kDecode,
                   "JSON field '" + options_.json_text_pair_field + "' is not a string");
      return false;
    }
    record->text_pair = pair->get<std::string>();
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (it.key() == options_.json_text_field) continue;
    if (it.key() == options_.json_text_pair_field) continue;
    const nlohmann::json& v = it.value();
    std::string value;
    if (v.is_string()) {
      value = v.get<std::string>();
    } else if (v.is_number() || v.is_boolean()) {
      value = v.dump();
    } else {
      continue;  // nested values are not attributes
    }
    if (it.key() == options_.json_id_field) {
      record->id = std::move(value);
    } else {
      record->attributes[it.key()] = std::move(value);
    }
  }
  return CheckText(record);
}

bool Decoder::DecodeProtobuf(Record* record) const {
  nlpflow::v1::InputRecord input;
  if (!input.ParseFromString(record->payload)) {
    record->Fail(Stage::kDecode, "invalid Protobuf: not an nlpflow.v1.InputRecord");
    return false;
  }
  // proto3 string fields are not checked for UTF-8 by ParseFromString in
  // every build; CheckText does it.
  record->text = std::move(*input.mutable_text());
  if (!input.text_pair().empty()) record->text_pair = std::move(*input.mutable_text_pair());
  record->id = input.id();
  for (const auto& [k, v] : input.attributes()) record->attributes[k] = v;
  return CheckText(record);
}

}  // namespace nlpflow
