// Message bodies of kScrub (proto/messages.h lists the op; their encode and
// decode live in messages.cc with the others).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/codec.h"

namespace lanefs::proto {

// kScrub: every block of the filesystem's chunks held by the backend asked
// is checked against its CRC32C (docs/security.md, "Data at rest").
struct ScrubReq {
  uint32_t fs_id = 0;
  bool repair = false;
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};
struct ScrubDamage {
  uint64_t ino = 0, chunk_index = 0;
  uint32_t block = 0;  // 4 KiB block within the chunk
  std::string path;    // the chunk file on that backend
};
struct ScrubResp {
  uint64_t inodes = 0, chunks = 0, blocks = 0;
  uint64_t damaged = 0;               // all of them; `listed` names the first 1000
  uint64_t repaired = 0;
  uint64_t orphans = 0;               // inodes with chunks here but no inode record (being deleted)
  std::vector<ScrubDamage> listed;
  std::string repair_note;            // why damaged blocks were not repaired
  void encode(Encoder& e) const;
  bool decode(Decoder& d);
};

}  // namespace lanefs::proto
