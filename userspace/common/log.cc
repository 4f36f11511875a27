#include "common/log.h"

namespace lanefs {

// log_sinks.cc (kept apart: <syslog.h> defines LOG_INFO).
std::string init_logging_sinks(const std::string& name, const std::string& file, spdlog::level::level_enum level,
                               bool use_syslog);

Status init_logging(const std::string& name, const std::string& file, const std::string& level, bool use_syslog) {
  static constexpr const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
  bool known = false;
  for (const char* l : kLevels) known = known || level == l;
  if (!known) return make_error(Errc::kInvalid, "log level '" + level + "': use trace, debug, info, warn, error or off");
  std::string err = init_logging_sinks(name, file, spdlog::level::from_str(level), use_syslog);
  if (!err.empty()) return make_error(Errc::kInvalid, "log file " + file + ": " + err);
  return ok_status();
}

}  // namespace lanefs
