#include "common/record.h"

namespace nlpflow {

const char* StageName(Stage stage) {
  switch (stage) {
    case Stage::kSource: return "source";
    case Stage::kDecode: return "decode";
    case Stage::kTokenize: return "tokenize";
    case Stage::kBatch: return "batch";
    case Stage::kInfer: return "infer";
    case Stage::kEncode: return "encode";
    case Stage::kSink: return "sink";
  }
  return "unknown";
}

}  // namespace nlpflow
