#include "pipeline/metrics_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "pipeline/config.h"

namespace nlpflow {

class MetricsServer::Impl {
 public:
  Impl(const MetricsRegistry* registry, Checks checks, HttpRoutes routes)
      : registry_(registry), checks_(std::move(checks)), routes_(std::move(routes)) {}

  ~Impl() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status Start(const std::string& listen) {
    NLPFLOW_ASSIGN_OR_RETURN(auto host_port, ParseListenAddress(listen));
    const auto& [host, port] = host_port;
    // Two threads are plenty for scrapes and probes; httplib's default is 8+.
    // Each inference request holds a thread while it waits for its results.
    const int threads = 2 + routes_.threads;
    server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    // A scraper's idle keep-alive connection must not hold up shutdown long.
    server_.set_keep_alive_timeout(1);
    // httplib writes a response's head and body in separate sends: with
    // Nagle on, the body waits for the client's delayed ACK (about 40 ms on
    // Linux), which a kept-alive inference client pays on every request.
    server_.set_tcp_nodelay(true);
    // httplib's default sets SO_REUSEPORT, which lets a second process bind
    // the same port and share the scrapes at random. SO_REUSEADDR only: a
    // restart can still bind while old connections are in TIME_WAIT.
    server_.set_socket_options([](int sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(registry_->Render(), "text/plain; version=0.0.4; charset=utf-8");
    });
    server_.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
      Answer(checks_.health ? checks_.health() : Status::Ok(), "ok", "", &res);
    });
    server_.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      Answer(checks_.ready ? checks_.ready() : Status::Ok(), "ready", "not ready: ", &res);
    });
    for (const HttpRoute& route : routes_.routes) {
      server_.Post(route.path, [&route](const httplib::Request& req, httplib::Response& res) {
        HttpResponse out = route.post(HttpRequest{req.body});
        res.status = out.status;
        for (const auto& [name, value] : out.headers) res.set_header(name, value);
        res.set_content(out.body, out.content_type);
      });
    }
    if (routes_.max_body_bytes > 0) {
      server_.set_payload_max_length(static_cast<size_t>(routes_.max_body_bytes));
      // httplib answers an oversized body 413 before any route runs; give
      // it a JSON body like the routes' own errors.
      const int64_t limit = routes_.max_body_bytes;
      server_.set_error_handler([limit](const httplib::Request&, httplib::Response& res) {
        if (res.status == 413) {
          res.set_content("{\"error\":\"request body over http.max_body_bytes (" +
                              std::to_string(limit) + ")\",\"error_type\":\"payload_too_large\"}",
                          "application/json");
        }
      });
    }
    int bound = port;
    if (port == 0) {
      bound = server_.bind_to_any_port(host);
      if (bound < 0) bound = -1;
    } else if (!server_.bind_to_port(host, port)) {
      bound = -1;
    }
    if (bound <= 0) {
      return Status::Unavailable("metrics.listen " + listen +
                                 ": cannot listen on this address (in use, or not an "
                                 "address of this machine)");
    }
    port_ = bound;
    address_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
               std::to_string(bound);
    thread_ = std::thread([this] {
      server_.listen_after_bind();
      listen_returned_.store(true);
    });
    // stop() before the accept loop runs would be lost (httplib only stops a
    // running server): wait until it runs.
    while (!server_.is_running() && !listen_returned_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (listen_returned_.load()) {
      return Status::Unavailable("metrics.listen " + listen + ": the server stopped at once");
    }
    spdlog::info("metrics listening on {}", address_);
    return Status::Ok();
  }

  const std::string& address() const { return address_; }
  int port() const { return port_; }

 private:
  static void Answer(const Status& s, const char* ok_text, const char* bad_prefix,
                     httplib::Response* res) {
    if (s.ok()) {
      res->status = 200;
      res->set_content(std::string(ok_text) + "\n", "text/plain; charset=utf-8");
    } else {
      res->status = 503;
      res->set_content(bad_prefix + s.message() + "\n", "text/plain; charset=utf-8");
    }
  }

  const MetricsRegistry* registry_;
  const Checks checks_;
  const HttpRoutes routes_;
  httplib::Server server_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  std::string address_;
  int port_ = 0;
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                           const MetricsRegistry* registry,
                                                           Checks checks, HttpRoutes routes) {
  if (registry == nullptr) return Status::InvalidArgument("MetricsServer needs a registry");
  auto impl = std::make_unique<Impl>(registry, std::move(checks), std::move(routes));
  NLPFLOW_RETURN_IF_ERROR(impl->Start(listen));
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;
const std::string& MetricsServer::address() const { return impl_->address(); }
int MetricsServer::port() const { return impl_->port(); }

}  // namespace nlpflow
