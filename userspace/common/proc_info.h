// Facts about this OS process and host for status listings: resident
// memory, uptime, host name. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace lanefs {

// Resident set size of this process in bytes (from /proc/self/statm).
uint64_t process_rss_bytes();
// Resident set size of another process (0 if it is gone).
uint64_t process_rss_bytes(int pid);
// Seconds since this process started (from the first call's clock basis:
// /proc/self/stat start time against the system boot time).
uint64_t process_uptime_s();
std::string host_name();

}  // namespace lanefs
