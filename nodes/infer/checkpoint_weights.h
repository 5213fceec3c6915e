// The tensors of a Hugging Face checkpoint, whatever its format:
// model.safetensors, sharded safetensors (model.safetensors.index.json and its
// shards), or pytorch_model.bin (a torch.save zip, read with LibTorch's
// unpickler: no Python) and its sharded form (pytorch_model.bin.index.json).
// F32, F16 and BF16 tensors are converted to float32 when read.
//
// INTERNAL to nodes/infer (includes ATen): include it from .cc files only.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "nodes/infer/safetensors.h"

namespace nlpflow {

class CheckpointWeights {
 public:
  // The weights of model folder `dir`, the first of model.safetensors,
  // model.safetensors.index.json, pytorch_model.bin,
  // pytorch_model.bin.index.json that exists. NOT_FOUND naming the folder and
  // the four names when none does; the format's own errors otherwise (a
  // corrupt or truncated file, an index naming a missing shard: DATA_LOSS or
  // NOT_FOUND naming the file).
  static Result<std::unique_ptr<CheckpointWeights>> OpenDir(const std::string& dir);
  // One file of the given format (the .json name for an index).
  static Result<std::unique_ptr<CheckpointWeights>> OpenSafetensors(const std::string& path);
  static Result<std::unique_ptr<CheckpointWeights>> OpenSafetensorsIndex(const std::string& path);
  static Result<std::unique_ptr<CheckpointWeights>> OpenPytorch(const std::string& path);
  static Result<std::unique_ptr<CheckpointWeights>> OpenPytorchIndex(const std::string& path);

  CheckpointWeights(const CheckpointWeights&) = delete;
  CheckpointWeights& operator=(const CheckpointWeights&) = delete;
  ~CheckpointWeights();

  bool Contains(std::string_view name) const;
  // Tensor `name` as float32 of exactly `shape`. NOT_FOUND naming the file
  // and the tensor when it is missing; INVALID_ARGUMENT naming the file, the
  // tensor and both shapes when they differ, or the dtype when it is not a
  // floating-point one.
  Result<at::Tensor> Read(const std::string& name, const std::vector<int64_t>& shape) const;

  // What messages name: the file, or the index for sharded checkpoints.
  const std::string& path() const { return path_; }
  // "safetensors", "safetensors (3 shards)", "pytorch_model.bin", ...
  const std::string& format() const { return format_; }

 private:
  CheckpointWeights() = default;
  // Where a tensor's message should point: its shard for sharded files.
  std::string FileOf(std::string_view name) const;

  std::string path_, format_;
  // safetensors: the open files and, per tensor name, the one holding it.
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*, std::less<>> safetensors_;
  // pytorch_model.bin: the unpickled tensors (as stored: any dtype), and per
  // name the file it came from.
  std::map<std::string, at::Tensor, std::less<>> torch_;
  std::map<std::string, std::string, std::less<>> torch_file_;
};

}  // namespace nlpflow
