// Reads a tokenizer.json's post_processor and truncation sections into a
// PostProcessorSpec (internal to nodes/tokenize: it exposes nlohmann::json).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "nodes/tokenize/post_processor.h"

namespace nlpflow {

// post_processor: null, TemplateProcessing, BertProcessing or
// RobertaProcessing (<s> A </s> and <s> A </s> </s> B </s>, all type id 0);
// truncation: null or LongestFirst from the right without stride. Errors are
// "PATH: KEY: what".
Result<PostProcessorSpec> ParsePostProcessorJson(const nlohmann::json& root,
                                                 const std::string& path);

}  // namespace nlpflow
