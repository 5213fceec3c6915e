// A reader for the safetensors format (Hugging Face checkpoints).
//
// Layout of a file: an 8-byte little-endian header length N, N bytes of JSON
// {"tensor name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
//  "__metadata__": {string: string}}, then the raw tensor data. Offsets are
// relative to the start of the data, little-endian, row-major.
//
// Open() maps the file and validates the whole header up front: a header that
// does not fit in the file, malformed JSON, or a tensor whose byte range lies
// outside the data or does not match dtype x shape is DATA_LOSS naming the
// file and the tensor. After a successful Open() every TensorInfo refers to
// bytes inside the mapping, so reads cannot run off the end.
//
// No LibTorch here: the model code copies tensors out with ReadFloat32().
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace nlpflow {

enum class SafetensorsDType {
  kF64,
  kF32,
  kF16,
  kBF16,
  kI64,
  kI32,
  kI16,
  kI8,
  kU8,
  kBool,
  kUnknown,  // a dtype this reader does not know; its size is not checked
};

struct SafetensorsTensor {
  std::string name;
  std::string dtype_name;  // as written in the file, e.g. "BF16"
  SafetensorsDType dtype = SafetensorsDType::kUnknown;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  const std::byte* data = nullptr;  // inside the mapping of the file
  size_t nbytes = 0;
};

// "[30522, 384]"
std::string ShapeToString(std::span<const int64_t> shape);

class SafetensorsFile {
 public:
  // Maps and validates `path`. NOT_FOUND if it does not exist; DATA_LOSS if
  // it is truncated or its header is corrupt.
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  // nullptr when the file has no tensor of that name.
  const SafetensorsTensor* Find(std::string_view name) const;
  const std::map<std::string, SafetensorsTensor, std::less<>>& tensors() const {
    return tensors_;
  }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

  // Converts `tensor` to float32 into `out`, which must hold tensor.numel
  // values. F32, F16 and BF16 are supported; any other dtype is
  // INVALID_ARGUMENT naming the tensor.
  Status ReadFloat32(const SafetensorsTensor& tensor, std::span<float> out) const;

 private:
  SafetensorsFile(std::string path, void* map, size_t size)
      : path_(std::move(path)), map_(map), size_(size) {}
  Status ParseHeader();

  const std::string path_;
  void* const map_;    // read-only mapping of the whole file
  const size_t size_;  // bytes in the file
  std::map<std::string, SafetensorsTensor, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

// IEEE half / bfloat16 bit patterns to float; exact for every input
// (subnormals, infinities and NaNs included).
float HalfToFloat(uint16_t bits);
float BFloat16ToFloat(uint16_t bits);

}  // namespace nlpflow
