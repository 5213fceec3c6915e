// Messages moved between the nodes of a graph.
//
// A Record is created by a source, filled in stage by stage and handed on as a
// RecordPtr. Ownership moves with the pointer: at any time exactly one node
// works on a record, so no record is ever mutated by two threads at once. The
// shared_ptr exists because oneTBB flow-graph bodies receive their input by
// const reference; it is never used to share a record between two stages.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/encoding.h"
#include "common/model_output.h"

namespace nlpflow {

// Microseconds on the steady clock; stage timestamps use this.
inline int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Where a record came from. For file sources topic is the file name,
// partition is 0 and offset is the line number (0-based).
struct Coordinates {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
};

struct Header {
  std::string key;
  std::string value;
};

// The stage that produced a dead letter.
enum class Stage { kSource, kDecode, kTokenize, kBatch, kInfer, kEncode, kSink };
const char* StageName(Stage stage);

// Steady-clock microseconds at which each stage finished with the record;
// 0 means "not reached". The *_started_us stamps split a stage's time into
// waiting for a worker (previous stage's end to start) and compute (start to
// end).
struct StageTimes {
  int64_t arrived_us = 0;    // handed into the graph by the source
  int64_t decoded_us = 0;
  int64_t tokenized_us = 0;
  int64_t batched_us = 0;    // its batch closed
  int64_t inferred_us = 0;
  int64_t encoded_us = 0;
  int64_t decode_started_us = 0;
  int64_t tokenize_started_us = 0;
  int64_t infer_started_us = 0;  // its batch started running on a model instance
  int64_t encode_started_us = 0;
};

struct Record;
// Receives a finished (or failed) record that someone waits for.
using ReplyFn = std::function<void(std::shared_ptr<Record>)>;

struct Record {
  // Position in arrival order, assigned by the source (0, 1, 2, ...).
  uint64_t sequence = 0;
  Coordinates coords;
  std::optional<std::string> key;  // Kafka message key, bytes as received
  std::vector<Header> headers;
  int64_t timestamp_ms = -1;       // Kafka timestamp; -1 when unknown
  std::string payload;             // the bytes as received

  // Set by decode.
  std::string text;                // valid UTF-8
  // The second text of a sentence pair (cross-encoders, NLI); valid UTF-8.
  // Unset: the record is a single text.
  std::optional<std::string> text_pair;
  std::string id;                  // optional id from the input record
  std::map<std::string, std::string> attributes;

  // Set by tokenize: the whole encoding of text (or of text and text_pair),
  // special tokens included: ids, type ids, byte offsets.
  Encoding encoding;

  // Set by infer (and, for token labels, completed by aggregation): an
  // embedding, a classification or token labels.
  ModelOutput output;

  // Set by encode: the bytes to publish.
  std::string encoded;

  // Set when a stage rejects the record.
  bool failed = false;
  Stage failed_stage = Stage::kSource;
  std::string failure_reason;

  StageTimes times;

  // Set for a record that a caller waits for (an HTTP request, entered with
  // ServeGraph::PutRequest): `text` (and `text_pair`) are set by the caller,
  // there is no decode, and the finished or failed record is handed to
  // `reply` instead of the sink (no result is published, no offset is
  // tracked). Called once, from a graph worker.
  ReplyFn reply;

  void Fail(Stage stage, std::string reason) {
    failed = true;
    failed_stage = stage;
    failure_reason = std::move(reason);
  }
};

using RecordPtr = std::shared_ptr<Record>;

// A closed batch: the records in it, in the order the batcher chose.
struct Batch {
  std::vector<RecordPtr> records;
  int64_t closed_us = 0;
};
using BatchPtr = std::shared_ptr<Batch>;

}  // namespace nlpflow
