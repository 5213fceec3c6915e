// LoadTokenizer and Pad: the model-independent part of reading a
// tokenizer.json.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nodes/tokenize/bpe_tokenizer.h"
#include "nodes/tokenize/tokenizer.h"
#include "nodes/tokenize/unigram_tokenizer.h"
#include "nodes/tokenize/wordpiece_tokenizer.h"

namespace nlpflow {
namespace {

using Json = nlohmann::json;

Status PaddingError(const std::string& path, const std::string& what) {
  return Status::InvalidArgument(path + ": padding: " + what);
}

Result<PaddingOptions> ParsePadding(const std::string& path, const Json& root) {
  PaddingOptions out;
  auto it = root.find("padding");
  if (it == root.end() || it->is_null()) return out;
  const Json& p = *it;
  if (!p.is_object()) return PaddingError(path, "expected an object or null");
  auto strategy = p.find("strategy");
  if (strategy == p.end() || (strategy->is_string() && *strategy == "BatchLongest")) {
    out.strategy = PaddingOptions::Strategy::kBatchLongest;
  } else if (strategy->is_object() && strategy->contains("Fixed") &&
             (*strategy)["Fixed"].is_number_unsigned()) {
    out.strategy = PaddingOptions::Strategy::kFixed;
    out.fixed_length = (*strategy)["Fixed"].get<int>();
  } else {
    return PaddingError(path, "strategy must be \"BatchLongest\" or {\"Fixed\": N}");
  }
  auto direction = p.find("direction");
  if (direction != p.end() && direction->is_string()) {
    if (*direction == "Left") {
      out.left = true;
    } else if (*direction != "Right") {
      return PaddingError(path, "direction must be \"Left\" or \"Right\"");
    }
  }
  auto multiple = p.find("pad_to_multiple_of");
  if (multiple != p.end() && !multiple->is_null()) {
    if (!multiple->is_number_unsigned()) return PaddingError(path, "bad pad_to_multiple_of");
    out.pad_to_multiple_of = multiple->get<int>();
  }
  auto id = p.find("pad_id");
  if (id != p.end() && id->is_number_unsigned()) out.pad_id = id->get<int32_t>();
  auto type_id = p.find("pad_type_id");
  if (type_id != p.end() && type_id->is_number_unsigned()) out.pad_type_id = type_id->get<int32_t>();
  return out;
}

}  // namespace

std::string Tokenizer::DecodeTokens(const std::vector<std::string>& tokens) const {
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) out += (i == 0 ? "" : " ") + tokens[i];
  return out;
}

void Pad(const PaddingOptions& padding, Encoding* e) {
  if (padding.strategy == PaddingOptions::Strategy::kNone) return;
  size_t target = e->ids.size();
  if (padding.strategy == PaddingOptions::Strategy::kFixed) {
    target = static_cast<size_t>(padding.fixed_length);
  }
  if (padding.pad_to_multiple_of > 0) {
    const size_t m = static_cast<size_t>(padding.pad_to_multiple_of);
    target = (target + m - 1) / m * m;
  }
  if (target <= e->ids.size()) return;
  const size_t n = target - e->ids.size();
  const auto at_ids = padding.left ? e->ids.begin() : e->ids.end();
  e->ids.insert(at_ids, n, padding.pad_id);
  const auto at_types = padding.left ? e->type_ids.begin() : e->type_ids.end();
  e->type_ids.insert(at_types, n, padding.pad_type_id);
  const auto at_offsets = padding.left ? e->offsets.begin() : e->offsets.end();
  e->offsets.insert(at_offsets, n, {0, 0});
}

Result<LoadedTokenizer> LoadTokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec)) {
    file = (fs::path(path) / "tokenizer.json").string();
    if (!fs::is_regular_file(file, ec)) {
      // A BERT folder with only vocab.txt (and tokenizer_config.json).
      NLPFLOW_ASSIGN_OR_RETURN(auto wp, WordPieceTokenizer::FromModelDir(path));
      return LoadedTokenizer{std::move(wp), PaddingOptions{}, "WordPiece"};
    }
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::NotFound(file + ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  Json root = Json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return Status::InvalidArgument(file + ": not a JSON object");
  }
  LoadedTokenizer out;
  NLPFLOW_ASSIGN_OR_RETURN(out.padding, ParsePadding(file, root));
  auto model = root.find("model");
  if (model == root.end() || !model->is_object()) {
    return Status::InvalidArgument(file + ": model: missing or not an object");
  }
  out.model_type = model->value("type", std::string("WordPiece"));
  if (out.model_type == "WordPiece") {
    NLPFLOW_ASSIGN_OR_RETURN(out.tokenizer, WordPieceTokenizer::FromTokenizerJson(file));
  } else if (out.model_type == "BPE") {
    NLPFLOW_ASSIGN_OR_RETURN(out.tokenizer, BpeTokenizer::FromTokenizerJson(file));
  } else if (out.model_type == "Unigram") {
    NLPFLOW_ASSIGN_OR_RETURN(out.tokenizer, UnigramTokenizer::FromTokenizerJson(file));
  } else {
    return Status::InvalidArgument(file + ": model.type: \"" + out.model_type +
                                   "\" is not supported (WordPiece, BPE or Unigram)");
  }
  return out;
}

std::pair<size_t, size_t> LongestFirstKeep(size_t a_len, size_t b_len, size_t budget) {
  const bool a_longer = a_len > b_len;
  const size_t shorter = std::min(a_len, b_len);
  size_t keep_shorter = shorter;
  size_t keep_longer = shorter > budget ? shorter : std::max(shorter, budget - shorter);
  if (keep_shorter + keep_longer > budget) {
    keep_shorter = budget / 2;
    keep_longer = budget / 2 + budget % 2;
  }
  return a_longer ? std::pair{keep_longer, keep_shorter} : std::pair{keep_shorter, keep_longer};
}

}  // namespace nlpflow
