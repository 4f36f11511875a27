// Writes the seed corpus for packet_decoder_fuzz: one valid packet per
// packet type (several payload sizes and fragment positions), plus a few
// near-misses (versions just outside the accepted range, trailing byte) that steer the fuzzer into the
// later validation steps. Usage: fuzz_seed_gen <dir>. Run at build time.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "proto/packet_mac.h"
#include "proto/wire.h"

namespace {

using lanefs::proto::PacketHeader;
using lanefs::proto::PktType;

std::vector<uint8_t> packet(PacketHeader h, size_t payload_len) {
  std::vector<uint8_t> pkt(lanefs::proto::kHeaderSize + payload_len);
  for (size_t i = 0; i < payload_len; ++i)
    pkt[lanefs::proto::kHeaderSize + i] = static_cast<uint8_t>(i * 7 + 1);
  h.payload_len = static_cast<uint32_t>(payload_len);
  lanefs::proto::encode_header(h, {pkt.data() + lanefs::proto::kHeaderSize, payload_len},
                               pkt.data());
  return pkt;
}

bool write(const std::filesystem::path& dir, const std::string& name,
           const std::vector<uint8_t>& bytes) {
  std::ofstream f(dir / name, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::error_code ec;
  // The directory is this program's: seeds of an earlier protocol version
  // must not stay behind in an existing build tree.
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "create_directories %s: %s\n", argv[1], ec.message().c_str());
    return 1;
  }
  bool ok = true;
  for (int t = 1; t <= 12; ++t) {
    PacketHeader h;
    h.type = static_cast<PktType>(t);
    h.session_id = 0x01020304u + t;
    h.request_id = 1000u + t;
    h.opcode = static_cast<uint16_t>(t);
    const size_t plen = (t % 3) * 24;
    h.pkt_count = 1;
    h.msg_len = static_cast<uint32_t>(plen);
    ok &= write(dir, "valid_type" + std::to_string(t), packet(h, plen));
  }
  // Middle fragment of a 3-packet request, ECN flag set, resent once.
  PacketHeader frag;
  frag.type = PktType::kRequest;
  frag.flags = lanefs::proto::kFlagEcn;
  frag.session_id = 7;
  frag.request_id = 77;
  frag.pkt_num = 1;
  frag.pkt_count = 3;
  frag.generation = 1;
  frag.msg_len = 300;
  frag.frag_offset = 100;
  ok &= write(dir, "valid_request_fragment", packet(frag, 100));
  // A response packet of a keyed session (MAC instead of CRC).
  {
    PacketHeader k = frag;
    k.type = PktType::kResponse;
    k.seq = 12345;
    k.payload_len = 100;
    std::vector<uint8_t> pkt(lanefs::proto::kHeaderSize + 100, 0x5a);
    lanefs::proto::SessionKey key;
    key.bytes.fill(0x42);
    lanefs::proto::SessionMac mac(key);
    mac.seal_header(k, {pkt.data() + lanefs::proto::kHeaderSize, 100}, {}, pkt.data());
    ok &= write(dir, "valid_keyed_response", pkt);
  }

  // Versions just outside [kMinVersion, kVersion].
  PacketHeader next;
  next.type = PktType::kConnect;
  next.version = lanefs::proto::kVersion + 1;
  ok &= write(dir, "nearmiss_next_version", packet(next, 8));
  PacketHeader old = next;
  old.version = lanefs::proto::kMinVersion - 1;
  ok &= write(dir, "nearmiss_old_version", packet(old, 8));
  auto trailing = packet(frag, 100);
  trailing.push_back(0);
  ok &= write(dir, "nearmiss_trailing_byte", trailing);
  if (!ok) {
    std::fprintf(stderr, "writing seeds to %s failed\n", argv[1]);
    return 1;
  }
  return 0;
}
