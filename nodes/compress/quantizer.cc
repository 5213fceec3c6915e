#include "nodes/compress/quantizer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "nodes/compress/student_bert.h"
#include "nodes/infer/bert_encoder.h"
#include "nodes/infer/int8_matmul.h"

namespace nlpflow {

void HistogramObserver::Observe(const float* v, int64_t n) {
  if (n <= 0) return;
  float bmin = v[0], bmax = v[0];
  for (int64_t i = 1; i < n; ++i) {
    bmin = std::min(bmin, v[i]);
    bmax = std::max(bmax, v[i]);
  }
  const int bins = static_cast<int>(counts_.size());
  if (observed_ == 0) {
    min_ = bmin;
    max_ = bmax;
    lo_edge_ = std::min(bmin, 0.0f);
    hi_edge_ = std::max(bmax, 0.0f);
    if (hi_edge_ - lo_edge_ < 1e-8f) hi_edge_ = lo_edge_ + 1e-8f;
  } else if (bmin < lo_edge_ || bmax > hi_edge_) {
    // Widen to cover the new values, with headroom so that this happens
    // rarely, and move the old counts to the new bins by their centers.
    const float width = hi_edge_ - lo_edge_;
    const float lo = bmin < lo_edge_ ? bmin - 0.25f * width : lo_edge_;
    const float hi = bmax > hi_edge_ ? bmax + 0.25f * width : hi_edge_;
    std::vector<double> rebinned(bins, 0.0);
    const double old_step = static_cast<double>(width) / bins;
    const double new_step = static_cast<double>(hi - lo) / bins;
    for (int b = 0; b < bins; ++b) {
      if (counts_[b] == 0) continue;
      const double center = lo_edge_ + (b + 0.5) * old_step;
      const int nb = std::clamp(static_cast<int>((center - lo) / new_step), 0, bins - 1);
      rebinned[nb] += counts_[b];
    }
    counts_ = std::move(rebinned);
    lo_edge_ = lo;
    hi_edge_ = hi;
  }
  min_ = std::min(min_, bmin);
  max_ = std::max(max_, bmax);
  const double scale = bins / static_cast<double>(hi_edge_ - lo_edge_);
  for (int64_t i = 0; i < n; ++i) {
    const int b = std::clamp(static_cast<int>((v[i] - lo_edge_) * scale), 0, bins - 1);
    counts_[b] += 1;
  }
  observed_ += n;
}

double HistogramObserver::ExpectedError(float lo, float hi, int levels) const {
  const int bins = static_cast<int>(counts_.size());
  const double step = static_cast<double>(hi_edge_ - lo_edge_) / bins;
  const double q = (static_cast<double>(hi) - lo) / (levels - 1);
  double err = 0;
  for (int b = 0; b < bins; ++b) {
    const double c = lo_edge_ + (b + 0.5) * step;
    if (c < lo) {
      err += counts_[b] * (lo - c) * (lo - c);
    } else if (c > hi) {
      err += counts_[b] * (c - hi) * (c - hi);
    } else {
      err += counts_[b] * q * q / 12;
    }
  }
  return err / static_cast<double>(observed_);
}

std::pair<float, float> HistogramObserver::ChooseRange(int levels) const {
  const int bins = static_cast<int>(counts_.size());
  const double step = static_cast<double>(hi_edge_ - lo_edge_) / bins;
  // Prefix sums over bins of n, n*c, n*c^2 (c: the bin's center).
  std::vector<double> n(bins + 1, 0), s1(bins + 1, 0), s2(bins + 1, 0);
  for (int b = 0; b < bins; ++b) {
    const double c = lo_edge_ + (b + 0.5) * step;
    n[b + 1] = n[b] + counts_[b];
    s1[b + 1] = s1[b] + counts_[b] * c;
    s2[b + 1] = s2[b] + counts_[b] * c * c;
  }
  // Candidate edges: every bin edge, and 0; a bin belongs to [lo, hi] when
  // its center does, so edge index e splits bins [0, e) from [e, bins).
  std::vector<std::pair<double, int>> lows, highs;  // value, first bin inside / first bin above
  for (int e = 0; e <= bins; ++e) {
    const double x = lo_edge_ + e * step;
    if (x <= 0) lows.push_back({x, e});
    if (x >= 0) highs.push_back({x, e});
  }
  auto first_bin_above = [&](double x) {  // first bin whose center is > x
    return std::clamp(static_cast<int>(std::floor((x - lo_edge_) / step + 0.5)), 0, bins);
  };
  lows.push_back({0.0, first_bin_above(0.0)});
  highs.push_back({0.0, first_bin_above(0.0)});
  double best = -1;
  std::pair<float, float> out{min_, max_};
  for (const auto& [lo, lb] : lows) {
    // Below lo: sum n (lo - c)^2 over bins [0, lb).
    const double below = lo * lo * n[lb] - 2 * lo * s1[lb] + s2[lb];
    for (const auto& [hi, hb] : highs) {
      if (hi - lo < 1e-12 || hb < lb) continue;
      const double above = (s2[bins] - s2[hb]) - 2 * hi * (s1[bins] - s1[hb]) +
                           hi * hi * (n[bins] - n[hb]);
      const double q = (hi - lo) / (levels - 1);
      const double err = below + above + (n[hb] - n[lb]) * q * q / 12;
      if (best < 0 || err < best) {
        best = err;
        out = {static_cast<float>(lo), static_cast<float>(hi)};
      }
    }
  }
  return out;
}

Result<QuantizeReport> Quantize(const QuantizeOptions& o,
                                const std::vector<std::vector<int32_t>>& calibration) {
  if (o.mode != "dynamic" && o.mode != "static") {
    return Status::InvalidArgument("quantize: mode '" + o.mode + "' is not one of dynamic, static");
  }
  if (o.activation_bits != 7 && o.activation_bits != 8) {
    return Status::InvalidArgument("quantize: --activation-bits must be 7 or 8, got " +
                                   std::to_string(o.activation_bits));
  }
  if (!(o.row_bound == 0 || o.row_bound >= 1)) {
    return Status::InvalidArgument("quantize: --row-bound must be 0 (none) or >= 1, got " +
                                   std::to_string(o.row_bound));
  }
  NLPFLOW_ASSIGN_OR_RETURN(StudentBert model, StudentBert::Load(o.model_dir));
  QuantizeReport report;
  nlohmann::json spec = {{"mode", o.mode == "static" ? "static_int8" : "dynamic_int8"}};
  if (o.mode == "static") {
    if (calibration.empty()) {
      return Status::InvalidArgument("quantize: static int8 needs calibration texts (none given)");
    }
    const size_t layers = model.layers().size();
    auto site_name = [](int64_t layer, LinearSite site) {
      return std::to_string(layer) + "." + LinearSiteName(site);
    };
    auto run_calibration = [&](const LinearObserver& observe) {
      for (size_t b = 0; b < calibration.size(); b += 32) {
        std::vector<const std::vector<int32_t>*> rows;
        for (size_t i = b; i < std::min(calibration.size(), b + 32); ++i) {
          rows.push_back(&calibration[i]);
        }
        auto [ids, mask] = PadIds(rows);
        model.Forward(ids, mask, observe);
      }
    };
    for (const auto& c : calibration) report.calibration_tokens += static_cast<int64_t>(c.size());
    // The runtime divides the inputs of qkv and intermediate by the smoothing
    // factors; the observers must see what the int8 GEMM sees.
    std::vector<at::Tensor> qkv_div(layers), inter_div(layers);
    auto gemm_input = [&](int64_t layer, LinearSite site, const at::Tensor& input) {
      if (site == LinearSite::kQkv) return input * qkv_div[layer];
      if (site == LinearSite::kIntermediate) return input * inter_div[layer];
      return input;
    };
    std::map<std::string, std::vector<at::Tensor>> row_min, row_max;
    std::map<std::string, BertConfig::Range> row_bounds;
    std::map<std::string, std::pair<int64_t, int64_t>> row_counts;  // within bounds, all
    std::map<std::string, std::pair<HistogramObserver, HistogramObserver>> observers;
    try {
      c10::NoGradGuard no_grad;
      for (size_t i = 0; i < layers; ++i) {
        const StudentLayer& l = model.layers()[i];
        const auto [nw, nb] = model.QkvInputNorm(static_cast<int64_t>(i));
        const at::Tensor w = at::cat({l.query.weight, l.key.weight, l.value.weight}, 0);
        qkv_div[i] = BertEncoder::SmoothingFactors(nw, nb, w).reciprocal();
        inter_div[i] = BertEncoder::SmoothingFactors(l.attention_norm_weight,
                                                     l.attention_norm_bias, l.intermediate.weight)
                           .reciprocal();
      }
      // Pass 1: every row's smallest and largest value.
      run_calibration([&](int64_t layer, LinearSite site, const at::Tensor& input,
                          const at::Tensor&) {
        const at::Tensor in = gemm_input(layer, site, input);
        const std::string name = site_name(layer, site);
        row_min[name].push_back(in.amin({1}));
        row_max[name].push_back(in.amax({1}));
      });
      // The row bounds: row_bound times the median row's smallest and
      // largest value. BERT has rows ([CLS], [SEP], some punctuation) with a
      // few channels ten times larger than any other row's; one per-tensor
      // range wide enough for them would leave the other rows a handful of
      // codes. Which rows those are, and how many, depends on the text, so
      // the bound is relative to the typical row rather than a share of
      // rows: a fixed 3% share measured 0.9975 cosine to fp32 on English
      // e-mail but 0.974 on the multilingual parity texts, whose share of
      // such rows is larger (bound 2: 0.9973 and 0.9969; compress_test).
      for (const auto& [name, mins] : row_min) {
        const at::Tensor lo_all = at::cat(mins);
        const at::Tensor hi_all = at::cat(row_max.at(name));
        BertConfig::Range b{lo_all.min().item<float>(), hi_all.max().item<float>()};
        if (o.row_bound > 0) {
          b.lo = std::max(b.lo, static_cast<float>(o.row_bound * lo_all.median().item<float>()));
          b.hi = std::min(b.hi, static_cast<float>(o.row_bound * hi_all.median().item<float>()));
        }
        b.lo = std::min(b.lo, 0.0f);
        b.hi = std::max(b.hi, 0.0f);
        row_bounds[name] = b;
      }
      // Pass 2: histograms of the values of the rows within the bounds (what
      // the int8 GEMM will see), and of the outputs.
      run_calibration([&](int64_t layer, LinearSite site, const at::Tensor& input,
                          const at::Tensor& output) {
        const std::string name = site_name(layer, site);
        const at::Tensor in = gemm_input(layer, site, input);
        const BertConfig::Range& b = row_bounds.at(name);
        const at::Tensor keep =
            at::nonzero(in.amin({1}).ge(b.lo).logical_and(in.amax({1}).le(b.hi))).squeeze(1);
        const at::Tensor rows = in.index_select(0, keep).contiguous();
        auto& [kept, total] = row_counts[name];
        kept += keep.size(0);
        total += in.size(0);
        const at::Tensor out = output.contiguous();
        auto& [ih, oh] = observers[name];
        ih.Observe(rows.data_ptr<float>(), rows.numel());
        oh.Observe(out.data_ptr<float>(), out.numel());
      });
    } catch (const std::exception& e) {
      return Status::Internal(std::string("quantize: LibTorch: ") + e.what());
    }
    nlohmann::json ranges = nlohmann::json::object();
    const int levels = StaticInt8Matmul::InputLevels(o.activation_bits);
    for (const auto& [name, obs] : observers) {
      if (obs.first.count() == 0) {
        return Status::InvalidArgument("quantize: no calibration row of '" + name +
                                       "' is within its row bounds: give more texts");
      }
      const auto in = obs.first.ChooseRange(levels);
      const auto out = obs.second.ChooseRange();
      const BertConfig::Range& b = row_bounds.at(name);
      ranges[name] = {{"input", {in.first, in.second}},
                      {"output", {out.first, out.second}},
                      {"rows", {b.lo, b.hi}}};
      report.sites.push_back({name, in.first, in.second, obs.first.min(), obs.first.max(),
                              out.first, out.second, obs.second.min(), obs.second.max(), b.lo,
                              b.hi,
                              1.0 - static_cast<double>(row_counts.at(name).first) /
                                        static_cast<double>(row_counts.at(name).second)});
    }
    spec["activation_ranges"] = ranges;
    spec["calibration_tokens"] = report.calibration_tokens;
    spec["activation_bits"] = o.activation_bits;
  }
  const nlohmann::json extra = {{"nlpflow_quantization", spec}};
  NLPFLOW_RETURN_IF_ERROR(model.Save(o.out_dir, o.model_dir, extra.dump()));
  return report;
}

}  // namespace nlpflow
