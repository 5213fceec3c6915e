// encode: a processed record to the bytes published on the output topic, and
// a failed record to the bytes of its dead letter.
#pragma once

#include <string>

#include "common/record.h"
#include "common/status.h"

namespace nlpflow {

enum class OutputFormat {
  kJson,      // one JSON object (layout in the README)
  kProtobuf,  // nlpflow.v1.Result / nlpflow.v1.DeadLetter (schemas/)
};

Result<OutputFormat> ParseOutputFormat(const std::string& name);

struct EncodeOptions {
  OutputFormat format = OutputFormat::kJson;
  std::string model_name;
  std::string model_version;
};

// Per-stage durations of a record, in microseconds, from its StageTimes.
struct StageDurations {
  int64_t decode_us = 0;
  int64_t tokenize_us = 0;
  int64_t queue_us = 0;  // waiting in the batcher
  int64_t infer_us = 0;
  int64_t encode_us = 0;
  int64_t total_us = 0;  // arrival to end of encode
};
StageDurations DurationsOf(const StageTimes& t);

// Stateless after construction; safe to call from many threads.
class Encoder {
 public:
  explicit Encoder(EncodeOptions options) : options_(std::move(options)) {}

  // Sets record->encoded from record->output (an embedding, a classification or
  // token entities; README "Results" has the layout); stamps times.encoded_us first so
  // the published timings include encode itself (up to serialization).
  void EncodeResult(Record* record) const;

  // The dead letter of a failed record: original bytes, coordinates, stage and
  // reason. JSON carries the original bytes base64-encoded.
  std::string EncodeDeadLetter(const Record& record) const;

 private:
  EncodeOptions options_;
};

std::string Base64Encode(const std::string& bytes);

}  // namespace nlpflow
