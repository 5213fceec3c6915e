// The HTTP endpoint of a running pipeline (cpp-httplib):
//   GET /metrics  200, the registry in the Prometheus text format (0.0.4)
//   GET /healthz  200 "ok" while the health check is OK; else 503 and the
//                 error (the process is alive but the pipeline failed)
//   GET /readyz   200 "ready" once the readiness check is OK; else 503 and
//                 why not (e.g. "not ready: loading the model")
// Anything else: 404.
//
// Threads: Start and the destructor are for the owner. The handlers run on
// the server's own threads (two), concurrently with everything else, for as
// long as the server lives: what they read must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/status.h"

namespace nlpflow {

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
                                                      Checks checks);

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
