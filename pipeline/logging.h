// Process-wide logging set-up: spdlog's default logger, on stderr.
//
//   text: "2026-12-04T19:56:19.123+00:00 info message": the local time with its
//         UTC offset, so that lines from machines in other zones compare.
//   json: one object per line, keys in this order:
//         {"time":"2026-12-04T19:56:19.123Z","level":"info","message":"...",
//          "logger":"nlpflow","thread":1234}
//         time in UTC, RFC 3339 with milliseconds; the message is escaped as
//         JSON (invalid UTF-8 replaced), so a log shipper needs no parser
//         rules.
//
// Every command sets up logging first (text, info) so that errors before the
// config is read go through the same logger, then again with the config's
// logging.* once it is loaded.
//
// Threads: for main(), before other threads log.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <spdlog/formatter.h>

namespace nlpflow {

struct LogOptions {
  std::string level = "info";  // trace | debug | info | warn | error | off
  std::string format = "text";  // text | json
};

void SetUpLogging(const LogOptions& options);

// The json formatter, exposed for tests.
std::unique_ptr<spdlog::formatter> MakeJsonLogFormatter();

// The logging.format a config file asks for, read before the whole config is
// loaded so that its load errors are logged in that format: the last
// "--set logging.format=..." if given, else the file's logging.format if the
// file is readable YAML, else "text".
std::string PeekLogFormat(const std::string& config_path, const std::vector<std::string>& overrides);

}  // namespace nlpflow
