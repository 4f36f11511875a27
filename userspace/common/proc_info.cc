#include "common/proc_info.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

namespace lanefs {

uint64_t process_rss_bytes(int pid) {
  std::ifstream f("/proc/" + (pid == 0 ? std::string("self") : std::to_string(pid)) + "/statm");
  uint64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

uint64_t process_rss_bytes() { return process_rss_bytes(0); }

uint64_t process_uptime_s() {
  // Field 22 of /proc/self/stat is the start time in clock ticks after boot.
  std::ifstream f("/proc/self/stat");
  std::string line;
  std::getline(f, line);
  auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  uint64_t start_ticks = 0;
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22) start_ticks = std::stoull(field);
  timespec boot;
  clock_gettime(CLOCK_BOOTTIME, &boot);
  double since_boot = static_cast<double>(boot.tv_sec) + boot.tv_nsec / 1e9;
  double started = static_cast<double>(start_ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return since_boot > started ? static_cast<uint64_t>(since_boot - started) : 0;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace lanefs
