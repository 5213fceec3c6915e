#include "pipeline/serve_app.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>

#include "connectors/kafka/embedded_broker.h"
#include "connectors/kafka/kafka_sink.h"
#include "connectors/kafka/kafka_source.h"
#include "connectors/kafka/offset_tracker.h"
#include "connectors/kafka/topic_admin.h"
#include "pipeline/build_info.h"
#include "pipeline/serve_graph.h"
#include "pipeline/graph_options.h"
#include "pipeline/http_inference.h"
#include "pipeline/kafka_result_sink.h"
#include "pipeline/metrics_server.h"
#include "pipeline/model_stack.h"

namespace nlpflow {

namespace {

// The graph's sink when there is no Kafka (kafka.input_topics empty): only
// requests enter the graph, and they leave through their replies, so a call
// here is a bug; it stops the pipeline instead of passing silently.
class NoKafkaSink : public ResultSink {
 public:
  explicit NoKafkaSink(std::function<void(const Status&)> on_error)
      : on_error_(std::move(on_error)) {}
  void Publish(RecordPtr) override {
    on_error_(Status::Internal("a result reached the Kafka sink with no Kafka configured"));
  }
  void PublishDeadLetter(RecordPtr, std::string) override {
    on_error_(Status::Internal("a dead letter reached the Kafka sink with no Kafka configured"));
  }

 private:
  const std::function<void(const Status&)> on_error_;
};

}  // namespace

class ServeApp::Impl {
 public:
  Impl(const Config& config, ServeAppTestHooks hooks)
      : config_(config), hooks_(std::move(hooks)) {}

  Status Init() {
    RegisterMetrics();
    if (!config_.metrics.listen.empty()) {
      HttpRoutes routes;
      if (config_.http.inference) {
        HttpInferenceOptions ho;
        ho.max_concurrent_requests = config_.http.max_concurrent_requests;
        ho.request_timeout_ms = config_.http.request_timeout_ms;
        ho.priority_header = config_.batch.priority_header;
        http_ = std::make_unique<HttpInference>(ho, &registry_);
        routes = http_->Routes();
        routes.max_body_bytes = config_.http.max_body_bytes;
      }
      NLPFLOW_ASSIGN_OR_RETURN(
          metrics_server_,
          MetricsServer::Start(config_.metrics.listen, &registry_,
                               {[this] { return HealthStatus(); }, [this] { return ReadyStatus(); }},
                               std::move(routes)));
    }
    NLPFLOW_ASSIGN_OR_RETURN(stack_, hooks_.load_model_stack ? hooks_.load_model_stack(config_)
                                                             : LoadModelStack(config_));
    // LoadModelStack ran the warm-up batch.
    registry_
        .AddGauge("nlpflow_model_info", "The model in use (value 1)",
                  {{"name", stack_.name},
                   {"version", stack_.version},
                   {"precision", config_.model.precision},
                   {"instances", std::to_string(config_.model.instances)}})
        ->Set(1);
    model_ready_.store(true);
    if (kafka_) {
      NLPFLOW_RETURN_IF_ERROR(InitKafka());
    } else {
      result_sink_ = std::make_unique<NoKafkaSink>([this](const Status& s) { Fail(s); });
    }
    ServeGraphOptions graph_options = GraphOptionsFrom(config_);
    graph_options.metrics = &graph_metrics_;
    graph_options.before_infer = hooks_.before_infer;
    NLPFLOW_ASSIGN_OR_RETURN(
        graph_, ServeGraph::Create(graph_options, DecodeOptionsFrom(config_),
                                   stack_.tokenizer.get(), BatcherOptionsFrom(config_),
                                   stack_.model.get(), EncodeOptionsFrom(config_, stack_),
                                   result_sink_.get()));
    if (kafka_) NLPFLOW_RETURN_IF_ERROR(InitSource());
    initialized_.store(true);
    return Status::Ok();
  }

  // The producer, the topics and the sink over them.
  Status InitKafka() {
    bootstrap_ = config_.kafka.bootstrap_servers;
    if (bootstrap_ == "embedded") {
      std::vector<TopicSpec> topics;
      for (const auto& t : config_.kafka.input_topics) {
        topics.push_back({t, config_.kafka.topic_partitions, 1});
      }
      topics.push_back({config_.kafka.output_topic, config_.kafka.topic_partitions, 1});
      topics.push_back({config_.kafka.dead_letter_topic, config_.kafka.topic_partitions, 1});
      NLPFLOW_ASSIGN_OR_RETURN(embedded_, EmbeddedBroker::Start(1, topics));
      bootstrap_ = embedded_->bootstrap_servers();
    }

    KafkaSinkOptions so;
    so.bootstrap_servers = bootstrap_;
    so.client_id = config_.kafka.client_id;
    so.connect_timeout_ms = config_.kafka.connect_timeout_ms;
    so.producer_properties = WithSecurity(config_, config_.kafka.producer);
    if (exactly_once_) {
      so.transactional_id = TransactionalId(config_);
      so.transaction_timeout_ms = config_.delivery.transaction_timeout_ms;
      so.message_timeout_ms = std::min(so.message_timeout_ms, so.transaction_timeout_ms);
    }
    NLPFLOW_ASSIGN_OR_RETURN(
        producer_, KafkaSink::Create(so, [this](const DeliveryReport& r) { OnDelivery(r); }));

    if (!embedded_) {
      NLPFLOW_RETURN_IF_ERROR(CreateTopics(
          bootstrap_,
          {{config_.kafka.output_topic, config_.kafka.topic_partitions,
            config_.kafka.topic_replication},
           {config_.kafka.dead_letter_topic, config_.kafka.topic_partitions,
            config_.kafka.topic_replication}},
          config_.kafka.connect_timeout_ms, WithSecurity(config_, config_.kafka.producer)));
    }

    result_sink_ = std::make_unique<KafkaResultSink>(
        producer_.get(), tracker_.get(), /*ordered=*/exactly_once_,
        config_.kafka.output_topic, config_.kafka.dead_letter_topic,
        stack_.name + ":" + stack_.version, [this](const Status& s) { Fail(s); });
    return Status::Ok();
  }

  // The consumer; REQUIRES: the graph exists.
  Status InitSource() {
    KafkaSourceOptions src;
    src.bootstrap_servers = bootstrap_;
    src.group_id = config_.kafka.group_id;
    src.topics = config_.kafka.input_topics;
    src.client_id = config_.kafka.client_id;
    // Exactly-once commits are transactions, one per delivery.commit_interval_ms.
    src.commit_interval_ms = exactly_once_ ? config_.delivery.commit_interval_ms
                                           : config_.kafka.commit_interval_ms;
    src.revoke_timeout_ms = config_.delivery.revoke_timeout_ms;
    src.max_in_flight = config_.pipeline.max_in_flight;
    src.connect_timeout_ms = config_.kafka.connect_timeout_ms;
    src.consumer_properties = WithSecurity(config_, config_.kafka.consumer);
    NLPFLOW_ASSIGN_OR_RETURN(
        source_, KafkaSource::Create(
                     src, tracker_,
                     // The source numbers records in arrival order
                     // (Record::sequence); its fences rely on those numbers.
                     [this](RecordPtr r) {
                       graph_->Put(std::move(r));
                       // Only this thread adds to in_flight(): read after the Track that
                       // preceded this call, it is at most the value the bound applies to.
                       const int64_t unacknowledged = tracker_->in_flight();
                       if (unacknowledged > unacknowledged_max_.load()) {
                         unacknowledged_max_.store(unacknowledged);
                       }
                     },
                     producer_.get()));
    return Status::Ok();
  }

  Status Start() {
    graph_->Start();
    if (source_) NLPFLOW_RETURN_IF_ERROR(source_->Start());
    started_ = true;
    if (http_) {
      HttpInferenceBackend backend;
      backend.tokenizer = stack_.tokenizer.get();
      backend.task = stack_.model->task();
      backend.num_labels = stack_.model->labels().size();
      backend.normalized = config_.model.normalize;
      backend.model_name = stack_.name;
      backend.put = [this](RecordPtr r) { graph_->PutRequest(std::move(r)); };
      http_->Open(std::move(backend));
      spdlog::info("HTTP inference on {}: POST /v1/embeddings, /embed, /predict, /rerank, /tokenize",
                   metrics_server_->address());
    }
    serving_.store(true);
    if (!kafka_) {
      spdlog::info("nlpflow ready: HTTP only (kafka.input_topics is empty)");
      return Status::Ok();
    }
    spdlog::info("nlpflow ready: consuming {} from {} (group {}), results to {}, dead letters to {}, {}",
                 Join(config_.kafka.input_topics), bootstrap_, config_.kafka.group_id,
                 config_.kafka.output_topic, config_.kafka.dead_letter_topic,
                 exactly_once_ ? "exactly-once (transactional.id " + TransactionalId(config_) + ")"
                               : std::string("at-least-once"));
    return Status::Ok();
  }

  Status Stop() {
    if (stopped_) return status();
    stopped_ = true;
    stopping_seen_.store(true);
    serving_.store(false);
    if (!started_) return status();
    const auto start = std::chrono::steady_clock::now();
    const int timeout_ms = config_.pipeline.shutdown_timeout_ms;
    auto left_ms = [&] {
      const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
      return static_cast<int>(std::max<int64_t>(0, timeout_ms - spent));
    };
    // Requests being answered finish first (bounded by
    // http.request_timeout_ms); after this no request enters the graph.
    if (http_) http_->Close();
    const int64_t in_flight = tracker_->in_flight();
    spdlog::info("stopping: {} records in flight", in_flight);
    // Stops reading, waits for in-flight records, commits, leaves the group.
    Status source_status = source_ ? source_->Stop(timeout_ms) : Status::Ok();
    Status graph_status = graph_->Drain(left_ms());
    Status sink_status = producer_ ? producer_->Close(left_ms()) : Status::Ok();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
    spdlog::info("stopped in {} ms: {} delivered, {} not acknowledged (read again on restart)",
                 took, delivered_.load(), tracker_->in_flight());
    if (!source_status.ok()) Fail(source_status.WithContext("consumer"));
    if (!graph_status.ok()) Fail(graph_status.WithContext("graph"));
    if (!sink_status.ok()) Fail(sink_status.WithContext("producer"));
    return status();
  }

  Status status() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (!first_error_.ok()) return first_error_;
    if (source_) {
      Status s = source_->status();
      if (!s.ok()) return s.WithContext("consumer");
    }
    if (producer_) {
      Status s = producer_->status();
      if (!s.ok()) return s.WithContext("producer");
    }
    return Status::Ok();
  }

  const std::string& bootstrap_servers() const { return bootstrap_; }
  bool ready() const {
    if (!kafka_) return serving_.load();
    return source_ && source_->stats().assigned_partitions > 0;
  }
  int64_t delivered() const { return delivered_.load(); }
  std::string metrics_address() const {
    return metrics_server_ ? metrics_server_->address() : std::string();
  }

  ~Impl() {
    (void)Stop();
    // Before the members its handlers read.
    metrics_server_.reset();
  }

 private:
  // For the metrics server's threads: what Init has not built yet is not read.
  Status HealthStatus() const {
    if (!initialized_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      return first_error_;
    }
    return status();
  }

  Status ReadyStatus() const {
    if (!model_ready_.load()) return Status::Unavailable("loading the model");
    if (!initialized_.load()) return Status::Unavailable("connecting to Kafka");
    NLPFLOW_RETURN_IF_ERROR(HealthStatus());
    if (!serving_.load()) {
      return Status::Unavailable(stopping_seen_.load() ? "stopping" : "not started");
    }
    // A member with no partitions (more replicas than partitions) is a
    // healthy standby: ready once it is in the group, or a rollout would
    // stall on it. HTTP only: no group to join.
    if (source_ && !source_->stats().joined_group) {
      return Status::Unavailable("not yet in the consumer group");
    }
    return Status::Ok();
  }

  void RegisterMetrics() {
    graph_metrics_ = GraphMetrics::Register(&registry_);
    RegisterBuildInfo(&registry_);
    acknowledged_ = registry_.AddCounter(
        "nlpflow_records_acknowledged_total",
        "Results and dead letters whose delivery the broker acknowledged");
    registry_
        .AddGauge("nlpflow_records_in_flight_limit",
                  "pipeline.max_in_flight: at this many unacknowledged records the source "
                  "pauses")
        ->Set(config_.pipeline.max_in_flight);
    // The collectors read the graph and the source only once initialized_.
    registry_.AddCollector([this] { return CollectGraphCounts(); });
    registry_.AddCollector([this] { return CollectSource(); });
    registry_.AddCollector([] { return CollectProcess(); });
  }

  // One snapshot, so that in = out + dead + in_flight holds in every scrape.
  std::vector<CollectedFamily> CollectGraphCounts() const {
    // Before the graph exists nothing entered it: zeros, so that the series
    // are there from the first scrape on.
    const GraphCounts c = initialized_.load() ? graph_->counts() : GraphCounts{};
    CollectedFamily dead{"nlpflow_records_dead_lettered_total",
                         "Dead letters handed to the sink, by the stage that rejected the record",
                         "counter",
                         {}};
    for (int i = 0; i < kNumStages; ++i) {
      dead.samples.push_back({{{"stage", StageName(static_cast<Stage>(i))}},
                              static_cast<double>(c.dead[i])});
    }
    return {
        {"nlpflow_records_in_total", "Records handed to the graph: by the Kafka source, and one per text of an HTTP request", "counter",
         {{{}, static_cast<double>(c.in)}}},
        {"nlpflow_records_out_total", "Results handed to the sink", "counter",
         {{{}, static_cast<double>(c.out)}}},
        std::move(dead),
        {"nlpflow_records_in_flight",
         "Records in the graph: in - out - dead lettered, from the same snapshot", "gauge",
         {{{}, static_cast<double>(c.in_flight())}}},
    };
  }

  std::vector<CollectedFamily> CollectSource() const {
    if (!initialized_.load() || !source_) return {};
    const KafkaSourceStats st = source_->stats();
    CollectedFamily lag{"nlpflow_consumer_lag",
                        "Records in an assigned partition not yet read: high watermark (as of "
                        "the last fetch) - next offset to read",
                        "gauge",
                        {}};
    for (const PartitionPosition& p : source_->positions()) {
      if (p.high_watermark < 0) continue;  // no fetch answered yet
      int64_t next = p.position;
      // Nothing read since the assignment: the start is the committed offset,
      // which the client does not expose without a broker request; known
      // only for an empty partition. Otherwise the sample is left out.
      if (next < 0 && p.low_watermark == p.high_watermark) next = p.high_watermark;
      if (next < 0) continue;
      lag.samples.push_back({{{"topic", p.topic}, {"partition", std::to_string(p.partition)}},
                             static_cast<double>(std::max<int64_t>(0, p.high_watermark - next))});
    }
    return {
        {"nlpflow_records_unacknowledged",
         "Records handed to the graph whose result or dead letter the broker has not "
         "acknowledged yet (what pipeline.max_in_flight bounds)",
         "gauge",
         {{{}, static_cast<double>(tracker_->in_flight())}}},
        {"nlpflow_records_unacknowledged_max",
         "Highest nlpflow_records_unacknowledged seen when a record was handed over", "gauge",
         {{{}, static_cast<double>(unacknowledged_max_.load())}}},
        {"nlpflow_source_paused", "1 while backpressure pauses the input partitions", "gauge",
         {{{}, st.paused ? 1.0 : 0.0}}},
        {"nlpflow_source_pauses_total", "Times backpressure paused the input partitions",
         "counter",
         {{{}, static_cast<double>(st.pauses)}}},
        {"nlpflow_source_assigned_partitions", "Input partitions assigned to this instance",
         "gauge",
         {{{}, static_cast<double>(st.assigned_partitions)}}},
        std::move(lag),
    };
  }

  // Resident memory now and at its peak, from /proc/self/status (Linux).
  static std::vector<CollectedFamily> CollectProcess() {
    std::ifstream in("/proc/self/status");
    double rss = -1, peak = -1;
    for (std::string line; std::getline(in, line);) {
      auto kib = [&](const char* key, double* out) {
        if (line.rfind(key, 0) == 0) *out = std::stod(line.substr(std::strlen(key))) * 1024;
      };
      kib("VmRSS:", &rss);
      kib("VmHWM:", &peak);
    }
    std::vector<CollectedFamily> out;
    if (rss >= 0) {
      out.push_back({"nlpflow_process_resident_memory_bytes", "Resident memory of the process",
                     "gauge", {{{}, rss}}});
    }
    if (peak >= 0) {
      out.push_back({"nlpflow_process_resident_memory_max_bytes",
                     "Peak resident memory of the process (VmHWM)", "gauge", {{{}, peak}}});
    }
    return out;
  }

  void OnDelivery(const DeliveryReport& r) {
    if (exactly_once_) {
      // The transaction decides: a failed message makes its commit fail and
      // the transaction abort (and the input is read again). Records were
      // marked done when produced, in order (KafkaResultSink).
      if (r.status.ok()) {
        delivered_.fetch_add(1);
        acknowledged_->Inc();
        graph_metrics_.ObserveDelivery(r.latency_us);
      }
      return;
    }
    if (!r.status.ok()) {
      Fail(r.status.WithContext("delivery of the result of " + r.tag.source.topic + "/" +
                                std::to_string(r.tag.source.partition) + "@" +
                                std::to_string(r.tag.source.offset)));
      return;
    }
    delivered_.fetch_add(1);
    acknowledged_->Inc();
    graph_metrics_.ObserveDelivery(r.latency_us);
    // NotFound: the partition was forgotten meanwhile (revoked, lost); the
    // new owner re-reads it. The sequence keeps this late report away from a
    // later assignment of the same partition.
    (void)tracker_->MarkDone(r.tag.source.topic, r.tag.source.partition, r.tag.source.offset,
                             r.tag.sequence);
  }

  void Fail(const Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (first_error_.ok()) {
      first_error_ = s;
      spdlog::error("{}", s.ToString());
    }
  }

  static std::string Join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
    return out;
  }

  const Config config_;
  const ServeAppTestHooks hooks_;
  // Before everything whose metrics they hold; the server is last (below).
  MetricsRegistry registry_;
  GraphMetrics graph_metrics_;
  Counter* acknowledged_ = nullptr;
  std::atomic<int64_t> unacknowledged_max_{0};  // written by the poll thread
  std::atomic<bool> model_ready_{false};
  std::atomic<bool> initialized_{false};  // Init built everything
  std::atomic<bool> serving_{false};      // between Start and Stop
  std::atomic<bool> stopping_seen_{false};
  const bool exactly_once_ = ExactlyOnce(config_);
  // False with kafka.input_topics empty: HTTP only, no broker, no clients.
  const bool kafka_ = !config_.kafka.input_topics.empty();
  ModelStack stack_;
  std::string bootstrap_;
  std::unique_ptr<EmbeddedBroker> embedded_;
  std::shared_ptr<OffsetTracker> tracker_ = std::make_shared<OffsetTracker>();
  std::unique_ptr<KafkaSink> producer_;
  std::unique_ptr<ResultSink> result_sink_;
  std::unique_ptr<ServeGraph> graph_;
  std::unique_ptr<KafkaSource> source_;  // destroyed before the graph and the producer
  std::atomic<int64_t> delivered_{0};
  bool started_ = false;
  bool stopped_ = false;
  mutable std::mutex mu_;
  Status first_error_;  // GUARDED_BY(mu_)
  // Before the server, whose routes refer to it.
  std::unique_ptr<HttpInference> http_;
  // Last: destroyed first, as its handlers read the members above.
  std::unique_ptr<MetricsServer> metrics_server_;
};

Result<std::unique_ptr<ServeApp>> ServeApp::Create(const Config& config,
                                                  ServeAppTestHooks hooks) {
  auto impl = std::make_unique<Impl>(config, std::move(hooks));
  NLPFLOW_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<ServeApp>(new ServeApp(std::move(impl)));
}

ServeApp::ServeApp(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ServeApp::~ServeApp() = default;
Status ServeApp::Start() { return impl_->Start(); }
Status ServeApp::Stop() { return impl_->Stop(); }
const std::string& ServeApp::bootstrap_servers() const { return impl_->bootstrap_servers(); }
Status ServeApp::status() const { return impl_->status(); }
bool ServeApp::ready() const { return impl_->ready(); }
int64_t ServeApp::delivered() const { return impl_->delivered(); }
std::string ServeApp::metrics_address() const { return impl_->metrics_address(); }

}  // namespace nlpflow
