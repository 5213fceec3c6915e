#include "nodes/infer/checkpoint_weights.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <cstring>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <span>

#include "nodes/infer/tensor_reader.h"

namespace nlpflow {
namespace {

namespace fs = std::filesystem;

// The shard files of a Hugging Face index ({"weight_map": {tensor: file}}),
// in the order they are first named, and the tensor -> file map.
struct Index {
  std::vector<std::string> files;
  std::map<std::string, std::string> file_of;
};

Result<Index> ReadIndex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object() ||
      j["weight_map"].empty()) {
    return Status::InvalidArgument(path + ": no 'weight_map' object naming the shards");
  }
  Index index;
  std::set<std::string> seen;
  const fs::path dir = fs::path(path).parent_path();
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos) {
      return Status::InvalidArgument(path + ": weight_map entry '" + tensor +
                                     "' must name a file in the same folder, got " + file.dump());
    }
    const std::string shard = (dir / file.get<std::string>()).string();
    if (seen.insert(shard).second) index.files.push_back(shard);
    index.file_of[tensor] = shard;
  }
  return index;
}

// LibTorch 1.13's unpickler knows SETITEMS but not SETITEM, which Python's
// pickle writes for a dict of exactly one entry: a shard of a sharded
// pytorch_model.bin that holds one large tensor. Such a pickle (PROTO 2,
// EMPTY_DICT, an optional memo put, one key and value, SETITEM, STOP) is
// rewritten to the equivalent MARK ... SETITEMS form; any other is left as is.
void RewriteSingleEntryDict(std::string* pickle) {
  std::string& p = *pickle;
  if (p.size() < 6 || p.compare(0, 3, "\x80\x02}") != 0 || p.compare(p.size() - 2, 2, "s.") != 0) {
    return;
  }
  size_t mark = 3;
  if (p[3] == 'q') mark = 5;       // BINPUT, 1-byte memo index
  else if (p[3] == 'r') mark = 8;  // LONG_BINPUT, 4-byte memo index
  p[p.size() - 2] = 'u';           // SETITEMS
  p.insert(mark, 1, '(');          // MARK
}

// torch.save's zip (PyTorch >= 1.6) holding a dict of name -> tensor, read as
// torch::jit::pickle_load reads it (the pickle in data.pkl, each storage in
// the record data/<key>), with RewriteSingleEntryDict in between.
Status LoadPytorchFile(const std::string& path, std::map<std::string, at::Tensor, std::less<>>* out,
                       std::map<std::string, std::string, std::less<>>* file_of) {
  if (!std::ifstream(path, std::ios::binary)) return Status::NotFound(path + ": cannot open");
  c10::IValue value;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    auto [data, size] = reader.getRecord("data.pkl");
    std::string pickle(static_cast<const char*>(data.get()), size);
    RewriteSingleEntryDict(&pickle);
    size_t offset = 0;
    torch::jit::Unpickler unpickler(
        [&](char* buffer, size_t n) {
          n = std::min(n, pickle.size() - offset);
          std::memcpy(buffer, pickle.data() + offset, n);
          offset += n;
          return n;
        },
        /*type_resolver=*/nullptr, /*obj_loader=*/nullptr,
        [&](const std::string& name) { return std::get<0>(reader.getRecord("data/" + name)); },
        /*device=*/c10::nullopt);
    unpickler.set_version(reader.version());
    value = unpickler.parse_ivalue();
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (const size_t nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    return Status::DataLoss(path + ": not a readable torch.save checkpoint: " + what);
  }
  if (!value.isGenericDict()) {
    return Status::DataLoss(path + ": holds a " + value.tagKind() +
                            ", not a dict of tensors (a state_dict)");
  }
  for (const auto& entry : value.toGenericDict()) {
    if (!entry.key().isString() || !entry.value().isTensor()) continue;  // e.g. metadata
    const std::string name = entry.key().toStringRef();
    (*out)[name] = entry.value().toTensor();
    (*file_of)[name] = path;
  }
  return Status::Ok();
}

}  // namespace

CheckpointWeights::~CheckpointWeights() = default;

Result<std::unique_ptr<CheckpointWeights>> CheckpointWeights::OpenDir(const std::string& dir) {
  const fs::path d(dir);
  std::error_code ec;
  if (fs::exists(d / "model.safetensors", ec)) {
    return OpenSafetensors((d / "model.safetensors").string());
  }
  if (fs::exists(d / "model.safetensors.index.json", ec)) {
    return OpenSafetensorsIndex((d / "model.safetensors.index.json").string());
  }
  if (fs::exists(d / "pytorch_model.bin", ec)) {
    return OpenPytorch((d / "pytorch_model.bin").string());
  }
  if (fs::exists(d / "pytorch_model.bin.index.json", ec)) {
    return OpenPytorchIndex((d / "pytorch_model.bin.index.json").string());
  }
  return Status::NotFound(dir +
                          ": no weights: none of model.safetensors, "
                          "model.safetensors.index.json, pytorch_model.bin, "
                          "pytorch_model.bin.index.json");
}

Result<std::unique_ptr<CheckpointWeights>> CheckpointWeights::OpenSafetensors(
    const std::string& path) {
  NLPFLOW_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(path));
  std::unique_ptr<CheckpointWeights> w(new CheckpointWeights());
  w->path_ = path;
  w->format_ = "safetensors";
  for (const auto& [name, t] : file->tensors()) w->safetensors_[name] = file.get();
  w->files_.push_back(std::move(file));
  return w;
}

Result<std::unique_ptr<CheckpointWeights>> CheckpointWeights::OpenSafetensorsIndex(
    const std::string& path) {
  NLPFLOW_ASSIGN_OR_RETURN(Index index, ReadIndex(path));
  std::unique_ptr<CheckpointWeights> w(new CheckpointWeights());
  w->path_ = path;
  w->format_ = "safetensors (" + std::to_string(index.files.size()) + " shards)";
  std::map<std::string, const SafetensorsFile*> by_path;
  for (const std::string& shard : index.files) {
    auto file = SafetensorsFile::Open(shard);
    if (!file.ok()) return file.status().WithContext(path);
    by_path[shard] = file->get();
    w->files_.push_back(std::move(*file));
  }
  for (const auto& [tensor, shard] : index.file_of) {
    const SafetensorsFile* file = by_path.at(shard);
    if (file->Find(tensor) == nullptr) {
      return Status::DataLoss(path + ": names '" + tensor + "' in " + shard +
                              ", which has no such tensor");
    }
    w->safetensors_[tensor] = file;
  }
  return w;
}

Result<std::unique_ptr<CheckpointWeights>> CheckpointWeights::OpenPytorch(
    const std::string& path) {
  std::unique_ptr<CheckpointWeights> w(new CheckpointWeights());
  w->path_ = path;
  w->format_ = "pytorch_model.bin";
  NLPFLOW_RETURN_IF_ERROR(LoadPytorchFile(path, &w->torch_, &w->torch_file_));
  return w;
}

Result<std::unique_ptr<CheckpointWeights>> CheckpointWeights::OpenPytorchIndex(
    const std::string& path) {
  NLPFLOW_ASSIGN_OR_RETURN(Index index, ReadIndex(path));
  std::unique_ptr<CheckpointWeights> w(new CheckpointWeights());
  w->path_ = path;
  w->format_ = "pytorch_model.bin (" + std::to_string(index.files.size()) + " shards)";
  for (const std::string& shard : index.files) {
    NLPFLOW_RETURN_IF_ERROR(LoadPytorchFile(shard, &w->torch_, &w->torch_file_));
  }
  for (const auto& [tensor, shard] : index.file_of) {
    if (!w->torch_.contains(tensor)) {
      return Status::DataLoss(path + ": names '" + tensor + "' in " + shard +
                              ", which has no such tensor");
    }
  }
  return w;
}

bool CheckpointWeights::Contains(std::string_view name) const {
  return safetensors_.find(name) != safetensors_.end() || torch_.find(name) != torch_.end();
}

std::string CheckpointWeights::FileOf(std::string_view name) const {
  if (const auto it = safetensors_.find(name); it != safetensors_.end()) {
    return it->second->path();
  }
  if (const auto it = torch_file_.find(name); it != torch_file_.end()) return it->second;
  return path_;
}

Result<at::Tensor> CheckpointWeights::Read(const std::string& name,
                                           const std::vector<int64_t>& shape) const {
  if (const auto it = safetensors_.find(name); it != safetensors_.end()) {
    return ReadFloatTensor(*it->second, name, shape);
  }
  const auto it = torch_.find(name);
  if (it == torch_.end()) return Status::NotFound(path_ + ": no tensor '" + name + "'");
  const at::Tensor& t = it->second;
  const std::string file = FileOf(name);
  if (t.sizes().vec() != shape) {
    return Status::InvalidArgument(file + ": tensor '" + name + "' has shape " +
                                   ShapeToString(t.sizes().vec()) + " but config.json implies " +
                                   ShapeToString(shape));
  }
  if (t.scalar_type() != at::kFloat && t.scalar_type() != at::kHalf &&
      t.scalar_type() != at::kBFloat16 && t.scalar_type() != at::kDouble) {
    return Status::InvalidArgument(file + ": tensor '" + name + "' has dtype " +
                                   std::string(c10::toString(t.scalar_type())) +
                                   "; only float, half and bfloat16 can be read as float32");
  }
  // A copy: the unpickled tensor may be a view into a storage shared with
  // others (tied weights), and callers own what they get.
  return t.to(at::kFloat).contiguous().clone();
}

}  // namespace nlpflow
