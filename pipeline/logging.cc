#include "pipeline/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

namespace nlpflow {
namespace {

class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    const auto since_epoch = msg.time.time_since_epoch();
    const std::time_t secs = std::chrono::system_clock::to_time_t(msg.time);
    const int ms = static_cast<int>(duration_cast<milliseconds>(since_epoch).count() % 1000);
    std::tm utc{};
    gmtime_r(&secs, &utc);
    char time_text[40];
    const size_t n = std::strftime(time_text, sizeof(time_text), "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(time_text + n, sizeof(time_text) - n, ".%03dZ", ms < 0 ? 0 : ms);

    nlohmann::ordered_json line;
    line["time"] = time_text;
    const auto level = spdlog::level::to_string_view(msg.level);
    line["level"] = std::string(level.data(), level.size());
    line["message"] = std::string(msg.payload.data(), msg.payload.size());
    line["logger"] = std::string(msg.logger_name.data(), msg.logger_name.size());
    line["thread"] = msg.thread_id;
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

std::unique_ptr<spdlog::formatter> MakeJsonLogFormatter() {
  return std::make_unique<JsonFormatter>();
}

void SetUpLogging(const LogOptions& options) {
  auto logger = spdlog::get("nlpflow");
  if (!logger) logger = spdlog::stderr_color_mt("nlpflow");
  spdlog::set_default_logger(logger);
  if (options.format == "json") {
    logger->set_formatter(MakeJsonLogFormatter());
  } else {
    // %z: the UTC offset, "+01:00".
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  }
  logger->set_level(spdlog::level::from_str(options.level));
}

std::string PeekLogFormat(const std::string& config_path,
                          const std::vector<std::string>& overrides) {
  std::string format = "text";
  try {
    const YAML::Node root = YAML::LoadFile(config_path);
    if (root.IsMap() && root["logging"] && root["logging"].IsMap() &&
        root["logging"]["format"] && root["logging"]["format"].IsScalar()) {
      format = root["logging"]["format"].Scalar();
    }
  } catch (const std::exception&) {
    // Unreadable or not YAML: LoadConfig reports that, in text.
  }
  const std::string prefix = "logging.format=";
  for (const auto& o : overrides) {
    if (o.compare(0, prefix.size(), prefix) == 0) format = o.substr(prefix.size());
  }
  return format == "json" ? "json" : "text";
}

}  // namespace nlpflow
