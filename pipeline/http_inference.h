// HTTP inference: the second front door of the serve graph (DESIGN "Two
// front doors, one batcher"). Served on the metrics endpoint
// (pipeline/metrics_server.h), as text-embeddings-inference serves its
// metrics and its API on one port:
//
//   POST /v1/embeddings  OpenAI: {"input": str | [str], "model",
//                        "encoding_format": "float" | "base64"} ->
//                        {"object": "list", "data": [{"object": "embedding",
//                        "embedding", "index"}], "model", "usage":
//                        {"prompt_tokens", "total_tokens"}}; base64 is the
//                        little-endian float32 bytes.
//   POST /embed          TEI: {"inputs": str | [str], "normalize": true,
//                        "truncate"} -> [[float]]
//   POST /predict        TEI, classifiers: {"inputs": str | [str] | [[a, b]],
//                        "raw_scores": false} -> [{"label", "score"}] best
//                        first (a list of those for a list of inputs)
//   POST /rerank         TEI, cross-encoders (one label): {"query", "texts",
//                        "raw_scores", "return_text"} -> [{"index", "score"}]
//                        best first
//   POST /tokenize       TEI: {"inputs": str | [str], "add_special_tokens":
//                        true} -> [[{"id", "text", "special", "start",
//                        "stop"}]] (byte offsets into the input)
//
// Every text becomes one Record with a reply (common/record.h) and the
// priority header set to "high", handed to ServeGraph::PutRequest: the same
// tokenizer, batcher and model instances as the stream, so a request waits
// for at most the batch running ahead of it, and gets the stream's vectors.
// /tokenize runs the tokenizer on the request's thread (no model).
//
// Texts are truncated to the tokenizer's max length like the stream's
// (`truncate` is accepted and has no other effect). Errors, as a JSON body
// ({"error": message, "error_type"}; /v1/embeddings: OpenAI's {"error":
// {"message", "type"}}): 400 malformed JSON or fields, 422 a model that does
// not do the endpoint's task, 429 with Retry-After over
// max_concurrent_requests, 503 before the model is loaded, while stopping or
// past request_timeout_ms, 500 when the model failed on the batch.
//
// Metrics: nlpflow_http_request_seconds{endpoint} (every answer, errors
// included) and nlpflow_http_rejected_total (the 429s).
//
// Threads: the handlers (Routes) run on the server's threads, concurrently.
// Open and Close are for the owner; Close waits for the requests being
// answered, and after it returns `put` is never called again.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/record.h"
#include "nodes/infer/model.h"
#include "pipeline/metrics_server.h"

namespace nlpflow {

class Tokenizer;

struct HttpInferenceOptions {
  // Requests answered at once; one more is answered 429.
  int max_concurrent_requests = 64;
  // Longest a request waits for its records; then 503.
  int64_t request_timeout_ms = 30000;
  // The batcher's priority header (BatcherOptions::priority_header); empty:
  // requests ride at the stream's priority.
  std::string priority_header = "nlpflow-priority";
};

// What answers the requests once the model is loaded. The pointers must stay
// valid until Close() returned.
struct HttpInferenceBackend {
  const Tokenizer* tokenizer = nullptr;
  ModelTask task = ModelTask::kEmbedding;
  // Number of labels of a classifier (a cross-encoder has one).
  size_t num_labels = 0;
  // The model's embeddings are already of unit length (model.normalize).
  bool normalized = false;
  // Reported as OpenAI's "model".
  std::string model_name;
  // Hands a record with a reply into the graph (ServeGraph::PutRequest).
  std::function<void(RecordPtr)> put;
};

class HttpInference {
 public:
  // Registers the metrics in `registry`, which must outlive this object.
  HttpInference(HttpInferenceOptions options, MetricsRegistry* registry);

  HttpInference(const HttpInference&) = delete;
  HttpInference& operator=(const HttpInference&) = delete;

  // The endpoints, for MetricsServer::Start; they refer to this object,
  // which must outlive the server. Until Open they answer 503.
  HttpRoutes Routes();

  void Open(HttpInferenceBackend backend);
  // Idempotent. New requests get 503 "stopping"; waits for the others.
  void Close();

  // One endpoint's answer; what Routes() call.
  HttpResponse Embeddings(const HttpRequest& req);
  HttpResponse Embed(const HttpRequest& req);
  HttpResponse Predict(const HttpRequest& req);
  HttpResponse Rerank(const HttpRequest& req);
  HttpResponse Tokenize(const HttpRequest& req);

 private:
  struct Text {
    std::string text;
    std::optional<std::string> pair;
  };
  // Admission (429, 503), then the records through the graph; the finished
  // records in the order of `texts`, or the error answer.
  class Admission;
  HttpResponse Timed(Histogram* h, const std::function<HttpResponse()>& answer);
  bool Run(const std::vector<Text>& texts, bool openai, std::vector<RecordPtr>* done,
           HttpResponse* error);

  const HttpInferenceOptions options_;
  Histogram* seconds_embeddings_;
  Histogram* seconds_embed_;
  Histogram* seconds_predict_;
  Histogram* seconds_rerank_;
  Histogram* seconds_tokenize_;
  Counter* rejected_;
  std::atomic<int> answering_{0};  // requests past the 429 check

  std::mutex mu_;
  std::condition_variable idle_;
  bool open_ = false;              // GUARDED_BY(mu_)
  bool closed_ = false;            // GUARDED_BY(mu_)
  int inside_ = 0;                 // GUARDED_BY(mu_): requests using backend_
  HttpInferenceBackend backend_;   // written by Open under mu_, then read-only
};

}  // namespace nlpflow
