// The serve graph: Kafka source -> embedding graph -> Kafka sink, with the
// offset tracker closing the loop (at-least-once).
//
// Start-up order, so that every problem stops start-up with one clear line
// before any record is read: model and tokenizer (missing or broken files),
// then the embedded broker if configured, then the producer and the consumer
// (unreachable broker, missing input topic), then the output and dead-letter
// topics are created if missing.
//
// Shutdown (Stop): the source stops handing over records and keeps polling
// and committing while the graph finishes what is in flight; once every
// in-flight record's result or dead letter is acknowledged (or
// pipeline.shutdown_timeout_ms passed) it commits synchronously and leaves the
// group; then the graph and the producer are closed. So a clean stop takes at
// most about shutdown_timeout_ms plus one batch, and loses nothing: records
// not acknowledged by then are not committed and are read again.
//
// A failed delivery (the broker did not acknowledge a result within
// message.timeout.ms) is fatal: the pipeline stops and `nlpflow run` exits 1.
// Carrying on would stall the committed offset behind the failed record
// forever while work continued; a restart re-reads from the last commit.
//
// Metrics (metrics.listen not empty): the HTTP endpoint starts first, before
// the model loads, so that /healthz and /readyz answer during start-up; see
// README "Metrics" for every metric. /readyz is 200 once the model is loaded
// and warmed up, the pipeline started and the consumer joined its group (with
// or without partitions: a standby member is ready), and while it is not
// stopping and healthy; /healthz is 200 while status() is OK.
//
// Threads: Create, Start, Stop, bootstrap_servers and status are for the
// owner's thread. status, ready and metrics_address may also be called by the
// metrics server's threads.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "pipeline/config.h"
#include "pipeline/model_stack.h"

namespace nlpflow {

// For tests only.
struct ServeAppTestHooks {
  // Runs on an infer thread before each batch (ServeGraphOptions::before_infer).
  std::function<void()> before_infer;
  // Loads the tokenizer and model instead of LoadModelStack (a test serves a
  // fake model through the real pipeline with it).
  std::function<Result<ModelStack>(const Config&)> load_model_stack;
};

class ServeApp {
 public:
  static Result<std::unique_ptr<ServeApp>> Create(const Config& config,
                                                  ServeAppTestHooks hooks = {});
  ~ServeApp();

  // Joins the group and starts consuming.
  Status Start();
  // Idempotent; returns the first error the pipeline met, if any.
  Status Stop();
  // The brokers in use: the configured ones, or the embedded broker's address.
  const std::string& bootstrap_servers() const;
  // OK while healthy; the first fatal error otherwise (the owner should Stop).
  Status status() const;
  // True once the consumer group assigned this instance partitions (tests
  // wait on it before producing; /readyz does not need partitions).
  bool ready() const;
  // Results and dead letters acknowledged by the broker so far.
  int64_t delivered() const;
  // The metrics endpoint's bound address ("127.0.0.1:38211"); "" if off.
  std::string metrics_address() const;

  class Impl;

 private:
  explicit ServeApp(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nlpflow
