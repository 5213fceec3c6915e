#include "nodes/compress/quantizer.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "nodes/compress/student_bert.h"
#include "nodes/infer/bert_encoder.h"

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
  NLPFLOW_ASSIGN_OR_RETURN(StudentBert model, StudentBert::Load(o.model_dir));
  QuantizeReport report;
  nlohmann::json spec = {{"mode", o.mode == "static" ? "static_int8" : "dynamic_int8"}};
  if (o.mode == "static") {
    if (calibration.empty()) {
      return Status::InvalidArgument("quantize: static int8 needs calibration texts (none given)");
    }
    const size_t layers = model.layers().size();
    // The runtime divides the inputs of qkv and intermediate by the smoothing
    // factors; the observers must see what the int8 GEMM sees.
    std::vector<at::Tensor> qkv_div(layers), inter_div(layers);
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
      const LinearObserver observe = [&](int64_t layer, LinearSite site, const at::Tensor& input,
                                         const at::Tensor& output) {
        at::Tensor in = input;
        if (site == LinearSite::kQkv) in = input * qkv_div[layer];
        if (site == LinearSite::kIntermediate) in = input * inter_div[layer];
        in = in.contiguous();
        const at::Tensor out = output.contiguous();
        auto& [ih, oh] = observers[std::to_string(layer) + "." + LinearSiteName(site)];
        ih.Observe(in.data_ptr<float>(), in.numel());
        oh.Observe(out.data_ptr<float>(), out.numel());
      };
      for (size_t b = 0; b < calibration.size(); b += 32) {
        std::vector<const std::vector<int32_t>*> rows;
        for (size_t i = b; i < std::min(calibration.size(), b + 32); ++i) {
          rows.push_back(&calibration[i]);
          report.calibration_tokens += static_cast<int64_t>(calibration[i].size());
        }
        auto [ids, mask] = PadIds(rows);
        model.Forward(ids, mask, observe);
      }
    } catch (const std::exception& e) {
      return Status::Internal(std::string("quantize: LibTorch: ") + e.what());
    }
    nlohmann::json ranges = nlohmann::json::object();
    for (const auto& [name, obs] : observers) {
      const auto in = obs.first.ChooseRange();
      const auto out = obs.second.ChooseRange();
      ranges[name] = {{"input", {in.first, in.second}}, {"output", {out.first, out.second}}};
      report.sites.push_back({name, in.first, in.second, obs.first.min(), obs.first.max(),
                              out.first, out.second, obs.second.min(), obs.second.max()});
    }
    spec["activation_ranges"] = ranges;
    spec["calibration_tokens"] = report.calibration_tokens;
  }
  const nlohmann::json extra = {{"nlpflow_quantization", spec}};
  NLPFLOW_RETURN_IF_ERROR(model.Save(o.out_dir, o.model_dir, extra.dump()));
  return report;
}

}  // namespace nlpflow
