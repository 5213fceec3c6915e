// Post-training int8 quantization of a sentence-embedding model.
//
//   - "dynamic": the runtime's dynamic int8 (per-channel int8 weights,
//     activations quantized per call, per token). Nothing is calibrated; the
//     folder is the fp32 one marked "dynamic_int8" in config.json.
//   - "static": int8 weights as above, and per-tensor 7-bit activations with
//     ranges fixed ahead of time: calibration texts run through the fp32
//     model twice: first for each Linear input's largest |value| per channel,
//     which sets per-channel smoothing factors (SmoothQuant's, measured
//     rather than estimated), then a histogram observer per Linear layer
//     records its smoothed input (without the outlier rows that the runtime
//     computes in fp32), and each range is the one that minimizes the
//     expected squared quantization error over the histogram (clipping error
//     outside the range, step^2 / 12 inside). The output is observed too, for
//     the report only: the runtime's GEMM writes fp32. The ranges go into
//     config.json ("nlpflow_quantization").
//
// Both folders load through model.path as they are (the runtime reads
// nlpflow_quantization). The weights stay fp32 on disk and are quantized at
// load, so the folder is as large as the fp32 one.
//
// This header deliberately includes no LibTorch header.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace nlpflow {

// Records values into a fixed number of bins over a range that doubles
// (re-binning the counts) whenever a value falls outside it; then chooses
// the quantization range.
class HistogramObserver {
 public:
  explicit HistogramObserver(int bins = 2048) : counts_(bins, 0.0) {}
  void Observe(const float* values, int64_t n);
  int64_t count() const { return observed_; }
  float min() const { return min_; }
  float max() const { return max_; }
  // [lo, hi] with lo <= 0 <= hi minimizing the expected squared error of
  // `levels`-level affine quantization of the observed values (values taken
  // at their bin's center). Candidates: every pair of bin edges (and 0), each
  // scored in O(1) from prefix sums. REQUIRES: count() > 0.
  std::pair<float, float> ChooseRange(int levels = 256) const;
  // The expected squared error per value of quantizing the observed values
  // with range [lo, hi] (what ChooseRange minimizes).
  double ExpectedError(float lo, float hi, int levels = 256) const;

 private:
  std::vector<double> counts_;
  float lo_edge_ = 0, hi_edge_ = 0;  // current histogram range
  float min_ = 0, max_ = 0;
  int64_t observed_ = 0;
};

struct QuantizeOptions {
  std::string model_dir;
  std::string out_dir;
  std::string mode = "static";  // dynamic | static
  // static: bits of the input codes, 7 (weights 8 bits) or 8 (weights 7
  // bits); oneDNN's AVX2 int8 kernel cannot take 8 and 8 (int8_matmul.h).
  int activation_bits = 7;
  // static: a row of a Linear's input whose smallest or largest value is
  // beyond row_bound times the median calibration row's is computed in fp32
  // at run time (and left out of the range's calibration); 0: none is.
  double row_bound = 2;
};

struct QuantizeReport {
  // Per Linear layer ("0.qkv", ...): the chosen ranges, and the min/max seen.
  struct Site {
    std::string name;
    float input_lo = 0, input_hi = 0, input_min = 0, input_max = 0;
    float output_lo = 0, output_hi = 0, output_min = 0, output_max = 0;
    float row_lo = 0, row_hi = 0;  // beyond these, a row runs in fp32
    double fp32_row_share = 0;     // of the calibration rows
  };
  std::vector<Site> sites;
  int64_t calibration_tokens = 0;
};

// `calibration`: token-id lists (static only; at least one).
Result<QuantizeReport> Quantize(const QuantizeOptions& options,
                                const std::vector<std::vector<int32_t>>& calibration);

}  // namespace nlpflow
