// Sink construction lives apart from log.h: <syslog.h> defines LOG_INFO and
// friends, which would collide with the project's logging macros.
#include <spdlog/spdlog.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace lanefs {

// Returns why the sinks could not be made (empty: done).
std::string init_logging_sinks(const std::string& name, const std::string& file, spdlog::level::level_enum level,
                               bool use_syslog) {
  std::vector<spdlog::sink_ptr> sinks;
  if (!file.empty()) {
    auto slash = file.rfind('/');
    if (slash != std::string::npos && slash > 0) mkdir(file.substr(0, slash).c_str(), 0755);
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(file));
    } catch (const spdlog::spdlog_ex& e) {
      return e.what();
    }
  } else {
    sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  }
  // syslog/journald only when the host has a log socket.
  if (use_syslog && access("/dev/log", W_OK) == 0)
    sinks.push_back(std::make_shared<spdlog::sinks::syslog_sink_mt>(name, LOG_PID, LOG_DAEMON, false));
  auto logger = std::make_shared<spdlog::logger>(name, sinks.begin(), sinks.end());
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %n[%P] %l: %v");
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return {};
}

}  // namespace lanefs
