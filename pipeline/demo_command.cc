#include "pipeline/demo_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "connectors/kafka/kafka_sink.h"
#include "connectors/kafka/kafka_source.h"
#include "connectors/kafka/offset_tracker.h"
#include "pipeline/serve_app.h"
#include "schemas/result.pb.h"

namespace nlpflow {
namespace {

struct Received {
  std::vector<float> embedding;
  // Classifiers: "label (score)"; token taggers: "GROUP word, ..."; else empty.
  std::string labels;
  int64_t arrived_us = 0;
  int64_t inside_us = 0;  // the result's own timings: arrival to encoded
};

double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    dot += double(a[i]) * b[i];
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
  }
  return (na > 0 && nb > 0) ? dot / std::sqrt(na * nb) : 0.0;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(std::ceil(p / 100.0 * v.size())) - 1);
  return v[i];
}

// Parses a published result, JSON or Protobuf.
Received Parse(const std::string& value, bool json) {
  Received out;
  auto label = [](const std::string& name, double score) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), " (%.3f)", score);
    return name + buf;
  };
  auto entity = [&out](const std::string& group, const std::string& word) {
    out.labels += (out.labels.empty() ? "" : ", ") + group + " '" + word + "'";
  };
  if (json) {
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return out;
    if (j.contains("embedding")) out.embedding = j["embedding"].get<std::vector<float>>();
    if (j.contains("label")) out.labels = label(j["label"], j.value("score", 0.0));
    if (j.contains("entities")) {
      for (const auto& e : j["entities"]) {
        entity(e.value("entity_group", e.value("entity", "")), e.value("word", ""));
      }
      if (out.labels.empty()) out.labels = "(no entities)";
    }
    if (j.contains("timings_us")) out.inside_us = j["timings_us"].value("total", int64_t{0});
    return out;
  }
  nlpflow::v1::Result r;
  if (!r.ParseFromString(value)) return out;
  out.embedding.assign(r.embedding().begin(), r.embedding().end());
  if (r.has_classification()) out.labels = label(r.classification().label(), r.classification().score());
  if (r.has_token_classification()) {
    for (const auto& e : r.token_classification().entities()) {
      entity(e.entity_group().empty() ? e.entity() : e.entity_group(), e.word());
    }
    if (out.labels.empty()) out.labels = "(no entities)";
  }
  out.inside_us = r.timings().total_us();
  return out;
}

}  // namespace

int RunDemo(const Config& config, const std::string& samples_path) {
  std::vector<std::string> samples;
  {
    std::ifstream in(samples_path);
    if (!in) {
      spdlog::error("samples file {} cannot be read", samples_path);
      return 2;
    }
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) samples.push_back(line);
    }
  }
  if (samples.size() < 2) {
    spdlog::error("samples file {} needs at least 2 lines", samples_path);
    return 2;
  }
  if (config.input.format != "text") {
    spdlog::error("demo produces plain text; it needs input.format: text");
    return 2;
  }

  auto app_or = ServeApp::Create(config);
  if (!app_or.ok()) {
    spdlog::error("{}", app_or.status().message());
    return 1;
  }
  std::unique_ptr<ServeApp> app = std::move(app_or).value();
  if (Status s = app->Start(); !s.ok()) {
    spdlog::error("{}", s.message());
    return 1;
  }
  const std::string bootstrap = app->bootstrap_servers();

  // Reader of the output topic, in a group of its own.
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, Received> received;  // GUARDED_BY(mu)
  auto reader_tracker = std::make_shared<OffsetTracker>();
  KafkaSourceOptions ro;
  ro.bootstrap_servers = bootstrap;
  // A group and keys of this run's own, so a shared cluster's older results
  // are never mistaken for this run's.
  const std::string run_id = std::to_string(NowMicros());
  ro.group_id = "nlpflow-demo-reader-" + run_id;
  ro.topics = {config.kafka.output_topic};
  const bool json = config.output.format == "json";
  auto reader = KafkaSource::Create(ro, reader_tracker, [&](RecordPtr r) {
    const int64_t now = NowMicros();
    (void)reader_tracker->MarkDone(r->coords.topic, r->coords.partition, r->coords.offset);
    if (!r->key) return;
    std::lock_guard<std::mutex> lock(mu);
    Received got = Parse(r->payload, json);
    got.arrived_us = now;
    received[*r->key] = std::move(got);
    cv.notify_all();
  });
  if (!reader.ok()) {
    spdlog::error("demo reader: {}", reader.status().message());
    return 1;
  }
  (void)(*reader)->Start();

  KafkaSinkOptions po;
  po.bootstrap_servers = bootstrap;
  auto writer = KafkaSink::Create(po, [](const DeliveryReport&) {});
  if (!writer.ok()) {
    spdlog::error("demo writer: {}", writer.status().message());
    return 1;
  }

  // Produce only once both groups have their partitions: latency should show
  // the pipeline, not the group join (the embedded broker delays a group's
  // first rebalance by 3 s, as Kafka does by default).
  const auto ready_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!(app->ready() && (*reader)->stats().assigned_partitions > 0) &&
         std::chrono::steady_clock::now() < ready_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  std::map<std::string, int64_t> sent_us;
  std::vector<std::string> keys;
  for (size_t i = 0; i < samples.size(); ++i) {
    const std::string key = "sample-" + run_id + "-" + std::to_string(i);
    keys.push_back(key);
    sent_us[key] = NowMicros();
    Status s = (*writer)->Produce(config.kafka.input_topics.front(), key, samples[i], {},
                                  DeliveryTag{});
    if (!s.ok()) {
      spdlog::error("demo produce: {}", s.message());
      return 1;
    }
    (void)(*writer)->Flush(1000);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(60), [&] { return received.size() >= samples.size(); });
  }
  (void)(*writer)->Close(1000);
  (void)(*reader)->Stop();
  Status app_status = app->Stop();

  std::lock_guard<std::mutex> lock(mu);
  if (received.size() < samples.size()) {
    spdlog::error("demo got {} of {} results within 60 s", received.size(), samples.size());
    return 1;
  }
  const bool labelled = !received[keys[0]].labels.empty();
  std::printf("\n%zu texts %s through Kafka (%s -> nlpflow -> %s) on %s\n\n", samples.size(),
              labelled ? "labelled" : "embedded", config.kafka.input_topics.front().c_str(),
              config.kafka.output_topic.c_str(), bootstrap.c_str());
  if (labelled) {
    // A classifier or a token tagger: what it said about each text.
    for (size_t i = 0; i < samples.size(); ++i) {
      std::printf("  %-45.45s -> %s\n", samples[i].c_str(), received[keys[i]].labels.c_str());
    }
  }
  for (size_t i = 0; !labelled && i < std::min<size_t>(3, samples.size()); ++i) {
    const auto& e = received[keys[i]].embedding;
    std::printf("  %-45.45s -> [%.4f, %.4f, %.4f, %.4f, ...] (dim %zu)\n", samples[i].c_str(),
                e.size() > 0 ? e[0] : 0.f, e.size() > 1 ? e[1] : 0.f, e.size() > 2 ? e[2] : 0.f,
                e.size() > 3 ? e[3] : 0.f, e.size());
  }
  struct Pair {
    double cosine;
    size_t a, b;
  };
  std::vector<Pair> pairs;
  for (size_t i = 0; !labelled && i < samples.size(); ++i) {
    for (size_t j = i + 1; j < samples.size(); ++j) {
      pairs.push_back({Cosine(received[keys[i]].embedding, received[keys[j]].embedding), i, j});
    }
  }
  std::sort(pairs.begin(), pairs.end(), [](const Pair& x, const Pair& y) { return x.cosine > y.cosine; });
  if (!pairs.empty()) std::printf("\nMost similar pairs (cosine similarity):\n");
  for (size_t k = 0; k < std::min<size_t>(8, pairs.size()); ++k) {
    std::printf("  %.3f  %s\n         %s\n", pairs[k].cosine, samples[pairs[k].a].c_str(),
                samples[pairs[k].b].c_str());
  }
  std::vector<double> latencies_ms, inside_ms;
  for (const auto& key : keys) {
    latencies_ms.push_back((received[key].arrived_us - sent_us[key]) / 1000.0);
    inside_ms.push_back(received[key].inside_us / 1000.0);
  }
  std::printf("\nLatency over %zu records, one every 20 ms:\n"
              "  produce to result read back: p50 %.1f ms, p99 %.1f ms\n"
              "  inside nlpflow (consumed to encoded): p50 %.1f ms, p99 %.1f ms\n",
              latencies_ms.size(), Percentile(latencies_ms, 50), Percentile(latencies_ms, 99),
              Percentile(inside_ms, 50), Percentile(inside_ms, 99));
  if (!app_status.ok()) {
    spdlog::error("{}", app_status.ToString());
    return 1;
  }
  return 0;
}

}  // namespace nlpflow
