#include "common/log.h"

namespace lanefs {

void init_logging_sinks(const std::string& name, const std::string& file, const std::string& level,
                        bool use_syslog);

void init_logging(const std::string& name, const std::string& file, const std::string& level,
                  bool use_syslog) {
  init_logging_sinks(name, file, level, use_syslog);
}

}  // namespace lanefs
