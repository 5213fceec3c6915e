// The HTTP endpoint of a running pipeline (cpp-httplib):
//   GET /metrics  200, the registry in the Prometheus text format (0.0.4)
//   GET /healthz  200 "ok" while the health check is OK; else 503 and the
//                 error (the process is alive but the pipeline failed)
//   GET /readyz   200 "ready" once the readiness check is OK; else 503 and
//                 why not (e.g. "not ready: loading the model")
//   POST <route>  the routes given to Start (HTTP inference,
//                 pipeline/http_inference.h); a body over their
//                 max_body_bytes is answered 413 before the route runs
// Anything else: 404.
//
// Threads: Start and the destructor are for the owner. The handlers run on
// the server's own threads (two), concurrently with everything else, for as
// long as the server lives: what they read must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"

namespace nlpflow {

// A POST endpoint served next to /metrics, kept free of the HTTP library so
// that what answers it can be tested without a server.
struct HttpRequest {
  std::string body;
};
struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};
struct HttpRoute {
  std::string path;
  // Runs on a server thread; may block (each request holds its thread).
  std::function<HttpResponse(const HttpRequest&)> post;
};
struct HttpRoutes {
  std::vector<HttpRoute> routes;
  // Server threads for the routes, on top of the two for scrapes and probes.
  int threads = 0;
  // Largest body a route accepts; larger: 413 with a JSON error. 0: no limit.
  int64_t max_body_bytes = 0;
};

class MetricsServer {
 public:
  struct Checks {
    std::function<Status()> health;
    std::function<Status()> ready;
  };

  // Binds `listen` ("host:port"; port 0 takes a free port) and starts
  // serving. `registry` must outlive the server. Unavailable naming the
  // address if it cannot be bound; InvalidArgument for a malformed address.
  // Logs "metrics listening on HOST:PORT" with the bound port.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                      const MetricsRegistry* registry,
                                                      Checks checks,
                                                      HttpRoutes routes = {});

  // Stops serving and joins the server's threads.
  ~MetricsServer();

  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The bound address, e.g. "127.0.0.1:38211".
  const std::string& address() const;
  int port() const;

  class Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nlpflow
