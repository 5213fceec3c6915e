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
  Impl(const MetricsRegistry* registry, Checks checks)
      : registry_(registry), checks_(std::move(checks)) {}

  ~Impl() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status Start(const std::string& listen) {
    NLPFLOW_ASSIGN_OR_RETURN(auto host_port, ParseListenAddress(listen));
    const auto& [host, port] = host_port;
    // Two threads are plenty for scrapes and probes; httplib's default is 8+.
    server_.new_task_queue = [] { return new httplib::ThreadPool(2); };
    // A scraper's idle keep-alive connection must not hold up shutdown long.
    server_.set_keep_alive_timeout(1);
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
  httplib::Server server_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  std::string address_;
  int port_ = 0;
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                           const MetricsRegistry* registry,
                                                           Checks checks) {
  if (registry == nullptr) return Status::InvalidArgument("MetricsServer needs a registry");
  auto impl = std::make_unique<Impl>(registry, std::move(checks));
  NLPFLOW_RETURN_IF_ERROR(impl->Start(listen));
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;
const std::string& MetricsServer::address() const { return impl_->address(); }
int MetricsServer::port() const { return impl_->port(); }

}  // namespace nlpflow
