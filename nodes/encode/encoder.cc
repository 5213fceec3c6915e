#include "nodes/encode/encoder.h"

#include <algorithm>
#include <map>
#include <string>
#include <variant>
#include <nlohmann/json.hpp>
#include <vector>

#include "schemas/dead_letter.pb.h"
#include "schemas/result.pb.h"

namespace nlpflow {
namespace {

// JSON whose floating-point numbers are floats: dump() then writes the
// shortest text that reads back as the same float ("0.0117287375"), not the
// 17 digits of the float widened to double.
using FloatJson = nlohmann::basic_json<std::map, std::vector, std::string, bool, std::int64_t,
                                       std::uint64_t, float>;

}  // namespace

Result<OutputFormat> ParseOutputFormat(const std::string& name) {
  if (name == "json") return OutputFormat::kJson;
  if (name == "protobuf") return OutputFormat::kProtobuf;
  return Status::InvalidArgument("unknown output format '" + name + "' (json or protobuf)");
}

StageDurations DurationsOf(const StageTimes& t) {
  auto span = [](int64_t from, int64_t to) {
    return (from > 0 && to >= from) ? to - from : 0;
  };
  StageDurations d;
  d.decode_us = span(t.arrived_us, t.decoded_us);
  d.tokenize_us = span(t.decoded_us, t.tokenized_us);
  d.queue_us = span(t.tokenized_us, t.batched_us);
  d.infer_us = span(t.batched_us, t.inferred_us);
  d.encode_us = span(t.inferred_us, t.encoded_us);
  d.total_us = span(t.arrived_us, t.encoded_us);
  return d;
}

std::string Base64Encode(const std::string& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = b[i] << 16;
    if (i + 1 < bytes.size()) v |= b[i + 1] << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += (i + 1 < bytes.size()) ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

namespace {

// Label ids ordered best first: by score, descending; equal scores keep
// label-id order (as the pipeline's stable sort does).
std::vector<size_t> BestFirst(const ClassificationOutput& c) {
  std::vector<size_t> order(c.scores.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&c](size_t a, size_t b) { return c.scores[a] > c.scores[b]; });
  return order;
}

std::string LabelName(const ClassificationOutput& c, size_t id) {
  if (c.labels != nullptr && id < c.labels->size()) return (*c.labels)[id];
  return "LABEL_" + std::to_string(id);
}

void OutputToJson(const ModelOutput& output, FloatJson* j) {
  if (const auto* e = std::get_if<EmbeddingOutput>(&output)) {
    (*j)["embedding"] = e->values;
  } else if (const auto* c = std::get_if<ClassificationOutput>(&output)) {
    const std::vector<size_t> order = BestFirst(*c);
    FloatJson labels = FloatJson::array();
    for (size_t id : order) labels.push_back({{"label", LabelName(*c, id)}, {"score", c->scores[id]}});
    if (!order.empty()) {
      (*j)["label"] = LabelName(*c, order[0]);
      (*j)["score"] = c->scores[order[0]];
    }
    (*j)["labels"] = std::move(labels);
    (*j)["logits"] = c->logits;
  } else if (const auto* t = std::get_if<TokenClassificationOutput>(&output)) {
    FloatJson entities = FloatJson::array();
    for (const TokenEntity& e : t->entities) {
      FloatJson x;
      x[t->grouped ? "entity_group" : "entity"] = e.entity;
      x["score"] = e.score;
      if (!t->grouped) x["index"] = e.index;
      x["word"] = e.word;
      x["start"] = e.start;
      x["end"] = e.end;
      x["byte_start"] = e.byte_start;
      x["byte_end"] = e.byte_end;
      entities.push_back(std::move(x));
    }
    (*j)["entities"] = std::move(entities);
  }
}

void OutputToProto(const ModelOutput& output, nlpflow::v1::Result* r) {
  if (const auto* e = std::get_if<EmbeddingOutput>(&output)) {
    r->mutable_embedding()->Add(e->values.begin(), e->values.end());
  } else if (const auto* c = std::get_if<ClassificationOutput>(&output)) {
    auto* pc = r->mutable_classification();
    const std::vector<size_t> order = BestFirst(*c);
    if (!order.empty()) {
      pc->set_label(LabelName(*c, order[0]));
      pc->set_score(c->scores[order[0]]);
    }
    for (size_t id : order) {
      auto* l = pc->add_labels();
      l->set_label(LabelName(*c, id));
      l->set_score(c->scores[id]);
    }
    pc->mutable_logits()->Add(c->logits.begin(), c->logits.end());
  } else if (const auto* t = std::get_if<TokenClassificationOutput>(&output)) {
    auto* pt = r->mutable_token_classification();
    for (const TokenEntity& e : t->entities) {
      auto* x = pt->add_entities();
      if (t->grouped) {
        x->set_entity_group(e.entity);
        x->set_index(-1);
      } else {
        x->set_entity(e.entity);
        x->set_index(static_cast<int32_t>(e.index));
      }
      x->set_score(e.score);
      x->set_word(e.word);
      x->set_start(e.start);
      x->set_end(e.end);
      x->set_byte_start(e.byte_start);
      x->set_byte_end(e.byte_end);
    }
  }
}

}  // namespace

void Encoder::EncodeResult(Record* record) const {
  record->times.encoded_us = NowMicros();
  const StageDurations d = DurationsOf(record->times);
  if (options_.format == OutputFormat::kJson) {
    FloatJson j;
    if (!record->id.empty()) j["id"] = record->id;
    j["model"] = options_.model_name;
    j["model_version"] = options_.model_version;
    OutputToJson(record->output, &j);
    j["num_tokens"] = record->encoding.ids.size();
    j["source"] = {{"topic", record->coords.topic},
                   {"partition", record->coords.partition},
                   {"offset", record->coords.offset},
                   {"timestamp_ms", record->timestamp_ms}};
    if (!record->attributes.empty()) j["attributes"] = record->attributes;
    j["timings_us"] = {{"decode", d.decode_us},   {"tokenize", d.tokenize_us},
                       {"queue", d.queue_us},     {"infer", d.infer_us},
                       {"encode", d.encode_us},   {"total", d.total_us}};
    // JSON and Protobuf carry equal values (see FloatJson). A word decoded
    // from a byte-level BPE token may hold a partial UTF-8 sequence: replace
    // it, never throw.
    record->encoded = j.dump(-1, ' ', false, FloatJson::error_handler_t::replace);
    return;
  }
  nlpflow::v1::Result r;
  r.set_id(record->id);
  r.set_model_name(options_.model_name);
  r.set_model_version(options_.model_version);
  OutputToProto(record->output, &r);
  r.set_num_tokens(static_cast<int32_t>(record->encoding.ids.size()));
  auto* src = r.mutable_source();
  src->set_topic(record->coords.topic);
  src->set_partition(record->coords.partition);
  src->set_offset(record->coords.offset);
  src->set_timestamp_ms(record->timestamp_ms);
  for (const auto& [k, v] : record->attributes) (*r.mutable_attributes())[k] = v;
  auto* t = r.mutable_timings();
  t->set_decode_us(d.decode_us);
  t->set_tokenize_us(d.tokenize_us);
  t->set_queue_us(d.queue_us);
  t->set_infer_us(d.infer_us);
  t->set_encode_us(d.encode_us);
  t->set_total_us(d.total_us);
  record->encoded = r.SerializeAsString();
}

std::string Encoder::EncodeDeadLetter(const Record& record) const {
  if (options_.format == OutputFormat::kJson) {
    nlohmann::json j;
    j["stage"] = StageName(record.failed_stage);
    j["reason"] = record.failure_reason;
    j["topic"] = record.coords.topic;
    j["partition"] = record.coords.partition;
    j["offset"] = record.coords.offset;
    j["timestamp_ms"] = record.timestamp_ms;
    if (record.key) j["key_base64"] = Base64Encode(*record.key);
    j["original_base64"] = Base64Encode(record.payload);
    // The reason may quote bytes of the input; replace, never throw.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  nlpflow::v1::DeadLetter dl;
  dl.set_original(record.payload);
  dl.set_topic(record.coords.topic);
  dl.set_partition(record.coords.partition);
  dl.set_offset(record.coords.offset);
  dl.set_stage(StageName(record.failed_stage));
  dl.set_reason(record.failure_reason);
  if (record.key) {
    dl.set_key(*record.key);
    dl.set_has_key(true);
  }
  dl.set_timestamp_ms(record.timestamp_ms);
  return dl.SerializeAsString();
}

}  // namespace nlpflow
