// Pruning of a sentence-embedding model.
//
//   - "l1": unstructured magnitude pruning: in every Linear weight matrix of
//     the encoder the `amount` fraction of entries with the smallest |w| is
//     set to 0. The shapes stay, so dense kernels do exactly the same work:
//     no speed-up (the saved file is no smaller either).
//   - "ffn": structured pruning of FFN neurons: in every layer the `amount`
//     fraction of intermediate neurons with the smallest importance is
//     removed physically (intermediate rows, output columns), so the GEMMs
//     shrink. Importance of neuron j: mean over the calibration tokens of
//     |GELU output j| times the L2 norm of the output weights' column j (how
//     much it moves the layer's output).
//   - "heads": structured pruning of attention heads, the same way: per
//     layer the `amount` fraction (rounded down, at least one head kept) of
//     heads with the smallest importance (mean over tokens of the L2 norm of
//     the head's context times the norm of its attention_out columns) is
//     removed: query/key/value rows and attention_out columns.
//
// The result is a model folder with per-layer sizes in config.json that the
// runtime loads as is. An optional short distillation from the unpruned
// model recovers accuracy.
//
// This header deliberately includes no LibTorch header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodes/compress/distiller.h"

namespace nlpflow {

struct PruneOptions {
  std::string model_dir;  // the model to prune
  std::string out_dir;
  std::string method = "ffn";  // l1 | ffn | heads
  double amount = 0.3;         // fraction removed, in [0, 1)
  // Epochs of distillation from the unpruned model after pruning (0: none).
  int recover_epochs = 0;
  TrainOptions train;  // for the recovery (epochs is taken from recover_epochs)
};

struct PruneReport {
  // Per layer, after pruning: FFN neurons and attention heads.
  std::vector<int64_t> ffn_sizes;
  std::vector<int64_t> heads;
  // Fraction of the encoder's Linear weights that are 0 (l1) or removed.
  double sparsity = 0;
  TrainReport recovery;  // steps == 0 without recovery
};

// `calibration` is token-id lists (for importance; unused by l1).
// `examples` (ids and the unpruned model's embeddings) are the recovery data.
Result<PruneReport> Prune(const PruneOptions& options,
                          const std::vector<std::vector<int32_t>>& calibration,
                          const std::vector<DistillExample>& examples);

// Importance per layer: of each FFN neuron, of each head (see above), from a
// forward pass over `calibration` in batches of 32.
struct Importance {
  std::vector<std::vector<float>> ffn;
  std::vector<std::vector<float>> heads;
};
Result<Importance> MeasureImportance(const StudentBert& model,
                                     const std::vector<std::vector<int32_t>>& calibration);

}  // namespace nlpflow
