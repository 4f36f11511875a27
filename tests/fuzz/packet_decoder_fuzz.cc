// libFuzzer target for the wire-protocol packet decoder.
//
// Any input must decode without crashing or reading out of bounds (ASan and
// UBSan watch that when built with clang). When an input decodes, re-encoding
// the decoded header and payload must reproduce the exact bytes, CRC included,
// and decode again to the same header; anything else aborts.
//
// Built two ways (tests/fuzz/CMakeLists.txt): with clang and
// -fsanitize=fuzzer as `packet_decoder_fuzz`, and with g++ into the unit test
// `packet_decoder_fuzz_replay`, which feeds the seed corpus through this same
// entry point.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "proto/wire.h"

namespace {

using lanefs::proto::DecodeError;
using lanefs::proto::PacketHeader;

bool same_header(const PacketHeader& a, const PacketHeader& b) {
  return a.magic == b.magic && a.version == b.version && a.type == b.type && a.flags == b.flags &&
         a.session_id == b.session_id && a.request_id == b.request_id && a.pkt_num == b.pkt_num &&
         a.pkt_count == b.pkt_count && a.generation == b.generation && a.opcode == b.opcode &&
         a.msg_len == b.msg_len && a.frag_offset == b.frag_offset &&
         a.payload_len == b.payload_len && a.seq == b.seq && a.crc == b.crc && a.tag == b.tag;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  PacketHeader h;
  std::span<const uint8_t> payload;
  const DecodeError r = lanefs::proto::decode_packet({data, size}, &h, &payload);
  if (static_cast<int>(r) >= static_cast<int>(DecodeError::kCount)) std::abort();
  if (r != DecodeError::kOk) return 0;

  if (payload.size() != h.payload_len || size != lanefs::proto::kHeaderSize + payload.size() ||
      (payload.size() && payload.data() != data + lanefs::proto::kHeaderSize))
    std::abort();
  std::vector<uint8_t> again(size);
  if (!payload.empty())
    std::memcpy(again.data() + lanefs::proto::kHeaderSize, payload.data(), payload.size());
  if (h.flags & lanefs::proto::kFlagMac) {
    // Keyed: its tag passes through untouched for the session to check.
    lanefs::proto::write_header_fields(h, again.data());
    std::memcpy(again.data() + lanefs::proto::kCheckOffset, h.tag.data(), h.tag.size());
  } else {
    lanefs::proto::encode_header(h, payload, again.data());
  }
  if (std::memcmp(again.data(), data, size) != 0) std::abort();  // the check or a field differs

  PacketHeader h2;
  std::span<const uint8_t> payload2;
  if (lanefs::proto::decode_packet(again, &h2, &payload2) != DecodeError::kOk) std::abort();
  if (!same_header(h, h2)) std::abort();
  return 0;
}
