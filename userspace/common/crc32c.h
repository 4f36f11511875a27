// CRC32C (Castagnoli), as used by iSCSI/ext4: hardware (SSE4.2) when the CPU
// has it, a table otherwise. Thread-safe, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lanefs {

// Continues a CRC: crc32c_extend(crc32c_extend(0, a), b) == crc32c(a ++ b).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t len) noexcept;
inline uint32_t crc32c(const void* data, size_t len) noexcept { return crc32c_extend(0, data, len); }
// True when the SSE4.2 instruction is used (for benchmarks and logs).
bool crc32c_hardware() noexcept;

}  // namespace lanefs
