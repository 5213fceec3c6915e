#include "nodes/compress/safetensors_writer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>

namespace nlpflow {

Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorToWrite*> sorted;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.data == nullptr) {
      return Status::InvalidArgument("safetensors " + path + ": tensor '" + t.name +
                                     "' has no name or no data");
    }
    sorted.push_back(&t);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const TensorToWrite* a, const TensorToWrite* b) { return a->name < b->name; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->name == sorted[i - 1]->name) {
      return Status::InvalidArgument("safetensors " + path + ": tensor '" + sorted[i]->name +
                                     "' given twice");
    }
  }
  // nlohmann::ordered_json keeps insertion order; the format does not care,
  // but a sorted header is stable across runs.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorToWrite* t : sorted) {
    const int64_t numel =
        std::accumulate(t->shape.begin(), t->shape.end(), int64_t{1}, std::multiplies<>());
    const uint64_t bytes = static_cast<uint64_t>(numel) * sizeof(float);
    header[t->name] = {{"dtype", "F32"},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  // Pad the header with spaces to a multiple of 8 so the data is aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::Internal("cannot write " + tmp);
    const uint64_t n = text.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const TensorToWrite* t : sorted) {
      const int64_t numel =
          std::accumulate(t->shape.begin(), t->shape.end(), int64_t{1}, std::multiplies<>());
      out.write(reinterpret_cast<const char*>(t->data),
                static_cast<std::streamsize>(numel * sizeof(float)));
    }
    out.flush();
    if (!out) return Status::Internal("writing " + tmp + " failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::Internal("renaming " + tmp + " to " + path + ": " + ec.message());
  return Status::Ok();
}

}  // namespace nlpflow
