// Knowledge distillation of a sentence-embedding model: a student with k of
// the teacher's layers (initialized from them), optionally a narrower FFN,
// trained so that its embeddings match the teacher's (MSE on the L2-normalized
// sentence embeddings) with AdamW, linear warm-up then linear decay.
//
// The teacher's embeddings are computed by the caller (the offline graph runs
// the teacher through the serve graph's decode/tokenize/batch/infer nodes),
// so training sees exactly what the teacher serves.
//
// This header deliberately includes no LibTorch header.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace nlpflow {

class StudentBert;

// One training text: its token ids (special tokens included, truncated) and
// the teacher's embedding of it.
struct DistillExample {
  std::vector<int32_t> ids;
  std::vector<float> target;
};

struct TrainProgress {
  int64_t step = 0;   // 1-based, steps done
  int64_t steps = 0;  // in the whole run
  int epoch = 0;      // 1-based
  double loss = 0;    // mean over the batch just done
  double learning_rate = 0;
  double elapsed_s = 0;
  double eta_s = 0;
};

struct TrainOptions {
  int epochs = 1;
  int batch_size = 32;
  // Peak learning rate, reached after the warm-up, then decayed linearly to 0.
  double learning_rate = 1e-4;
  // Fraction of all steps spent warming up linearly from 0.
  double warmup_fraction = 0.1;
  // AdamW's decoupled weight decay (not applied to biases and LayerNorms).
  double weight_decay = 0.01;
  uint64_t seed = 1;
  // Non-empty: after every epoch the student is saved to
  // <checkpoint_dir>/epoch-<n> (a loadable model folder).
  std::string checkpoint_dir;
  // Non-null, with token_loss_weight > 0: the loss also compares the
  // student's last-layer hidden state of every token with the teacher's
  // (MSE of the L2-normalized states, times token_loss_weight), which gives
  // each text one target per token instead of one per text. The teacher's
  // states are computed once per text (first epoch) and kept in memory:
  // tokens x hidden x 4 bytes (about 1 GB for 11,000 texts of 64 tokens).
  const StudentBert* teacher = nullptr;
  double token_loss_weight = 0;
  // Called after every step.
  std::function<void(const TrainProgress&)> progress;
};

struct TrainReport {
  int64_t steps = 0;
  double seconds = 0;
  // Mean loss over the first and the last tenth of the steps (at least one
  // step each), and per epoch.
  double first_loss = 0;
  double last_loss = 0;
  std::vector<double> epoch_losses;
};

// Trains `student` in place. INVALID_ARGUMENT when `examples` is empty or an
// example's target does not have the student's hidden size.
// `source_dir` provides the tokenizer files for checkpoints.
Result<TrainReport> TrainStudent(StudentBert* student, const std::vector<DistillExample>& examples,
                                 const TrainOptions& options, const std::string& source_dir);

struct DistillOptions {
  // Model folder of the teacher; with train.token_loss_weight > 0 and no
  // train.teacher, also loaded as the source of the token states.
  std::string teacher_dir;
  std::string out_dir;      // where the student is written
  // Layers of the student, taken evenly from the teacher's, the last one
  // always among them (3 of 6: 1, 3, 5).
  int layers = 3;
  // FFN neurons per layer; 0 keeps the teacher's. Fewer: the neurons with
  // the largest importance (mean |activation| x norm of the output weights
  // column, measured on the first texts) are kept.
  int ffn = 0;
  TrainOptions train;
};

// The teacher layers a student of `k` layers starts from.
std::vector<int64_t> StudentLayerIndices(int64_t teacher_layers, int64_t k);

// Builds the student from the teacher, trains it on `examples` and saves it
// to out_dir. INVALID_ARGUMENT with one line for a student larger than the
// teacher, zero layers, an FFN wider than the teacher's, no examples.
Result<TrainReport> Distill(const DistillOptions& options,
                            const std::vector<DistillExample>& examples);

}  // namespace nlpflow
