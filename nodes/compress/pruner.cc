#include "nodes/compress/pruner.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <numeric>

#include "nodes/compress/student_bert.h"

namespace nlpflow {

Result<Importance> MeasureImportance(const StudentBert& model,
                                     const std::vector<std::vector<int32_t>>& calibration) {
  if (calibration.empty()) return Status::InvalidArgument("prune: no calibration texts");
  const auto& layers = model.layers();
  const int64_t head_dim = model.config().head_dim();
  std::vector<at::Tensor> ffn_sum, head_sum;
  for (const StudentLayer& l : layers) {
    ffn_sum.push_back(at::zeros({l.intermediate.weight.size(0)}, at::kDouble));
    head_sum.push_back(at::zeros({l.heads}, at::kDouble));
  }
  int64_t tokens = 0;
  try {
    c10::NoGradGuard no_grad;
    const LinearObserver observe = [&](int64_t layer, LinearSite site, const at::Tensor& input,
                                       const at::Tensor&) {
      if (site == LinearSite::kOutput) {  // input: the GELU output [tokens, ffn]
        ffn_sum[layer] += input.abs().sum(0).to(at::kDouble);
      } else if (site == LinearSite::kAttentionOut) {  // input: context [tokens, heads*d]
        const int64_t heads = layers[layer].heads;
        head_sum[layer] +=
            input.view({input.size(0), heads, head_dim}).norm(2, {2}).sum(0).to(at::kDouble);
      }
    };
    for (size_t b = 0; b < calibration.size(); b += 32) {
      std::vector<const std::vector<int32_t>*> rows;
      for (size_t i = b; i < std::min(calibration.size(), b + 32); ++i) {
        rows.push_back(&calibration[i]);
        tokens += static_cast<int64_t>(calibration[i].size());
      }
      auto [ids, mask] = PadIds(rows);
      model.Forward(ids, mask, observe);
    }
    Importance out;
    for (size_t i = 0; i < layers.size(); ++i) {
      const StudentLayer& l = layers[i];
      const at::Tensor ffn = (ffn_sum[i] / static_cast<double>(tokens)) *
                             l.output.weight.norm(2, {0}).to(at::kDouble);
      const at::Tensor col_norm = l.attention_out.weight.view({l.attention_out.weight.size(0),
                                                               l.heads, head_dim})
                                      .pow(2).sum(at::IntArrayRef{0, 2}).sqrt()
                                      .to(at::kDouble);
      const at::Tensor heads = (head_sum[i] / static_cast<double>(tokens)) * col_norm;
      const at::Tensor f = ffn.to(at::kFloat).contiguous();
      const at::Tensor h = heads.to(at::kFloat).contiguous();
      out.ffn.emplace_back(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
      out.heads.emplace_back(h.data_ptr<float>(), h.data_ptr<float>() + h.numel());
    }
    return out;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("prune: LibTorch: ") + e.what());
  }
}

Result<PruneReport> Prune(const PruneOptions& o,
                          const std::vector<std::vector<int32_t>>& calibration,
                          const std::vector<DistillExample>& examples) {
  if (o.method != "l1" && o.method != "ffn" && o.method != "heads") {
    return Status::InvalidArgument("prune: method '" + o.method +
                                   "' is not one of l1, ffn, heads");
  }
  if (!(o.amount >= 0 && o.amount < 1)) {
    return Status::InvalidArgument("prune: amount must be in [0, 1), got " +
                                   std::to_string(o.amount));
  }
  if (o.recover_epochs < 0) return Status::InvalidArgument("prune: recover epochs must be >= 0");
  if (o.recover_epochs > 0 && o.method == "l1") {
    return Status::InvalidArgument(
        "prune: recovery after l1 pruning would refill the zeros; use it with ffn or heads");
  }
  NLPFLOW_ASSIGN_OR_RETURN(StudentBert model, StudentBert::Load(o.model_dir));
  PruneReport report;
  int64_t total = 0, gone = 0;
  auto count_all = [&](const StudentBert& m) {
    int64_t c = 0;
    for (const StudentLayer& l : m.layers()) {
      for (const StudentLinear* x :
           {&l.query, &l.key, &l.value, &l.attention_out, &l.intermediate, &l.output}) {
        c += x->weight.numel();
      }
    }
    return c;
  };
  total = count_all(model);
  try {
    c10::NoGradGuard no_grad;
    if (o.method == "l1") {
      for (StudentLayer& l : model.layers()) {
        for (StudentLinear* x :
             {&l.query, &l.key, &l.value, &l.attention_out, &l.intermediate, &l.output}) {
          const int64_t k = static_cast<int64_t>(o.amount * static_cast<double>(x->weight.numel()));
          if (k == 0) continue;
          // The k-th smallest |w| is the threshold; ties at it are pruned too.
          const at::Tensor flat = x->weight.abs().reshape({-1});
          const double threshold = std::get<0>(flat.kthvalue(k)).item<double>();
          x->weight = x->weight.masked_fill(x->weight.abs() <= threshold, 0.0).contiguous();
          gone += (x->weight == 0).sum().item<int64_t>();
        }
      }
    } else {
      if (calibration.empty()) {
        return Status::InvalidArgument("prune: structured pruning needs calibration texts");
      }
      NLPFLOW_ASSIGN_OR_RETURN(Importance importance, MeasureImportance(model, calibration));
      for (size_t i = 0; i < model.layers().size(); ++i) {
        if (o.method == "ffn") {
          const int64_t n = model.layers()[i].intermediate.weight.size(0);
          const int64_t keep = std::max<int64_t>(1, n - static_cast<int64_t>(o.amount * n));
          const at::Tensor score = at::tensor(importance.ffn[i]);
          model.KeepFfnNeurons(
              static_cast<int64_t>(i), std::get<0>(std::get<1>(score.topk(keep)).sort()));
        } else {
          const int64_t n = model.layers()[i].heads;
          const int64_t keep = std::max<int64_t>(1, n - static_cast<int64_t>(o.amount * n));
          std::vector<int64_t> order(n);
          std::iota(order.begin(), order.end(), 0);
          const auto& s = importance.heads[i];
          std::stable_sort(order.begin(), order.end(),
                           [&](int64_t a, int64_t b) { return s[a] > s[b]; });
          order.resize(keep);
          std::sort(order.begin(), order.end());
          model.KeepHeads(static_cast<int64_t>(i), order);
        }
      }
      gone = total - count_all(model);
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("prune: LibTorch: ") + e.what());
  }
  report.sparsity = static_cast<double>(gone) / static_cast<double>(total);
  if (o.recover_epochs > 0) {
    TrainOptions train = o.train;
    train.epochs = o.recover_epochs;
    NLPFLOW_ASSIGN_OR_RETURN(report.recovery, TrainStudent(&model, examples, train, o.model_dir));
  }
  for (const StudentLayer& l : model.layers()) {
    report.ffn_sizes.push_back(l.intermediate.weight.size(0));
    report.heads.push_back(l.heads);
  }
  NLPFLOW_RETURN_IF_ERROR(model.Save(o.out_dir, o.model_dir));
  return report;
}

}  // namespace nlpflow
