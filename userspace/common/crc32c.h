// CRC32C (Castagnoli), as used by iSCSI/ext4, computed by ISA-L (libisal),
// which selects the fastest implementation for the CPU at run time.
// Thread-safe, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lanefs {

// Continues a CRC: crc32c_extend(crc32c_extend(0, a), b) == crc32c(a ++ b).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t len) noexcept;
inline uint32_t crc32c(const void* data, size_t len) noexcept { return crc32c_extend(0, data, len); }

}  // namespace lanefs
