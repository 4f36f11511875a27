#include "common/crc32c.h"

#include <isa-l/crc.h>

#include <algorithm>

namespace lanefs {

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t len) noexcept {
  // ISA-L picks the fastest kernel for this CPU at run time (multi-stream
  // crc32 instructions / PCLMUL folding). Its iSCSI CRC takes and returns
  // the register without the initial/final inversion, hence the ~ on both
  // sides; its length is an int, hence the loop.
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
  crc = ~crc;
  while (len > 0) {
    int n = static_cast<int>(std::min<size_t>(len, size_t{1} << 30));
    crc = crc32_iscsi(p, n, crc);
    p += n;
    len -= static_cast<size_t>(n);
  }
  return ~crc;
}

}  // namespace lanefs
