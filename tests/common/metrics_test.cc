// Histogram bucket placement and the exact Prometheus text of a registry.
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

namespace nlpflow {
namespace {

TEST(HistogramTest, ValueOnABoundGoesIntoThatBucket) {
  Histogram h({0.5, 1, 2.5});
  EXPECT_EQ(h.BucketOf(-3), 0u);
  EXPECT_EQ(h.BucketOf(0), 0u);
  EXPECT_EQ(h.BucketOf(0.5), 0u);  // le is inclusive
  EXPECT_EQ(h.BucketOf(0.5000001), 1u);
  EXPECT_EQ(h.BucketOf(1), 1u);
  EXPECT_EQ(h.BucketOf(2.5), 2u);
  EXPECT_EQ(h.BucketOf(2.6), 3u);  // +Inf
  EXPECT_EQ(h.BucketOf(std::numeric_limits<double>::infinity()), 3u);
}

TEST(HistogramTest, SnapshotCountsPerBucketAndSum) {
  Histogram h({1, 2});
  for (double v : {0.25, 1.0, 1.5, 2.0, 7.0, std::nan("")}) h.Observe(v);
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{2, 2, 1}));
  EXPECT_EQ(s.count, 5u);  // NaN dropped
  EXPECT_DOUBLE_EQ(s.sum, 11.75);
}

TEST(HistogramTest, ConcurrentObservationsAreAllCounted) {
  Histogram h({10, 100});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) h.Observe(i % 3 == 0 ? 5 : 50);
    });
  }
  for (auto& t : threads) t.join();
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{4 * 33334, 4 * 66666, 0}));
  EXPECT_DOUBLE_EQ(s.sum, 4 * (33334 * 5.0 + 66666 * 50.0));
}

TEST(MetricsFormatTest, Values) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(100000), "100000");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(0.005), "0.005");
  EXPECT_EQ(FormatMetricValue(2.5e-5), "2.5e-05");
  EXPECT_EQ(FormatMetricValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
}

TEST(MetricsFormatTest, LabelValuesAreEscaped) {
  EXPECT_EQ(FormatLabels({}), "");
  EXPECT_EQ(FormatLabels({{"a", "x"}, {"b", "q\"uo\\te\nnl"}}),
            "{a=\"x\",b=\"q\\\"uo\\\\te\\nnl\"}");
}

TEST(MetricsRegistryTest, RendersTheExactTextFormat) {
  MetricsRegistry r;
  Counter* c = r.AddCounter("x_total", "Things\\counted\nhere");
  r.AddCounter("y_total", "Labelled", {{"stage", "decode"}})->Inc(2);
  r.AddCounter("y_total", "Labelled", {{"stage", "infer"}})->Inc(5);
  Gauge* g = r.AddGauge("z", "A gauge");
  Histogram* h = r.AddHistogram("lat_seconds", "Latency", {0.001, 0.5}, {{"stage", "infer"}});
  r.AddCollector([] {
    return std::vector<CollectedFamily>{
        {"lag", "Lag", "gauge", {{{{"topic", "t"}, {"partition", "3"}}, 7}}}};
  });
  c->Inc();
  c->Inc(41);
  g->Set(-1.5);
  h->Observe(0.001);
  h->Observe(0.25);
  h->Observe(3);
  EXPECT_EQ(r.Render(),
            "# HELP x_total Things\\\\counted\\nhere\n"
            "# TYPE x_total counter\n"
            "x_total 42\n"
            "# HELP y_total Labelled\n"
            "# TYPE y_total counter\n"
            "y_total{stage=\"decode\"} 2\n"
            "y_total{stage=\"infer\"} 5\n"
            "# HELP z A gauge\n"
            "# TYPE z gauge\n"
            "z -1.5\n"
            "# HELP lat_seconds Latency\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{stage=\"infer\",le=\"0.001\"} 1\n"
            "lat_seconds_bucket{stage=\"infer\",le=\"0.5\"} 2\n"
            "lat_seconds_bucket{stage=\"infer\",le=\"+Inf\"} 3\n"
            "lat_seconds_sum{stage=\"infer\"} 3.251\n"
            "lat_seconds_count{stage=\"infer\"} 3\n"
            "# HELP lag Lag\n"
            "# TYPE lag gauge\n"
            "lag{topic=\"t\",partition=\"3\"} 7\n");
}

TEST(MetricsRegistryTest, BucketHelpers) {
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(LinearBuckets(5, 10, 3), (std::vector<double>{5, 15, 25}));
}

TEST(MetricsRegistryDeathTest, RegisteringALabelSetTwiceAborts) {
  MetricsRegistry r;
  r.AddCounter("a_total", "A", {{"k", "v"}});
  EXPECT_DEATH(r.AddCounter("a_total", "A", {{"k", "v"}}), "a_total\\{k=\"v\"\\} registered twice");
  EXPECT_DEATH(r.AddGauge("a_total", "A"), "a_total registered as counter and as gauge");
  EXPECT_DEATH(r.AddHistogram("h", "H", {2, 1}), "h: bucket bounds must be finite and strictly");
}

}  // namespace
}  // namespace nlpflow
