#include "pipeline/serve_graph.h"

#include <spdlog/spdlog.h>
#include <tbb/flow_graph.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include "nodes/batch/batcher.h"
#include "nodes/decode/decoder.h"
#include "nodes/encode/encoder.h"
#include "nodes/infer/batch_runner.h"
#include "nodes/infer/model.h"
#include "nodes/tokenize/tokenizer.h"
#include "pipeline/partition_order_sink.h"

namespace nlpflow {

namespace flow = tbb::flow;

// Runs batches on `instances` threads of its own. Submit is called by the
// batcher's thread; `start` runs on the infer thread right before each batch,
// `done` right after it.
class InferPool {
 public:
  using StartFn = std::function<void(Batch*)>;
  using DoneFn = std::function<void(BatchPtr)>;

  InferPool(const Model* model, int32_t pad_id, int instances, StartFn start, DoneFn done)
      : model_(model),
        pad_id_(pad_id),
        instances_(instances),
        start_(std::move(start)),
        done_(std::move(done)) {}
  ~InferPool() { Stop(); }

  void Start() {
    for (int i = 0; i < instances_; ++i) threads_.emplace_back([this] { Run(); });
  }

  void Submit(BatchPtr batch) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(batch));
    }
    cv_.notify_one();
  }

  // Finishes every submitted batch, then joins. Idempotent.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Run() {
    while (true) {
      BatchPtr batch;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and nothing left
        batch = std::move(queue_.front());
        queue_.pop_front();
      }
      start_(batch.get());
      RunBatch(*model_, pad_id_, batch.get());
      done_(std::move(batch));
    }
  }

  const Model* model_;
  const int32_t pad_id_;
  const int instances_;
  const StartFn start_;
  const DoneFn done_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BatchPtr> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;       // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

class ServeGraph::Impl {
 public:
  using DecodeNode = flow::multifunction_node<RecordPtr, std::tuple<RecordPtr, RecordPtr>>;

  Impl(const ServeGraphOptions& options, const DecodeOptions& decode,
       const Tokenizer* tokenizer, const BatcherOptions& batch, const Model* model,
       const EncodeOptions& encode, ResultSink* sink)
      : decoder_(decode),
        tokenizer_(tokenizer),
        aggregation_(options.aggregation),
        encoder_(encode),
        order_(options.ordered_per_partition ? std::make_unique<PartitionOrderSink>(sink)
                                             : nullptr),
        sink_(order_ ? order_.get() : sink),
        metrics_(options.metrics),
        before_infer_(options.before_infer),
        after_infer_for_test_(options.after_infer_for_test),
        batcher_(
            batch, [this](BatchPtr b) { pool_.Submit(std::move(b)); },
            // Past its deadline: a dead letter like any other (its offset is
            // committed once the dead letter is acknowledged).
            [this](RecordPtr r) { dead_letter_.try_put(std::move(r)); }),
        pool_(model, tokenizer->pad_id(), options.infer_instances, [this](Batch* b) { BeforeInfer(b); },
              [this](BatchPtr b) { AfterInfer(std::move(b)); }),
        decode_(graph_, Concurrency(options),
                [this](const RecordPtr& r, DecodeNode::output_ports_type& ports) {
                  r->times.decode_started_us = NowMicros();
                  const bool decoded = decoder_.Decode(r.get());
                  r->times.decoded_us = NowMicros();
                  if (decoded) {
                    std::get<0>(ports).try_put(r);
                  } else {
                    batcher_.DropUpstream();
                    std::get<1>(ports).try_put(r);
                  }
                }),
        tokenize_(graph_, Concurrency(options),
                  [this](const RecordPtr& r) {
                    r->times.tokenize_started_us = NowMicros();
                    r->encoding = r->text_pair ? tokenizer_->EncodePair(r->text, *r->text_pair)
                                               : tokenizer_->Encode(r->text);
                    r->times.tokenized_us = NowMicros();
                    batcher_.Add(r);
                    return flow::continue_msg();
                  }),
        encode_(graph_, flow::unlimited,
                [this](const RecordPtr& r) {
                  if (!r->failed) Aggregate(r.get());
                  if (r->failed) {
                    DeadLetter(r);
                  } else {
                    r->times.encode_started_us = NowMicros();
                    encoder_.EncodeResult(r.get());
                    if (metrics_ != nullptr) {
                      // EncodeResult stamps encoded_us before it serializes
                      // (the stamp is part of the output); measure the end.
                      StageTimes t = r->times;
                      t.encoded_us = NowMicros();
                      metrics_->ObserveResult(t);
                    }
                    sink_->Publish(r);
                    counters_.AddOut();
                  }
                  return flow::continue_msg();
                }),
        dead_letter_(graph_, flow::unlimited, [this](const RecordPtr& r) {
          DeadLetter(r);
          return flow::continue_msg();
        }) {
    flow::make_edge(flow::output_port<0>(decode_), tokenize_);
    flow::make_edge(flow::output_port<1>(decode_), dead_letter_);
  }

  static size_t Concurrency(const ServeGraphOptions& o) {
    return o.tokenize_concurrency > 0 ? static_cast<size_t>(o.tokenize_concurrency)
                                      : flow::unlimited;
  }

  ~Impl() {
    // Never leave the graph with a reserved wait: its destructor would block.
    if (started_ && !drained_) (void)Drain(0);
  }

  void Start() {
    started_ = true;
    // Records enter from threads outside the graph (source, batcher, infer);
    // this keeps wait_for_all from returning while they may still come.
    graph_.reserve_wait();
    batcher_.Start();
    pool_.Start();
  }

  void Put(RecordPtr r) {
    counters_.AddIn();
    if (order_) order_->Arrived(*r);
    batcher_.ExpectUpstream();
    decode_.try_put(std::move(r));
  }

  void PutRequest(RecordPtr r) {
    // Tokenized here, on the caller's thread, and handed to the batcher
    // directly: through the decode and tokenize nodes it would queue behind
    // every stream record in them (up to pipeline.max_in_flight), and the
    // batcher's priority could only start to count after that. Not through
    // the reorder stage either: a request has no partition.
    counters_.AddIn();
    batcher_.ExpectUpstream();
    const int64_t now = NowMicros();
    r->times.decode_started_us = r->times.decoded_us = now;
    r->times.tokenize_started_us = now;
    r->encoding = r->text_pair ? tokenizer_->EncodePair(r->text, *r->text_pair)
                               : tokenizer_->Encode(r->text);
    r->times.tokenized_us = NowMicros();
    batcher_.Add(std::move(r));
  }

  Status Drain(int64_t timeout_ms) {
    drained_ = true;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (counters_.InFlight() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const int64_t left = counters_.InFlight();
    // Stop in flow order: whatever the batcher holds goes to the pool, the
    // pool finishes it, then the graph runs dry.
    batcher_.Stop();
    pool_.Stop();
    graph_.release_wait();
    graph_.wait_for_all();
    if (left > 0) {
      return Status::DeadlineExceeded(std::to_string(left) +
                                      " records were still in the graph after " +
                                      std::to_string(timeout_ms) + " ms");
    }
    return Status::Ok();
  }

  int64_t in_graph() const { return counters_.InFlight(); }
  GraphCounts counts() const { return counters_.Snapshot(); }

 private:
  // On the infer thread, right before the model runs the batch.
  void BeforeInfer(Batch* batch) {
    if (before_infer_) before_infer_();
    const int64_t now = NowMicros();
    for (auto& r : batch->records) r->times.infer_started_us = now;
    if (metrics_ != nullptr) metrics_->ObserveBatch(*batch);
  }

  void AfterInfer(BatchPtr batch) {
    if (after_infer_for_test_) after_infer_for_test_(*batch);
    const int64_t now = NowMicros();
    for (auto& r : batch->records) {
      r->times.inferred_us = now;
      if (r->reply) {
        // On this thread, not through the encode node: there is nothing to
        // encode, and under load the TBB workers are busy with the stream's
        // decode and tokenize, so the reply would wait behind them.
        Reply(r);
      } else {
        encode_.try_put(r);
      }
    }
    batcher_.BatchDone();
  }

  // Token labels to entities (the model's output holds only logits).
  void Aggregate(Record* r) const {
    auto* tokens = std::get_if<TokenClassificationOutput>(&r->output);
    if (tokens == nullptr) return;
    const Status s = AggregateTokens(aggregation_, *tokenizer_, r->text, r->encoding, tokens);
    if (!s.ok()) r->Fail(Stage::kInfer, s.ToString());
  }

  // A request's record, finished or failed, back to its caller. Counted
  // before the reply: a caller that saw its reply sees it out of the graph.
  void Reply(const RecordPtr& r) {
    if (!r->failed) Aggregate(r.get());
    if (r->failed) {
      counters_.AddDead(r->failed_stage);
    } else {
      r->times.encode_started_us = r->times.encoded_us = NowMicros();
      if (metrics_ != nullptr) metrics_->ObserveResult(r->times);
      counters_.AddOut();
    }
    r->reply(r);
  }

  void DeadLetter(const RecordPtr& r) {
    if (r->reply) {  // expired in the batcher (a request has no deadline today)
      Reply(r);
      return;
    }
    std::string encoded = encoder_.EncodeDeadLetter(*r);
    sink_->PublishDeadLetter(r, std::move(encoded));
    counters_.AddDead(r->failed_stage);
  }

  const Decoder decoder_;
  const Tokenizer* tokenizer_;
  const Aggregation aggregation_;
  const Encoder encoder_;
  // The reorder stage (ordered_per_partition), else null.
  const std::unique_ptr<PartitionOrderSink> order_;
  ResultSink* const sink_;  // order_, or the graph's sink
  const GraphMetrics* const metrics_;
  const std::function<void()> before_infer_;
  const std::function<void(const Batch&)> after_infer_for_test_;
  GraphCounters counters_;
  bool started_ = false;  // owner's thread only
  bool drained_ = false;  // owner's thread only

  // Declared before the nodes: the nodes' bodies use them, and members are
  // destroyed in reverse order.
  Batcher batcher_;
  InferPool pool_;
  flow::graph graph_;
  DecodeNode decode_;
  flow::function_node<RecordPtr, flow::continue_msg> tokenize_;
  flow::function_node<RecordPtr, flow::continue_msg> encode_;
  flow::function_node<RecordPtr, flow::continue_msg> dead_letter_;
};

Result<std::unique_ptr<ServeGraph>> ServeGraph::Create(
    const ServeGraphOptions& options, const DecodeOptions& decode,
    const Tokenizer* tokenizer, const BatcherOptions& batch, const Model* model,
    const EncodeOptions& encode, ResultSink* sink) {
  if (tokenizer == nullptr || model == nullptr || sink == nullptr) {
    return Status::InvalidArgument("ServeGraph needs a tokenizer, a model and a sink");
  }
  if (options.infer_instances < 1) {
    return Status::InvalidArgument("infer_instances must be at least 1");
  }
  BatcherOptions b = batch;
  b.max_in_flight_batches = options.infer_instances;
  return std::unique_ptr<ServeGraph>(new ServeGraph(
      std::make_unique<Impl>(options, decode, tokenizer, b, model, encode, sink)));
}

ServeGraph::ServeGraph(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ServeGraph::~ServeGraph() = default;
void ServeGraph::Start() { impl_->Start(); }
void ServeGraph::Put(RecordPtr record) { impl_->Put(std::move(record)); }
void ServeGraph::PutRequest(RecordPtr record) { impl_->PutRequest(std::move(record)); }
int64_t ServeGraph::in_graph() const { return impl_->in_graph(); }
GraphCounts ServeGraph::counts() const { return impl_->counts(); }
Status ServeGraph::Drain(int64_t timeout_ms) { return impl_->Drain(timeout_ms); }

}  // namespace nlpflow
