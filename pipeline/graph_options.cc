#include "pipeline/graph_options.h"

namespace nlpflow {

DecodeOptions DecodeOptionsFrom(const Config& config) {
  DecodeOptions d;
  // Validated values: ParseInputFormat cannot fail here.
  d.format = ParseInputFormat(config.input.format).value();
  d.json_text_field = config.input.json_text_field;
  d.json_text_pair_field = config.input.json_text_pair_field;
  d.json_id_field = config.input.json_id_field;
  d.max_record_bytes = config.input.max_record_bytes;
  return d;
}

BatcherOptions BatcherOptionsFrom(const Config& config) {
  BatcherOptions b;
  b.policy = config.batch.policy == "fixed" ? BatchPolicy::kFixed : BatchPolicy::kDynamic;
  b.max_batch_size = config.batch.max_batch_size;
  b.max_batch_tokens = config.batch.max_batch_tokens;
  b.max_batch_real_tokens = config.batch.max_batch_real_tokens;
  b.max_queue_delay_us = config.batch.max_queue_delay_us;
  b.max_in_flight_batches = config.model.instances;
  b.deadline_ms = config.batch.deadline_ms;
  b.on_expired = config.batch.on_expired == "process" ? ExpiredAction::kProcess
                                                      : ExpiredAction::kDeadLetter;
  b.priority_header = config.batch.priority_header;
  return b;
}

EncodeOptions EncodeOptionsFrom(const Config& config, const ModelStack& stack) {
  EncodeOptions e;
  e.format = ParseOutputFormat(config.output.format).value();
  e.model_name = stack.name;
  e.model_version = stack.version;
  return e;
}

ServeGraphOptions GraphOptionsFrom(const Config& config) {
  ServeGraphOptions g;
  g.tokenize_concurrency = config.pipeline.tokenize_concurrency;
  g.infer_instances = config.model.instances;
  g.ordered_per_partition = config.pipeline.ordered_per_partition;
  // Validated values: ParseAggregation cannot fail here.
  g.aggregation = ParseAggregation(config.model.aggregation).value();
  return g;
}

}  // namespace nlpflow
