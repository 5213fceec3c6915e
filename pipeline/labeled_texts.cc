#include "pipeline/labeled_texts.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace nlpflow {
namespace {

std::string Where(const std::string& path, int64_t line) {
  return path + ":" + std::to_string(line) + ": ";
}

std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

Result<std::vector<LabeledText>> ReadLabeledTexts(const std::string& path, int64_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  std::vector<LabeledText> out;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      // nlohmann's message ends with the position; the first part says what.
      return Status::InvalidArgument(Where(path, number) + "not a JSON line (" + e.what() + ")");
    }
    if (!j.is_object()) {
      return Status::InvalidArgument(Where(path, number) +
                                     "not a JSON object {\"text\": ..., \"label\": ...}");
    }
    LabeledText t;
    t.line = number;
    if (!j.contains("text") || !j["text"].is_string()) {
      return Status::InvalidArgument(Where(path, number) + "needs a string \"text\"");
    }
    t.text = j["text"].get<std::string>();
    const nlohmann::json label = j.value("label", nlohmann::json());
    if (label.is_string()) {
      t.label_name = label.get<std::string>();
      if (t.label_name.empty()) {
        return Status::InvalidArgument(Where(path, number) + "\"label\" is an empty name");
      }
    } else if (label.is_number_integer() && label.get<int64_t>() >= 0) {
      t.label_id = label.get<int64_t>();
    } else {
      return Status::InvalidArgument(
          Where(path, number) +
          "needs a \"label\": a name (string) or an id (non-negative integer), got " +
          (label.is_null() ? std::string("none") : label.dump()));
    }
    out.push_back(std::move(t));
    if (limit > 0 && static_cast<int64_t>(out.size()) >= limit) break;
  }
  if (in.bad()) return Status::Internal(path + ": read error");
  if (out.empty()) return Status::InvalidArgument(path + ": no labelled texts (empty file)");
  return out;
}

Status ApplyLabels(const std::string& path, const std::vector<std::string>& labels,
                   std::vector<LabeledText>* texts) {
  for (LabeledText& t : *texts) {
    if (!t.label_name.empty()) {
      const auto it = std::find(labels.begin(), labels.end(), t.label_name);
      if (it == labels.end()) {
        return Status::InvalidArgument(Where(path, t.line) + "unknown label '" + t.label_name +
                                       "' (labels: " + Joined(labels) + ")");
      }
      t.label_id = it - labels.begin();
    } else if (t.label_id >= static_cast<int64_t>(labels.size())) {
      return Status::InvalidArgument(Where(path, t.line) + "label id " +
                                     std::to_string(t.label_id) + " is out of range (" +
                                     std::to_string(labels.size()) + " labels: " +
                                     Joined(labels) + ")");
    }
  }
  return Status::Ok();
}

Result<std::vector<std::string>> ResolveLabels(const std::string& train_path,
                                               std::vector<LabeledText>* train,
                                               const std::vector<std::string>& given) {
  std::vector<std::string> labels = given;
  if (!given.empty()) {
    std::set<std::string> seen;
    for (const auto& name : given) {
      if (name.empty() || !seen.insert(name).second) {
        return Status::InvalidArgument("--labels: '" + name +
                                       "' is empty or given twice (labels: " + Joined(given) +
                                       ")");
      }
    }
  } else {
    const LabeledText* first_name = nullptr;
    const LabeledText* first_id = nullptr;
    std::set<std::string> names;
    int64_t largest = -1;
    for (const LabeledText& t : *train) {
      if (!t.label_name.empty()) {
        if (first_name == nullptr) first_name = &t;
        names.insert(t.label_name);
      } else {
        if (first_id == nullptr) first_id = &t;
        largest = std::max(largest, t.label_id);
      }
    }
    if (first_name != nullptr && first_id != nullptr) {
      const LabeledText* later = first_name->line > first_id->line ? first_name : first_id;
      return Status::InvalidArgument(Where(train_path, later->line) +
                                     "label names and label ids are mixed; give the names "
                                     "by id with --labels");
    }
    if (first_name != nullptr) {
      labels.assign(names.begin(), names.end());
    } else {
      for (int64_t i = 0; i <= largest; ++i) labels.push_back("LABEL_" + std::to_string(i));
    }
  }
  NLPFLOW_RETURN_IF_ERROR(ApplyLabels(train_path, labels, train));
  if (labels.size() < 2) {
    return Status::InvalidArgument(train_path + ": only one label ('" + labels[0] +
                                   "'); a classifier needs at least two (--labels names them)");
  }
  const int64_t first = train->front().label_id;
  const bool one_class = std::all_of(train->begin(), train->end(),
                                     [&](const LabeledText& t) { return t.label_id == first; });
  if (one_class) {
    return Status::InvalidArgument(train_path + ": all " + std::to_string(train->size()) +
                                   " lines (1-" + std::to_string(train->back().line) +
                                   ") have label '" + labels[first] +
                                   "'; fine-tuning needs at least two classes");
  }
  return labels;
}

}  // namespace nlpflow
