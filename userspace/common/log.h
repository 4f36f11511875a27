// Logging: spdlog. init_logging() sets the default logger once per process
// (stderr, or a file when given). Use LOG_INFO etc. (thin spdlog macros).
#pragma once

#include <spdlog/spdlog.h>

#include <string>

#include "common/result.h"

namespace lanefs {

// `file` empty: log to stderr. `level`: trace|debug|info|warn|error|off.
// `use_syslog`: also to syslog/journald when /dev/log exists. kInvalid,
// naming the level or the file and why, when either cannot be used (the
// logger is left as it was).
Status init_logging(const std::string& name, const std::string& file = {},
                    const std::string& level = "info", bool use_syslog = false);

}  // namespace lanefs

#define LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
