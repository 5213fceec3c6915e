// The serve graph: decode -> tokenize -> batch -> infer -> encode -> sink,
// with failed records routed to the sink's dead letters. `nlpflow run` (Kafka
// in, Kafka out), `nlpflow embed` (file in, file out) and the offline graphs
// are this graph with different sources and sinks. It holds a Tokenizer and a
// Model behind their interfaces, whatever the task (embedding,
// classification, token labels) and the runtime.
//
//   source thread --Put--> [decode] --> [tokenize] --> Batcher (own thread)
//                             |                           |
//                             v                           v
//                       [dead letter] <---------- infer threads (one per
//                             |                    model instance)
//                             v                           |
//                          sink  <------ [encode] <-------+
//
// Records the batcher finds past their deadline go to [dead letter]. For
// token classification, [encode] first maps the token labels back to the
// text (aggregation); a record it cannot map is a dead letter of stage infer. With
// ordered_per_partition a reorder stage sits in front of the sink.
//
// [x] are oneTBB flow-graph nodes running on TBB workers. The batcher needs a
// clock and the model calls run for milliseconds, so both run on threads of
// their own and hand work back into the graph with try_put: a long LibTorch
// call must not occupy a TBB worker that decode or tokenize needs.
//
// Requests (PutRequest: records with a `reply`, from the HTTP front door)
// are tokenized on the caller's thread and enter the same batcher (ahead of
// the decode and tokenize queues, which can hold up to max_in_flight stream
// records), and come out at the same place: their
// finished or failed record goes to its reply instead of the sink and the
// reorder stage, so the sink, and the offset tracker behind it, never see
// them. The batcher puts them first if their priority header says "high".
//
// Threads: Put is called by one source thread at a time; PutRequest by any
// thread, concurrently with Put and with itself. The sink is called
// from TBB workers, concurrently. Drain is called once, by the owner, after
// the source stopped calling Put.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "common/record.h"
#include "common/result_sink.h"
#include "common/status.h"
#include "nodes/infer/token_aggregation.h"
#include "pipeline/graph_metrics.h"

namespace nlpflow {

class Model;
class Tokenizer;
struct DecodeOptions;
struct EncodeOptions;
struct BatcherOptions;

struct ServeGraphOptions {
  // Decode and tokenize run on up to this many TBB workers at once; 0 lets
  // TBB use every core.
  int tokenize_concurrency = 0;
  // Model instances, each with a thread of its own; they share the weights.
  int infer_instances = 1;
  // Results and dead letters of each (topic, partition) reach the sink in
  // the order the records were Put (see pipeline/partition_order_sink.h).
  bool ordered_per_partition = false;
  // Tests only: runs on the infer thread after each batch, before its
  // records go on (a test delays batches with it to make them finish out of
  // order).
  std::function<void(const Batch&)> after_infer_for_test;
  // Histograms to record into (stage times, batch shapes); null: none. Must
  // outlive the graph.
  const GraphMetrics* metrics = nullptr;
  // Token classification: how the model's token labels become entities
  // (nodes/infer/token_aggregation.h); runs in the encode stage.
  Aggregation aggregation = Aggregation::kSimple;
  // Test hook: runs on an infer thread before each batch; a test blocks it to
  // stall the infer stage.
  std::function<void()> before_infer;
};

class ServeGraph {
 public:
  // Nothing is started until Start(). The model, tokenizer and sink must
  // outlive the graph. Batches are padded with tokenizer->pad_id().
  static Result<std::unique_ptr<ServeGraph>> Create(
      const ServeGraphOptions& options, const DecodeOptions& decode,
      const Tokenizer* tokenizer, const BatcherOptions& batch,
      const Model* model, const EncodeOptions& encode,
      ResultSink* sink);
  ~ServeGraph();

  void Start();
  // Hands a record from the source into the graph; returns at once.
  void Put(RecordPtr record);
  // Tokenizes a request's record on the calling thread and hands it to the
  // batcher; returns without waiting for it. REQUIRES: record->reply is set
  // and record->text holds the text (there is no decode); Start() was called
  // and Drain() was not.
  void PutRequest(RecordPtr record);
  // Records handed in by Put and not yet given to the sink.
  int64_t in_graph() const;
  // In, out, dead letters and in flight, consistent (see GraphCounters).
  GraphCounts counts() const;
  // Waits up to timeout_ms for every record to reach the sink, then stops
  // the batcher and infer threads. Returns DeadlineExceeded if records were
  // still in the graph at the deadline (they were not published).
  Status Drain(int64_t timeout_ms);

  class Impl;

 private:
  explicit ServeGraph(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nlpflow
