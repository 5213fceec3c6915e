#include "pipeline/serve_app.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <mutex>

#include "connectors/kafka/embedded_broker.h"
#include "connectors/kafka/kafka_sink.h"
#include "connectors/kafka/kafka_source.h"
#include "connectors/kafka/offset_tracker.h"
#include "connectors/kafka/topic_admin.h"
#include "pipeline/embed_graph.h"
#include "pipeline/graph_options.h"
#include "pipeline/kafka_result_sink.h"
#include "pipeline/model_stack.h"

namespace nlpflow {

class ServeApp::Impl {
 public:
  explicit Impl(const Config& config) : config_(config) {}

  Status Init() {
    NLPFLOW_ASSIGN_OR_RETURN(stack_, LoadModelStack(config_));

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
    so.producer_properties = config_.kafka.producer;
    NLPFLOW_ASSIGN_OR_RETURN(
        producer_, KafkaSink::Create(so, [this](const DeliveryReport& r) { OnDelivery(r); }));

    if (!embedded_) {
      NLPFLOW_RETURN_IF_ERROR(CreateTopics(
          bootstrap_,
          {{config_.kafka.output_topic, config_.kafka.topic_partitions,
            config_.kafka.topic_replication},
           {config_.kafka.dead_letter_topic, config_.kafka.topic_partitions,
            config_.kafka.topic_replication}},
          config_.kafka.connect_timeout_ms, config_.kafka.producer));
    }

    result_sink_ = std::make_unique<KafkaResultSink>(
        producer_.get(), config_.kafka.output_topic, config_.kafka.dead_letter_topic,
        stack_.name + ":" + stack_.version, [this](const Status& s) { Fail(s); });
    NLPFLOW_ASSIGN_OR_RETURN(
        graph_, EmbedGraph::Create(GraphOptionsFrom(config_), DecodeOptionsFrom(config_),
                                   stack_.tokenizer.get(), BatcherOptionsFrom(config_),
                                   stack_.model.get(), EncodeOptionsFrom(config_, stack_),
                                   result_sink_.get()));

    KafkaSourceOptions src;
    src.bootstrap_servers = bootstrap_;
    src.group_id = config_.kafka.group_id;
    src.topics = config_.kafka.input_topics;
    src.client_id = config_.kafka.client_id;
    src.commit_interval_ms = config_.kafka.commit_interval_ms;
    src.max_in_flight = config_.pipeline.max_in_flight;
    src.connect_timeout_ms = config_.kafka.connect_timeout_ms;
    src.consumer_properties = config_.kafka.consumer;
    NLPFLOW_ASSIGN_OR_RETURN(
        source_, KafkaSource::Create(src, tracker_, [this](RecordPtr r) {
          // Sequence numbers are this process's arrival order.
          r->sequence = next_sequence_++;
          graph_->Put(std::move(r));
        }));
    return Status::Ok();
  }

  Status Start() {
    graph_->Start();
    NLPFLOW_RETURN_IF_ERROR(source_->Start());
    started_ = true;
    spdlog::info("nlpflow ready: consuming {} from {} (group {}), results to {}, dead letters to {}",
                 Join(config_.kafka.input_topics), bootstrap_, config_.kafka.group_id,
                 config_.kafka.output_topic, config_.kafka.dead_letter_topic);
    return Status::Ok();
  }

  Status Stop() {
    if (stopped_) return status();
    stopped_ = true;
    if (!started_) return status();
    const auto start = std::chrono::steady_clock::now();
    const int timeout_ms = config_.pipeline.shutdown_timeout_ms;
    auto left_ms = [&] {
      const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
      return static_cast<int>(std::max<int64_t>(0, timeout_ms - spent));
    };
    const int64_t in_flight = tracker_->in_flight();
    spdlog::info("stopping: {} records in flight", in_flight);
    // Stops reading, waits for in-flight records, commits, leaves the group.
    Status source_status = source_->Stop(timeout_ms);
    Status graph_status = graph_->Drain(left_ms());
    Status sink_status = producer_->Close(left_ms());
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
  bool ready() const { return source_ && source_->stats().assigned_partitions > 0; }
  int64_t delivered() const { return delivered_.load(); }

  ~Impl() { (void)Stop(); }

 private:
  void OnDelivery(const DeliveryReport& r) {
    if (!r.status.ok()) {
      Fail(r.status.WithContext("delivery of the result of " + r.tag.source.topic + "/" +
                                std::to_string(r.tag.source.partition) + "@" +
                                std::to_string(r.tag.source.offset)));
      return;
    }
    delivered_.fetch_add(1);
    // NotFound: the partition was revoked meanwhile; the new owner re-reads it.
    (void)tracker_->MarkDone(r.tag.source.topic, r.tag.source.partition, r.tag.source.offset);
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
  ModelStack stack_;
  std::string bootstrap_;
  std::unique_ptr<EmbeddedBroker> embedded_;
  std::shared_ptr<OffsetTracker> tracker_ = std::make_shared<OffsetTracker>();
  std::unique_ptr<KafkaSink> producer_;
  std::unique_ptr<KafkaResultSink> result_sink_;
  std::unique_ptr<EmbedGraph> graph_;
  std::unique_ptr<KafkaSource> source_;  // last: destroyed first
  uint64_t next_sequence_ = 0;           // poll thread only
  std::atomic<int64_t> delivered_{0};
  bool started_ = false;
  bool stopped_ = false;
  mutable std::mutex mu_;
  Status first_error_;  // GUARDED_BY(mu_)
};

Result<std::unique_ptr<ServeApp>> ServeApp::Create(const Config& config) {
  auto impl = std::make_unique<Impl>(config);
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

}  // namespace nlpflow
