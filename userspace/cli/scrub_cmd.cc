// lanefs fs scrub NAME [--repair]: every block of the filesystem's chunks,
// on every backend, checked against its CRC32C.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"

namespace lanefs::cli {

int cmd_fs_scrub(const Globals& g, const std::string& name, bool repair) {
  auto c = connect(g);
  if (!c.ok()) return fail(c.error());
  auto fs = (*c)->fs_get(name);
  if (!fs.ok()) return fail(fs.error());
  const uint32_t chunk_size = (*c)->map().chunk_size;
  // Reading a backend's whole share of the filesystem takes a while: at
  // least an hour per backend before giving up on it.
  const auto timeout_ns = static_cast<uint64_t>(std::max(g.timeout_s, 3600.0) * 1e9);
  auto all = (*c)->scrub_all(fs->id, repair, timeout_ns);
  uint64_t inodes = 0, chunks = 0, blocks = 0, damaged = 0, repaired = 0, failed = 0;
  nlohmann::json backends = nlohmann::json::array();
  for (auto& [mem, r] : all) {
    if (r.code() == Errc::kPermission) return fail(r.error());  // the token's role
    nlohmann::json b = {{"backend", mem.name}, {"addr", mem.addr.to_string()}};
    if (!r.ok()) {
      ++failed;
      b["error"] = r.error().to_string();
      if (!g.json)
        std::fprintf(stderr, "lanefs: backend %s (%s) not scrubbed: %s\n", mem.name.c_str(),
                     mem.addr.to_string().c_str(), r.error().to_string().c_str());
      backends.push_back(b);
      continue;
    }
    inodes += r->inodes, chunks += r->chunks, blocks += r->blocks, damaged += r->damaged, repaired += r->repaired;
    b.update({{"inodes", r->inodes}, {"chunks", r->chunks}, {"blocks", r->blocks}, {"damaged", r->damaged},
              {"repaired", r->repaired}, {"orphan_inodes", r->orphans}, {"damaged_blocks", nlohmann::json::array()}});
    if (!r->repair_note.empty()) b["repair"] = r->repair_note;
    for (const auto& d : r->listed) {
      uint64_t offset = d.chunk_index * chunk_size + uint64_t{d.block} * 4096;
      b["damaged_blocks"].push_back({{"ino", d.ino}, {"chunk", d.chunk_index}, {"block", d.block},
                                     {"file_offset", offset}, {"path", d.path}});
      if (!g.json)
        std::printf("damaged: inode %#llx bytes %llu..%llu (chunk %llu block %u) on %s: %s\n",
                    (unsigned long long)d.ino, (unsigned long long)offset, (unsigned long long)(offset + 4095),
                    (unsigned long long)d.chunk_index, d.block, mem.name.c_str(), d.path.c_str());
    }
    if (r->damaged > r->listed.size() && !g.json)
      std::printf("damaged: %llu more on %s (not listed)\n", (unsigned long long)(r->damaged - r->listed.size()),
                  mem.name.c_str());
    if (!r->repair_note.empty() && !g.json) std::printf("%s: %s\n", mem.name.c_str(), r->repair_note.c_str());
    backends.push_back(b);
  }
  if (g.json) {
    std::cout << nlohmann::json{{"filesystem", name}, {"inodes", inodes}, {"chunks", chunks}, {"blocks", blocks},
                                {"damaged", damaged}, {"repaired", repaired}, {"backends_failed", failed},
                                {"backends", backends}}
                     .dump(2)
              << "\n";
  } else {
    std::printf("scrub of filesystem '%s': %zu backend(s)%s, %llu inode(s), %llu chunk(s), %llu block(s) checked, "
                "%llu damaged, %llu repaired\n",
                name.c_str(), all.size(), failed ? (" (" + std::to_string(failed) + " not answering)").c_str() : "",
                (unsigned long long)inodes, (unsigned long long)chunks, (unsigned long long)blocks,
                (unsigned long long)damaged, (unsigned long long)repaired);
  }
  if (damaged > repaired)
    return exit_code(Errc::kCorrupt);
  if (failed) return exit_code(Errc::kUnreachable);
  return 0;
}

}  // namespace lanefs::cli
