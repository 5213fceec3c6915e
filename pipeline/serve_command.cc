#include "pipeline/serve_command.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <thread>

#include "pipeline/serve_app.h"

namespace nlpflow {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

void OnSignal(int signal) { g_stop_signal = signal; }

}  // namespace

int RunServe(const Config& config) {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  auto app = ServeApp::Create(config);
  if (!app.ok()) {
    spdlog::error("{}", app.status().message());
    return 1;
  }
  Status started = (*app)->Start();
  if (!started.ok()) {
    spdlog::error("{}", started.message());
    return 1;
  }
  while (g_stop_signal == 0 && (*app)->status().ok()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (g_stop_signal != 0) spdlog::info("signal {} received", static_cast<int>(g_stop_signal));
  Status stopped = (*app)->Stop();
  if (!stopped.ok()) {
    spdlog::error("{}", stopped.ToString());
    return 1;
  }
  return 0;
}

}  // namespace nlpflow
