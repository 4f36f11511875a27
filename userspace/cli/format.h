// Output helpers for the lanefs CLI: aligned tables and human units.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lanefs::cli {

// Prints rows under a header, each column as wide as its widest cell.
std::string render_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);
std::string human_bytes(uint64_t bytes);     // "1.23 GB" (decimal units, like WEKA)
std::string human_duration(uint64_t secs);   // "2d 3h", "1h 5m", "42s"
std::string join(const std::vector<std::string>& v, const std::string& sep);

}  // namespace lanefs::cli
