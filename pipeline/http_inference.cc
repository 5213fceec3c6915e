#include "pipeline/http_inference.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <variant>

#include "nodes/tokenize/tokenizer.h"
#include "pipeline/graph_metrics.h"

namespace nlpflow {

namespace {

// Floats as floats, as the stream's JSON results write them
// (nodes/encode/encoder.cc): the shortest text that reads back as the same
// float, so an answer's numbers are the stream's, digit for digit.
using json = nlohmann::basic_json<std::map, std::vector, std::string, bool, std::int64_t,
                                  std::uint64_t, float>;

HttpResponse JsonAnswer(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  // A token's text can end inside a character (/tokenize): replaced, not
  // an exception.
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

// OpenAI's error shape for /v1/*, TEI's for the others.
HttpResponse Error(int status, const std::string& type, const std::string& message, bool openai) {
  if (openai) {
    return JsonAnswer(status, {{"error",
                                {{"message", message}, {"type", type}, {"param", nullptr},
                                 {"code", nullptr}}}});
  }
  return JsonAnswer(status, {{"error", message}, {"error_type", type}});
}

HttpResponse BadRequest(const std::string& message, bool openai) {
  return Error(400, "invalid_request_error", message, openai);
}

// The request body as a JSON object; nullopt with *error set otherwise.
std::optional<json> ParseObject(const HttpRequest& req, bool openai, HttpResponse* error) {
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    *error = BadRequest("malformed JSON in the request body", openai);
    return std::nullopt;
  }
  if (!body.is_object()) {
    *error = BadRequest("the request body must be a JSON object", openai);
    return std::nullopt;
  }
  return body;
}

// `field`: a string or a non-empty list of strings.
std::optional<std::vector<std::string>> Strings(const json& body, const char* field, bool openai,
                                                HttpResponse* error) {
  auto it = body.find(field);
  if (it == body.end()) {
    *error = BadRequest(std::string("missing field '") + field + "'", openai);
    return std::nullopt;
  }
  if (it->is_string()) return std::vector<std::string>{it->get<std::string>()};
  if (it->is_array() && !it->empty()) {
    std::vector<std::string> out;
    for (const json& v : *it) {
      if (!v.is_string()) break;
      out.push_back(v.get<std::string>());
    }
    if (out.size() == it->size()) return out;
  }
  *error = BadRequest(std::string("'") + field + "' must be a string or a non-empty list of strings",
                      openai);
  return std::nullopt;
}

// An optional boolean field; nullopt with *error set if it is not a bool.
std::optional<bool> Bool(const json& body, const char* field, bool fallback, bool openai,
                         HttpResponse* error) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    *error = BadRequest(std::string("'") + field + "' must be true or false", openai);
    return std::nullopt;
  }
  return it->get<bool>();
}

std::string Base64(const std::vector<float>& values) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  bytes.reserve(values.size() * 4);
  for (float v : values) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  }
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 2]);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back(i + 2 < bytes.size() ? kAlphabet[n & 63] : '=');
  }
  return out;
}

std::vector<float> Normalized(std::vector<float> v) {
  double sq = 0;
  for (float x : v) sq += static_cast<double>(x) * x;
  const double norm = std::sqrt(sq);
  if (norm > 0) {
    for (float& x : v) x = static_cast<float>(x / norm);
  }
  return v;
}

const std::vector<float>& EmbeddingOf(const Record& r) {
  return std::get<EmbeddingOutput>(r.output).values;
}

const ClassificationOutput& ClassificationOf(const Record& r) {
  return std::get<ClassificationOutput>(r.output);
}

// All labels, best first (TEI's /predict).
json LabelScores(const ClassificationOutput& c, bool raw) {
  const std::vector<float>& values = raw ? c.logits : c.scores;
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return values[a] > values[b]; });
  json out = json::array();
  for (size_t i : order) {
    const std::string label =
        c.labels && i < c.labels->size() ? (*c.labels)[i] : "LABEL_" + std::to_string(i);
    out.push_back({{"label", label}, {"score", values[i]}});
  }
  return out;
}

}  // namespace

// Holds one place under max_concurrent_requests and one use of the backend.
class HttpInference::Admission {
 public:
  explicit Admission(HttpInference* h) : h_(h) {}
  ~Admission() {
    if (inside_) {
      std::lock_guard<std::mutex> lock(h_->mu_);
      if (--h_->inside_ == 0) h_->idle_.notify_all();
    }
    if (counted_) h_->answering_.fetch_sub(1);
  }

  // False with *error set when the request must be turned away.
  bool Enter(bool openai, HttpResponse* error) {
    counted_ = true;
    if (h_->answering_.fetch_add(1) >= h_->options_.max_concurrent_requests) {
      h_->rejected_->Inc();
      *error = Error(429, "rate_limit_error",
                     "too many requests at once (http.max_concurrent_requests " +
                         std::to_string(h_->options_.max_concurrent_requests) + ")",
                     openai);
      error->headers.push_back({"Retry-After", "1"});
      return false;
    }
    std::lock_guard<std::mutex> lock(h_->mu_);
    if (!h_->open_) {
      *error = Error(503, "unavailable",
                     h_->closed_ ? "stopping" : "not ready: loading the model", openai);
      error->headers.push_back({"Retry-After", "1"});
      return false;
    }
    ++h_->inside_;
    inside_ = true;
    return true;
  }

 private:
  HttpInference* h_;
  bool counted_ = false;
  bool inside_ = false;
};

HttpInference::HttpInference(HttpInferenceOptions options, MetricsRegistry* registry)
    : options_(std::move(options)) {
  auto histogram = [&](const char* endpoint) {
    return registry->AddHistogram("nlpflow_http_request_seconds",
                                  "HTTP inference requests, arrival to answer, by endpoint",
                                  LatencyBucketsSeconds(), {{"endpoint", endpoint}});
  };
  seconds_embeddings_ = histogram("/v1/embeddings");
  seconds_embed_ = histogram("/embed");
  seconds_predict_ = histogram("/predict");
  seconds_rerank_ = histogram("/rerank");
  seconds_tokenize_ = histogram("/tokenize");
  rejected_ = registry->AddCounter(
      "nlpflow_http_rejected_total",
      "HTTP inference requests answered 429 (over http.max_concurrent_requests)");
}

HttpRoutes HttpInference::Routes() {
  HttpRoutes r;
  r.routes = {
      {"/v1/embeddings", [this](const HttpRequest& q) { return Embeddings(q); }},
      {"/embed", [this](const HttpRequest& q) { return Embed(q); }},
      {"/predict", [this](const HttpRequest& q) { return Predict(q); }},
      {"/rerank", [this](const HttpRequest& q) { return Rerank(q); }},
      {"/tokenize", [this](const HttpRequest& q) { return Tokenize(q); }},
  };
  // One more than the bound, so that the request over it is answered (429)
  // instead of queued behind the others.
  r.threads = options_.max_concurrent_requests + 1;
  return r;
}

void HttpInference::Open(HttpInferenceBackend backend) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  backend_ = std::move(backend);
  open_ = true;
}

void HttpInference::Close() {
  std::unique_lock<std::mutex> lock(mu_);
  open_ = false;
  closed_ = true;
  idle_.wait(lock, [&] { return inside_ == 0; });
}

HttpResponse HttpInference::Timed(Histogram* h, const std::function<HttpResponse()>& answer) {
  const int64_t start = NowMicros();
  HttpResponse r = answer();
  h->Observe(static_cast<double>(NowMicros() - start) / 1e6);
  return r;
}

bool HttpInference::Run(const std::vector<Text>& texts, bool openai,
                        std::vector<RecordPtr>* done, HttpResponse* error) {
  // Filled by the replies. A request that timed out leaves; its records
  // still finish in the graph, and their replies find no waiter.
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = 0;
    std::vector<RecordPtr> done;
  };
  auto waiter = std::make_shared<Waiter>();
  waiter->left = texts.size();
  waiter->done.resize(texts.size());
  const int64_t now = NowMicros();
  for (size_t i = 0; i < texts.size(); ++i) {
    auto r = std::make_shared<Record>();
    r->text = texts[i].text;
    r->text_pair = texts[i].pair;
    if (!options_.priority_header.empty()) r->headers.push_back({options_.priority_header, "high"});
    r->times.arrived_us = now;
    // Weak: the record holds its reply, the waiter the records; and a
    // request that timed out no longer wants them.
    r->reply = [weak = std::weak_ptr<Waiter>(waiter), i](RecordPtr finished) {
      std::shared_ptr<Waiter> waiter = weak.lock();
      if (!waiter) return;
      std::lock_guard<std::mutex> lock(waiter->mu);
      waiter->done[i] = std::move(finished);
      if (--waiter->left == 0) waiter->cv.notify_all();
    };
    backend_.put(std::move(r));
  }
  std::unique_lock<std::mutex> lock(waiter->mu);
  if (!waiter->cv.wait_for(lock, std::chrono::milliseconds(options_.request_timeout_ms),
                           [&] { return waiter->left == 0; })) {
    *error = Error(503, "timeout",
                   "no result within http.request_timeout_ms (" +
                       std::to_string(options_.request_timeout_ms) + ")",
                   openai);
    return false;
  }
  for (const RecordPtr& r : waiter->done) {
    if (r->failed) {
      *error = Error(500, "backend",
                     std::string("stage ") + StageName(r->failed_stage) + ": " + r->failure_reason,
                     openai);
      return false;
    }
  }
  *done = std::move(waiter->done);
  return true;
}

namespace {

HttpResponse WrongTask(const char* endpoint, const char* needs, ModelTask task, bool openai) {
  return Error(422, "unprocessable",
               std::string(endpoint) + " needs " + needs + "; the model's task is " +
                   ModelTaskName(task),
               openai);
}

}  // namespace

HttpResponse HttpInference::Embeddings(const HttpRequest& req) {
  return Timed(seconds_embeddings_, [&] {
    constexpr bool kOpenAi = true;
    HttpResponse error;
    Admission admission(this);
    if (!admission.Enter(kOpenAi, &error)) return error;
    auto body = ParseObject(req, kOpenAi, &error);
    if (!body) return error;
    auto inputs = Strings(*body, "input", kOpenAi, &error);
    if (!inputs) return error;
    std::string format = "float";
    if (auto it = body->find("encoding_format"); it != body->end() && !it->is_null()) {
      format = it->is_string() ? it->get<std::string>() : "";
      if (format != "float" && format != "base64") {
        return BadRequest("'encoding_format' must be \"float\" or \"base64\"", kOpenAi);
      }
    }
    if (backend_.task != ModelTask::kEmbedding) {
      return WrongTask("/v1/embeddings", "an embedding model", backend_.task, kOpenAi);
    }
    std::vector<Text> texts;
    for (auto& s : *inputs) texts.push_back({std::move(s), std::nullopt});
    std::vector<RecordPtr> done;
    if (!Run(texts, kOpenAi, &done, &error)) return error;
    json data = json::array();
    int64_t tokens = 0;
    for (size_t i = 0; i < done.size(); ++i) {
      const std::vector<float>& v = EmbeddingOf(*done[i]);
      data.push_back({{"object", "embedding"},
                      {"embedding", format == "base64" ? json(Base64(v)) : json(v)},
                      {"index", i}});
      tokens += static_cast<int64_t>(done[i]->encoding.ids.size());
    }
    return JsonAnswer(200, {{"object", "list"},
                            {"data", std::move(data)},
                            {"model", backend_.model_name},
                            {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
  });
}

HttpResponse HttpInference::Embed(const HttpRequest& req) {
  return Timed(seconds_embed_, [&] {
    HttpResponse error;
    Admission admission(this);
    if (!admission.Enter(false, &error)) return error;
    auto body = ParseObject(req, false, &error);
    if (!body) return error;
    auto inputs = Strings(*body, "inputs", false, &error);
    if (!inputs) return error;
    auto normalize = Bool(*body, "normalize", true, false, &error);
    if (!normalize) return error;
    if (!Bool(*body, "truncate", false, false, &error)) return error;
    if (backend_.task != ModelTask::kEmbedding) {
      return WrongTask("/embed", "an embedding model", backend_.task, false);
    }
    std::vector<Text> texts;
    for (auto& s : *inputs) texts.push_back({std::move(s), std::nullopt});
    std::vector<RecordPtr> done;
    if (!Run(texts, false, &done, &error)) return error;
    json out = json::array();
    for (const RecordPtr& r : done) {
      // Already of unit length: the stream's vector as it is, bit for bit.
      out.push_back(*normalize && !backend_.normalized ? Normalized(EmbeddingOf(*r))
                                                       : EmbeddingOf(*r));
    }
    return JsonAnswer(200, out);
  });
}

HttpResponse HttpInference::Predict(const HttpRequest& req) {
  return Timed(seconds_predict_, [&] {
    HttpResponse error;
    Admission admission(this);
    if (!admission.Enter(false, &error)) return error;
    auto body = ParseObject(req, false, &error);
    if (!body) return error;
    auto raw = Bool(*body, "raw_scores", false, false, &error);
    if (!raw) return error;
    auto it = body->find("inputs");
    if (it == body->end()) return BadRequest("missing field 'inputs'", false);
    // A string: one text; a list: one entry per string or [text, pair].
    std::vector<Text> texts;
    const bool single = it->is_string();
    const auto bad = [] {
      return BadRequest(
          "'inputs' must be a string or a non-empty list of strings or [text, text_pair] pairs",
          false);
    };
    if (single) {
      texts.push_back({it->get<std::string>(), std::nullopt});
    } else if (it->is_array() && !it->empty()) {
      for (const json& v : *it) {
        if (v.is_string()) {
          texts.push_back({v.get<std::string>(), std::nullopt});
        } else if (v.is_array() && v.size() == 2 && v[0].is_string() && v[1].is_string()) {
          texts.push_back({v[0].get<std::string>(), v[1].get<std::string>()});
        } else {
          return bad();
        }
      }
    } else {
      return bad();
    }
    if (backend_.task != ModelTask::kSequenceClassification) {
      return WrongTask("/predict", "a sequence-classification model", backend_.task, false);
    }
    std::vector<RecordPtr> done;
    if (!Run(texts, false, &done, &error)) return error;
    if (single) return JsonAnswer(200, LabelScores(ClassificationOf(*done[0]), *raw));
    json out = json::array();
    for (const RecordPtr& r : done) out.push_back(LabelScores(ClassificationOf(*r), *raw));
    return JsonAnswer(200, out);
  });
}

HttpResponse HttpInference::Rerank(const HttpRequest& req) {
  return Timed(seconds_rerank_, [&] {
    HttpResponse error;
    Admission admission(this);
    if (!admission.Enter(false, &error)) return error;
    auto body = ParseObject(req, false, &error);
    if (!body) return error;
    auto query = body->find("query");
    if (query == body->end() || !query->is_string()) {
      return BadRequest("'query' must be a string", false);
    }
    auto passages = Strings(*body, "texts", false, &error);
    if (!passages) return error;
    auto raw = Bool(*body, "raw_scores", false, false, &error);
    if (!raw) return error;
    auto return_text = Bool(*body, "return_text", false, false, &error);
    if (!return_text) return error;
    if (backend_.task != ModelTask::kSequenceClassification || backend_.num_labels != 1) {
      if (backend_.task == ModelTask::kSequenceClassification) {
        return Error(422, "unprocessable",
                     "/rerank needs a cross-encoder (a classifier with one label); the model has " +
                         std::to_string(backend_.num_labels) + " labels",
                     false);
      }
      return WrongTask("/rerank", "a cross-encoder", backend_.task, false);
    }
    std::vector<Text> texts;
    for (const std::string& p : *passages) texts.push_back({query->get<std::string>(), p});
    std::vector<RecordPtr> done;
    if (!Run(texts, false, &done, &error)) return error;
    std::vector<std::pair<size_t, float>> ranked;
    for (size_t i = 0; i < done.size(); ++i) {
      const ClassificationOutput& c = ClassificationOf(*done[i]);
      ranked.push_back({i, *raw ? c.logits[0] : c.scores[0]});
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    json out = json::array();
    for (const auto& [i, score] : ranked) {
      json entry = {{"index", i}, {"score", score}};
      if (*return_text) entry["text"] = (*passages)[i];
      out.push_back(std::move(entry));
    }
    return JsonAnswer(200, out);
  });
}

HttpResponse HttpInference::Tokenize(const HttpRequest& req) {
  return Timed(seconds_tokenize_, [&] {
    HttpResponse error;
    Admission admission(this);
    if (!admission.Enter(false, &error)) return error;
    auto body = ParseObject(req, false, &error);
    if (!body) return error;
    auto inputs = Strings(*body, "inputs", false, &error);
    if (!inputs) return error;
    auto specials = Bool(*body, "add_special_tokens", true, false, &error);
    if (!specials) return error;
    json out = json::array();
    for (const std::string& text : *inputs) {
      const Encoding e = backend_.tokenizer->Encode(text);
      json tokens = json::array();
      for (size_t i = 0; i < e.ids.size(); ++i) {
        const auto [begin, end] = e.offsets[i];
        // Template special tokens cover no text: (0, 0).
        const bool special = begin == 0 && end == 0;
        if (special && !*specials) continue;
        tokens.push_back({{"id", e.ids[i]},
                          {"text", special ? json(nullptr) : json(text.substr(begin, end - begin))},
                          {"special", special},
                          {"start", begin},
                          {"stop", end}});
      }
      out.push_back(std::move(tokens));
    }
    return JsonAnswer(200, out);
  });
}

}  // namespace nlpflow
