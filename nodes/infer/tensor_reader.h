// Reading a safetensors tensor into a LibTorch tensor, checked against the
// shape config.json implies. LibTorch-only (safetensors.h stays free of it):
// include it from .cc files that already link LibTorch.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "common/status.h"
#include "nodes/infer/safetensors.h"

namespace nlpflow {

// NOT_FOUND naming the file and the tensor when it is missing;
// INVALID_ARGUMENT naming both shapes when they differ; the file's own error
// when the data cannot be read as float32.
inline Result<at::Tensor> ReadFloatTensor(const SafetensorsFile& file, const std::string& name,
                                          const std::vector<int64_t>& shape) {
  const SafetensorsTensor* t = file.Find(name);
  if (t == nullptr) return Status::NotFound(file.path() + ": no tensor '" + name + "'");
  if (t->shape != shape) {
    return Status::InvalidArgument(file.path() + ": tensor '" + name + "' has shape " +
                                   ShapeToString(t->shape) + " but config.json implies " +
                                   ShapeToString(shape));
  }
  at::Tensor out = at::empty(shape, at::kFloat);
  NLPFLOW_RETURN_IF_ERROR(file.ReadFloat32(
      *t, std::span<float>(out.data_ptr<float>(), static_cast<size_t>(out.numel()))));
  return out;
}

}  // namespace nlpflow
