// decode: bytes to text according to the configured input format.
//
// A record that cannot be decoded is marked failed (Record::Fail) with a reason
// for a person; the graph sends it to the dead letters. Decode never throws.
#pragma once

#include <cstdint>
#include <string>

#include "common/record.h"
#include "common/status.h"

namespace nlpflow {

enum class InputFormat {
  kText,      // the payload is the text, UTF-8
  kJson,      // a JSON object with a string field holding the text
  kProtobuf,  // nlpflow.v1.InputRecord (schemas/input_record.proto)
};

struct DecodeOptions {
  InputFormat format = InputFormat::kText;
  // JSON: the field with the text, and the optional field with an id (a
  // string or a number; other JSON fields become attributes when scalar).
  std::string json_text_field = "text";
  // JSON: the optional field with a sentence pair's second text (a string;
  // it sets Record::text_pair and is not an attribute).
  std::string json_text_pair_field = "text_pair";
  std::string json_id_field = "id";
  // Payloads larger than this are rejected before any parsing.
  int64_t max_record_bytes = 1 << 20;
};

// Parses "text" | "json" | "protobuf".
Result<InputFormat> ParseInputFormat(const std::string& name);

// Stateless after construction; Decode may be called from many threads.
class Decoder {
 public:
  explicit Decoder(DecodeOptions options) : options_(std::move(options)) {}

  // Fills record->text (valid UTF-8, not empty, not only whitespace), the
  // optional text_pair (valid UTF-8), id and attributes from record->payload; on failure calls record->Fail(kDecode,
  // reason) and returns false. Invalid UTF-8 is rejected, not repaired: a
  // replaced character would silently change what the model sees.
  bool Decode(Record* record) const;

 private:
  bool DecodeJson(Record* record) const;
  bool DecodeProtobuf(Record* record) const;
  bool CheckText(Record* record) const;

  DecodeOptions options_;
};

// Returns the byte index of the first invalid UTF-8 sequence, or -1 if the
// whole string is valid (no overlong forms, no surrogates, <= U+10FFFF).
int64_t FindInvalidUtf8(const std::string& s);

}  // namespace nlpflow
