// A writer for the safetensors format (the reader is nodes/infer/safetensors.h):
// an 8-byte little-endian header length, the JSON header (names in sorted
// order, data offsets back to back), then the raw little-endian data. Only
// F32, which is what the runtime reads back exactly.
//
// No LibTorch here: callers pass pointers to contiguous float data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace nlpflow {

struct TensorToWrite {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;  // product(shape) floats, row-major
};

// Writes `tensors` to `path` (replacing it: written to path + ".tmp", then
// renamed, so a reader never sees half a file). INVALID_ARGUMENT for a
// duplicate or empty name or a null pointer; INTERNAL naming the file when
// writing fails.
Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace nlpflow
