// Metrics that any thread may record into without locks, and their rendering
// in the Prometheus text exposition format (version 0.0.4).
//
// Recording (Counter::Inc, Gauge::Set, Histogram::Observe) is a few relaxed
// atomic operations: safe and cheap from TBB workers, infer threads and
// librdkafka callbacks. Registration (MetricsRegistry::Add*) takes a mutex and
// is meant for set-up; the returned pointers stay valid for the registry's
// lifetime. Render may run on any thread (the HTTP server's) at any time.
//
// No HTTP here: nodes and graphs depend on this header only; the server that
// publishes Render() lives in pipeline/metrics_server.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace nlpflow {

// Label names and values, in the order they are rendered.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A histogram with fixed bucket upper bounds. A value v is counted in the
// first bucket whose bound b satisfies v <= b (Prometheus' "le"), or in the
// implicit +Inf bucket above the last bound. NaN observations are dropped.
class Histogram {
 public:
  // REQUIRES: bounds strictly increasing and finite (checked by
  // MetricsRegistry::AddHistogram, which is how histograms are made).
  explicit Histogram(std::vector<double> bounds);

  void Observe(double v);

  // Index of the bucket v falls in: 0..bounds().size() (the last is +Inf).
  size_t BucketOf(double v) const;

  struct Snapshot {
    std::vector<uint64_t> counts;  // per bucket, not cumulative; +Inf last
    uint64_t count = 0;            // sum of counts
    double sum = 0;
  };
  // Each bucket is read atomically; a snapshot taken while others observe
  // may miss an observation's sum or count, never double-count one.
  Snapshot snapshot() const;

  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// Bucket bounds: `count` bounds start, start*factor, start*factor^2, ...
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// Bucket bounds: start, start+width, ..., `count` of them.
std::vector<double> LinearBuckets(double start, double width, int count);

// One sample of a family computed at scrape time (a callback's output).
struct Sample {
  Labels labels;
  double value = 0;
};

// A family computed at scrape time: name, help, type ("counter" or "gauge")
// and its samples.
struct CollectedFamily {
  std::string name;
  std::string help;
  std::string type;
  std::vector<Sample> samples;
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Each call adds one child (one label set) to the family `name`, creating
  // the family on first use with `help`. Adding a name again with another
  // type, or a label set twice, is a programming error: it aborts with a
  // message naming the metric, at set-up.
  Counter* AddCounter(const std::string& name, const std::string& help,
                      Labels labels = {});
  Gauge* AddGauge(const std::string& name, const std::string& help,
                  Labels labels = {});
  Histogram* AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds, Labels labels = {});

  // Families whose values are computed at scrape time (several at once, so
  // that values that must agree are read together). Called by Render, on the
  // scraping thread, with no registry lock held.
  using CollectFn = std::function<std::vector<CollectedFamily>()>;
  void AddCollector(CollectFn collect);

  // Every family in the order first registered, then the collectors' in the
  // order added. Counters' and bucket counts are rendered as integers, other
  // values as the shortest decimal text that reads back as the same double
  // ("+Inf", "-Inf", "NaN" for those); whole numbers as integers.
  std::string Render() const;

 private:
  struct Child;
  struct Family;
  Family* FamilyFor(const std::string& name, const std::string& help,
                    const char* type);  // REQUIRES: mu_ held

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;  // GUARDED_BY(mu_)
  std::vector<CollectFn> collectors_;              // GUARDED_BY(mu_)
};

// Helpers for the text format, exposed for tests and collectors.
// A number as rendered (see Render).
std::string FormatMetricValue(double v);
// `{a="x",b="y"}`, escaping backslash, double quote and newline; "" if empty.
std::string FormatLabels(const Labels& labels);

}  // namespace nlpflow
