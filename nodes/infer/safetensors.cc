#include "nodes/infer/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

namespace nlpflow {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; this reader copies it as is");

// The format's own limit (safetensors: N_LEN is at most 100,000,000); a larger
// value is a corrupt length field, not a real header.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeInfo {
  const char* name;
  SafetensorsDType dtype;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {"F64", SafetensorsDType::kF64, 8},   {"F32", SafetensorsDType::kF32, 4},
    {"F16", SafetensorsDType::kF16, 2},   {"BF16", SafetensorsDType::kBF16, 2},
    {"I64", SafetensorsDType::kI64, 8},   {"I32", SafetensorsDType::kI32, 4},
    {"I16", SafetensorsDType::kI16, 2},   {"I8", SafetensorsDType::kI8, 1},
    {"U8", SafetensorsDType::kU8, 1},     {"BOOL", SafetensorsDType::kBool, 1},
};

const DTypeInfo* LookUpDType(const std::string& name) {
  for (const DTypeInfo& d : kDTypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

template <typename T>
T LoadUnaligned(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

std::string ShapeToString(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exactly representable in float.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1f) {  // infinity or NaN (payload kept)
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  // Rebias the exponent from 15 to 127.
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

float BFloat16ToFloat(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound(path + ": no such file");
    return Status::FailedPrecondition(path + ": cannot open: " + std::strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(path + ": not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return Status::DataLoss(path + ": file is " + std::to_string(size) +
                            " bytes; a safetensors file starts with an 8-byte header length");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) {
    return Status::FailedPrecondition(path + ": mmap failed: " + std::strerror(map_errno));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(path, map, size));
  NLPFLOW_RETURN_IF_ERROR(file->ParseHeader());
  return file;
}

SafetensorsFile::~SafetensorsFile() { ::munmap(map_, size_); }

Status SafetensorsFile::ParseHeader() {
  const auto* base = static_cast<const std::byte*>(map_);
  const uint64_t header_len = LoadUnaligned<uint64_t>(base);
  if (header_len > kMaxHeaderBytes || header_len > size_ - 8) {
    return Status::DataLoss(path_ + ": header length " + std::to_string(header_len) +
                            " does not fit in the file of " + std::to_string(size_) +
                            " bytes (corrupt or truncated)");
  }
  const auto* header_begin = reinterpret_cast<const char*>(base + 8);
  const std::byte* data = base + 8 + header_len;
  const uint64_t data_size = size_ - 8 - header_len;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_begin, header_begin + header_len);
  } catch (const nlohmann::json::exception& e) {
    return Status::DataLoss(path_ + ": header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) {
    return Status::DataLoss(path_ + ": header is not a JSON object");
  }

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        return Status::DataLoss(path_ + ": __metadata__ is not an object");
      }
      for (const auto& [key, value] : entry.items()) {
        if (value.is_string()) metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    // A structured binding cannot be captured in C++17 (nor by clang 14).
    const std::string& tensor_name = name;
    auto corrupt = [&](const std::string& why) {
      return Status::DataLoss(path_ + ": tensor '" + tensor_name + "': " + why);
    };
    if (!entry.is_object()) return corrupt("entry is not an object");
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) return corrupt("no string 'dtype'");
    if (shape_it == entry.end() || !shape_it->is_array()) return corrupt("no array 'shape'");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
      return corrupt("'data_offsets' is not a pair of non-negative integers");
    }

    SafetensorsTensor t;
    t.name = name;
    t.dtype_name = dtype_it->get<std::string>();
    const DTypeInfo* dtype = LookUpDType(t.dtype_name);
    t.dtype = dtype ? dtype->dtype : SafetensorsDType::kUnknown;
    uint64_t numel = 1;
    for (const auto& dim : *shape_it) {
      if (!dim.is_number_unsigned()) return corrupt("shape has an entry that is not a size");
      const uint64_t d = dim.get<uint64_t>();
      if (d > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, d, &numel)) {
        return corrupt("shape is too large");
      }
      t.shape.push_back(static_cast<int64_t>(d));
    }
    t.numel = static_cast<int64_t>(numel);

    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end) {
      return corrupt("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     "] are reversed");
    }
    if (end > data_size) {
      return corrupt("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                     "] run past the " + std::to_string(data_size) +
                     " data bytes in the file (truncated?)");
    }
    uint64_t expected_bytes = 0;
    if (dtype != nullptr &&
        (__builtin_mul_overflow(numel, dtype->size, &expected_bytes) ||
         expected_bytes != end - begin)) {
      return corrupt("holds " + std::to_string(end - begin) + " bytes but " + t.dtype_name +
                     " " + ShapeToString(t.shape) + " needs " +
                     std::to_string(numel * dtype->size));
    }
    t.data = data + begin;
    t.nbytes = end - begin;
    tensors_.emplace(name, std::move(t));
  }
  return Status::Ok();
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

Status SafetensorsFile::ReadFloat32(const SafetensorsTensor& t, std::span<float> out) const {
  if (out.size() != static_cast<size_t>(t.numel)) {
    return Status::InvalidArgument(path_ + ": tensor '" + t.name + "' has " +
                                   std::to_string(t.numel) + " values; destination holds " +
                                   std::to_string(out.size()));
  }
  switch (t.dtype) {
    case SafetensorsDType::kF32:
      std::memcpy(out.data(), t.data, t.nbytes);
      return Status::Ok();
    case SafetensorsDType::kF16:
      for (size_t i = 0; i < out.size(); ++i) {
        out[i] = HalfToFloat(LoadUnaligned<uint16_t>(t.data + 2 * i));
      }
      return Status::Ok();
    case SafetensorsDType::kBF16:
      for (size_t i = 0; i < out.size(); ++i) {
        out[i] = BFloat16ToFloat(LoadUnaligned<uint16_t>(t.data + 2 * i));
      }
      return Status::Ok();
    default:
      return Status::InvalidArgument(path_ + ": tensor '" + t.name + "' has dtype " +
                                     t.dtype_name + "; only F32, F16 and BF16 can be read as "
                                     "float32");
  }
}

}  // namespace nlpflow
