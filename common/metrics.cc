#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace nlpflow {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

size_t Histogram::BucketOf(double v) const {
  // First bound >= v: "le" is inclusive.
  return static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                             bounds_.begin());
}

void Histogram::Observe(double v) {
  if (std::isnan(v)) return;
  counts_[BucketOf(v)].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.counts.resize(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    s.counts[i] = counts_[i].load(std::memory_order_relaxed);
    s.count += s.counts[i];
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> b;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) b.push_back(v);
  return b;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  std::vector<double> b;
  for (int i = 0; i < count; ++i) b.push_back(start + width * i);
  return b;
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Whole numbers as integers ("100000", not to_chars' shorter "1e+05").
  if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {
    return std::to_string(static_cast<int64_t>(v));
  }
  char buf[64];
  // Shortest text that reads back as the same double: 0.005, 1, 1e+21.
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, end);
}

namespace {

std::string EscapeLabelValue(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Header(std::string* out, const std::string& name, const std::string& help,
            const std::string& type) {
  *out += "# HELP " + name + " " + EscapeHelp(help) + "\n";
  *out += "# TYPE " + name + " " + type + "\n";
}

[[noreturn]] void Misuse(const std::string& what) {
  std::fprintf(stderr, "nlpflow metrics: %s\n", what.c_str());
  std::abort();
}

}  // namespace

std::string FormatLabels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ",";
    out += labels[i].first + "=\"" + EscapeLabelValue(labels[i].second) + "\"";
  }
  return out + "}";
}

struct MetricsRegistry::Child {
  Labels labels;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
};

struct MetricsRegistry::Family {
  std::string name;
  std::string help;
  std::string type;
  std::vector<Child> children;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family* MetricsRegistry::FamilyFor(const std::string& name,
                                                    const std::string& help,
                                                    const char* type) {
  for (auto& f : families_) {
    if (f->name != name) continue;
    if (f->type != type) Misuse(name + " registered as " + f->type + " and as " + type);
    return f.get();
  }
  families_.push_back(std::make_unique<Family>());
  families_.back()->name = name;
  families_.back()->help = help;
  families_.back()->type = type;
  return families_.back().get();
}

namespace {
template <typename Children>
void CheckNewLabels(const std::string& name, const Children& children, const Labels& labels) {
  for (const auto& c : children) {
    if (c.labels == labels) Misuse(name + FormatLabels(labels) + " registered twice");
  }
}
}  // namespace

Counter* MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                     Labels labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family* f = FamilyFor(name, help, "counter");
  CheckNewLabels(name, f->children, labels);
  f->children.push_back({std::move(labels), std::make_unique<Counter>(), nullptr, nullptr});
  return f->children.back().counter.get();
}

Gauge* MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                 Labels labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family* f = FamilyFor(name, help, "gauge");
  CheckNewLabels(name, f->children, labels);
  f->children.push_back({std::move(labels), nullptr, std::make_unique<Gauge>(), nullptr});
  return f->children.back().gauge.get();
}

Histogram* MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                         std::vector<double> bounds, Labels labels) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Misuse(name + ": bucket bounds must be finite and strictly increasing");
    }
  }
  for (const auto& [k, v] : labels) {
    if (k == "le") Misuse(name + ": a histogram cannot have a label named le");
  }
  std::lock_guard<std::mutex> lock(mu_);
  Family* f = FamilyFor(name, help, "histogram");
  CheckNewLabels(name, f->children, labels);
  f->children.push_back(
      {std::move(labels), nullptr, nullptr, std::make_unique<Histogram>(std::move(bounds))});
  return f->children.back().histogram.get();
}

void MetricsRegistry::AddCollector(CollectFn collect) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collect));
}

std::string MetricsRegistry::Render() const {
  std::string out;
  std::vector<CollectFn> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& f : families_) {
      Header(&out, f->name, f->help, f->type);
      for (const Child& c : f->children) {
        if (c.counter) {
          out += f->name + FormatLabels(c.labels) + " " + std::to_string(c.counter->value()) +
                 "\n";
        } else if (c.gauge) {
          out += f->name + FormatLabels(c.labels) + " " + FormatMetricValue(c.gauge->value()) +
                 "\n";
        } else {
          const Histogram::Snapshot s = c.histogram->snapshot();
          const auto& bounds = c.histogram->bounds();
          uint64_t cumulative = 0;
          for (size_t i = 0; i <= bounds.size(); ++i) {
            cumulative += s.counts[i];
            Labels l = c.labels;
            l.emplace_back("le", i < bounds.size() ? FormatMetricValue(bounds[i]) : "+Inf");
            out += f->name + "_bucket" + FormatLabels(l) + " " + std::to_string(cumulative) +
                   "\n";
          }
          out += f->name + "_sum" + FormatLabels(c.labels) + " " + FormatMetricValue(s.sum) +
                 "\n";
          out += f->name + "_count" + FormatLabels(c.labels) + " " + std::to_string(s.count) +
                 "\n";
        }
      }
    }
    collectors = collectors_;
  }
  // Outside the lock: a collector may take locks of its own.
  for (const auto& collect : collectors) {
    for (const CollectedFamily& f : collect()) {
      Header(&out, f.name, f.help, f.type);
      for (const Sample& s : f.samples) {
        out += f.name + FormatLabels(s.labels) + " " + FormatMetricValue(s.value) + "\n";
      }
    }
  }
  return out;
}

}  // namespace nlpflow
