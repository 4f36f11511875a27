// libFuzzer target for the session layer and the message bodies.
//
// The first input byte picks what the rest is; the harness recomputes the
// CRC of every packet it builds, so inputs get past it to the code behind:
//   0  one packet (header fields and payload from the input, CRC fixed up):
//      kConnect bodies must decode to what re-encodes to themselves, and a
//      random cookie never passes; request fragments are checked against
//      the placement rule; a single-fragment request's body is decoded as
//      its opcode's message and must re-encode canonically.
//   1  one message in fragments, in an input-chosen order, through the
//      placement rule as the server applies it: whatever is accepted, when
//      every fragment has arrived each byte was written exactly once.
//   2  a response body: parse_response, then the body as each reply type.
//   3  sequence numbers into a ReplayWindow, checked against a model that
//      remembers every number: each one is taken at most once, and within
//      the window exactly once.
// In 0, a header with kFlagMac is sealed under a fixed session key instead
// (the MAC the harness owes): it must verify, and fail with any bit of the
// tag or the packet flipped.
// Anything else aborts (ASan/UBSan watch memory when built with clang).
//
// Built like packet_decoder_fuzz (tests/fuzz/CMakeLists.txt): with clang as
// `session_fuzz` (run for a bounded time by ctest) and with g++ into the
// unit test `session_fuzz_replay`, which feeds it its seeds.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <span>
#include <vector>

#include "proto/messages.h"
#include "proto/packet_mac.h"
#include "proto/session.h"
#include "proto/wire.h"

namespace {

using namespace lanefs;
using namespace lanefs::proto;

// Reads fields from the fuzz input (zeros past its end).
struct Input {
  std::span<const uint8_t> in;
  size_t pos = 0;
  template <class T>
  T take() {
    T v{};
    size_t n = std::min(sizeof v, in.size() - std::min(pos, in.size()));
    if (n) std::memcpy(&v, in.data() + pos, n);
    pos += sizeof v;
    return v;
  }
  std::span<const uint8_t> rest() { return pos < in.size() ? in.subspan(pos) : std::span<const uint8_t>{}; }
};

template <class T>
void roundtrip(std::span<const uint8_t> body) {
  auto a = decode_msg<T>(body);
  if (!a.ok()) return;
  std::vector<uint8_t> e1 = encode_msg(*a);
  auto b = decode_msg<T>(e1);
  if (!b.ok()) std::abort();  // what we encode, we decode
  if (encode_msg(*b) != e1) std::abort();  // and it is canonical
}

void request_body(Op op, std::span<const uint8_t> b) {
  switch (op) {
    case Op::kSetMap: return roundtrip<SetMapReq>(b);
    case Op::kClusterCreate: return roundtrip<ClusterCreateReq>(b);
    case Op::kFsCreate: return roundtrip<FsCreateReq>(b);
    case Op::kFsDelete:
    case Op::kUserDelete:
    case Op::kUserToken: return roundtrip<NameReq>(b);
    case Op::kRdmaConfig: return roundtrip<RdmaConfigReq>(b);
    case Op::kContainerNet: return roundtrip<ContainerNetReq>(b);
    case Op::kLocate: return roundtrip<LocateReq>(b);
    case Op::kFsPurge:
    case Op::kStatfs: return roundtrip<FsIdReq>(b);
    case Op::kClientHeartbeat:
    case Op::kClientLeave: return roundtrip<ClientInfo>(b);
    case Op::kLookup:
    case Op::kUnlink:
    case Op::kRmdir: return roundtrip<NameAtReq>(b);
    case Op::kGetattr:
    case Op::kReadlink:
    case Op::kFlush:
    case Op::kDirEmpty: return roundtrip<InoReq>(b);
    case Op::kSetattr: return roundtrip<SetattrReq>(b);
    case Op::kCreate: return roundtrip<CreateReq>(b);
    case Op::kLink: return roundtrip<LinkReq>(b);
    case Op::kRename: return roundtrip<RenameReq>(b);
    case Op::kReaddir: return roundtrip<ReaddirReq>(b);
    case Op::kSetxattr: return roundtrip<XattrSetReq>(b);
    case Op::kGetxattr:
    case Op::kListxattr:
    case Op::kRemovexattr: return roundtrip<XattrReq>(b);
    case Op::kCommitWrite: return roundtrip<CommitWriteReq>(b);
    case Op::kOpenHandle: return roundtrip<HandleReq>(b);
    case Op::kHandleRenew: return roundtrip<HandleRenewReq>(b);
    case Op::kWrite: return roundtrip<WriteReq>(b);
    case Op::kRead: return roundtrip<ReadReq>(b);
    case Op::kChunkTruncate: return roundtrip<ChunkTruncateReq>(b);
    case Op::kPunch: return roundtrip<PunchReq>(b);
    case Op::kInodePut: return roundtrip<InodePutReq>(b);
    case Op::kInodeNlink: return roundtrip<InodeNlinkReq>(b);
    case Op::kInodeSetParent: return roundtrip<InodeSetParentReq>(b);
    case Op::kChunkRemoveAll: return roundtrip<InoList>(b);
    case Op::kUserAdd: return roundtrip<UserRecord>(b);
    case Op::kScrub: return roundtrip<ScrubReq>(b);
    default: return;
  }
}

void one_packet(Input& in) {
  PacketHeader h;
  h.type = static_cast<PktType>(in.take<uint8_t>() % 14);
  h.flags = in.take<uint16_t>();
  h.session_id = in.take<uint32_t>();
  h.request_id = in.take<uint64_t>();
  h.pkt_num = in.take<uint16_t>();
  h.pkt_count = in.take<uint16_t>();
  h.generation = in.take<uint16_t>();
  h.opcode = in.take<uint16_t>();
  h.frag_offset = in.take<uint32_t>();
  const uint32_t frag_len = in.take<uint32_t>() & 0xffff, last_off = in.take<uint32_t>();
  h.seq = in.take<uint64_t>();
  const uint16_t flip_at = in.take<uint16_t>();
  const uint8_t flip_bit = in.take<uint8_t>();
  std::span<const uint8_t> payload = in.rest();
  h.payload_len = static_cast<uint32_t>(payload.size());
  h.msg_len = h.pkt_count <= 1 ? h.payload_len : h.frag_offset + h.payload_len + (h.flags & 0xff);
  std::vector<uint8_t> pkt(kHeaderSize + payload.size());
  if (!payload.empty()) std::memcpy(pkt.data() + kHeaderSize, payload.data(), payload.size());
  static SessionMac mac([] {
    SessionKey k;
    k.bytes.fill(0x5c);
    return k;
  }());
  const bool keyed = (h.flags & kFlagMac) != 0;
  if (keyed) mac.seal_header(h, payload, {}, pkt.data());  // the MAC the harness owes
  else encode_header(h, payload, pkt.data());                   // or the CRC
  PacketHeader d;
  std::span<const uint8_t> body;
  DecodeError r = decode_packet(pkt, &d, &body);
  if (r == DecodeError::kBadCrc || r == DecodeError::kTruncated || r == DecodeError::kBadMagic) std::abort();
  if (r != DecodeError::kOk) return;
  if (keyed) {
    if (!mac.verify(d, body)) std::abort();
    // One flipped bit anywhere (header, tag, payload) fails it.
    const size_t at = flip_at % pkt.size();
    pkt[at] ^= static_cast<uint8_t>(1u << (flip_bit % 8));
    PacketHeader f;
    std::span<const uint8_t> fbody;
    if (decode_packet(pkt, &f, &fbody) == DecodeError::kOk && (f.flags & kFlagMac) && mac.verify(f, fbody))
      std::abort();
    pkt[at] = 0;  // (the packet is not used again)
  }
  switch (d.type) {
    case PktType::kConnect: {
      ConnectBody c;
      Decoder dec(body);
      if (!c.decode(dec)) return;
      std::vector<uint8_t> e1;
      Encoder enc(&e1);
      c.encode(enc);
      ConnectBody again;
      Decoder dec2(e1);
      if (!again.decode(dec2)) std::abort();
      std::vector<uint8_t> e2;
      Encoder enc2(&e2);
      again.encode(enc2);
      if (e1 != e2) std::abort();
      // A cookie the server never made does not pass; the one it made does.
      static const AuthKey key{1, 2, 3};
      const NetAddr src{0x7f000001u, static_cast<uint16_t>(d.session_id)};
      uint8_t made[kCookieBytes];
      make_cookie(key, src, d.request_id, 1000, made);
      bool same = c.cookie.size() == kCookieBytes && std::memcmp(c.cookie.data(), made, kCookieBytes) == 0;
      if (cookie_valid(key, src, d.request_id, c.cookie, 1000) != same) std::abort();
      if (!cookie_valid(key, src, d.request_id, made, 1000 + kCookieLifeS)) std::abort();
      if (cookie_valid(key, src, d.request_id, made, 1001 + kCookieLifeS)) std::abort();  // expired
      if (cookie_valid(key, src, d.request_id ^ 1, made, 1000)) std::abort();            // another nonce
      return;
    }
    case PktType::kRequest: {
      bool fits = fragment_fits(d, body.size(), frag_len, last_off);
      if (fits && uint64_t{d.frag_offset} + body.size() > d.msg_len) std::abort();
      if (fits && d.pkt_count == 1) request_body(static_cast<Op>(d.opcode), body);
      return;
    }
    default:
      return;
  }
}

// Fragments of one message, delivered in an input-chosen order with
// duplicates and strays, applied as ServerLoop::on_request does.
void reassembly(Input& in) {
  PacketHeader h;
  h.type = PktType::kRequest;
  h.msg_len = (in.take<uint16_t>() % 8192) + 1;
  h.pkt_count = static_cast<uint16_t>((in.take<uint8_t>() % 16) + 1);
  std::vector<uint8_t> written(h.msg_len, 0);
  std::vector<bool> got(h.pkt_count, false);
  uint32_t frag_len = 0, last_off = ~0u, got_count = 0;
  for (int step = 0; step < 64 && in.pos < in.in.size(); ++step) {
    h.pkt_num = static_cast<uint16_t>(in.take<uint8_t>() % (h.pkt_count + 1));
    h.frag_offset = in.take<uint16_t>() % (h.msg_len + 16);
    const uint32_t len = in.take<uint16_t>() % (h.msg_len + 16);
    if (h.pkt_num >= h.pkt_count || uint64_t{h.frag_offset} + len > h.msg_len) continue;  // decode_packet's job
    if (!fragment_fits(h, len, frag_len, last_off)) continue;
    if (got[h.pkt_num]) continue;  // a duplicate: answered, not applied
    got[h.pkt_num] = true;
    ++got_count;
    for (uint32_t i = 0; i < len; ++i) ++written[h.frag_offset + i];
    if (h.pkt_num + 1 == h.pkt_count) last_off = h.frag_offset;
    else frag_len = len;
  }
  if (got_count == h.pkt_count)
    for (uint8_t w : written)
      if (w != 1) std::abort();  // a byte never written, or written twice
}

void replay_window(Input& in) {
  ReplayWindow w;
  std::set<uint64_t> seen;
  uint64_t top = 0;
  for (int step = 0; step < 256 && in.pos < in.in.size(); ++step) {
    // Mostly near the top, sometimes far ahead or far behind.
    const uint16_t raw = in.take<uint16_t>();
    uint64_t seq;
    switch (raw >> 14) {
      case 0: seq = top + (raw & 0xff); break;
      case 1: seq = top > (raw & 0x3fff) ? top - (raw & 0x3fff) : 0; break;
      case 2: seq = top + (raw & 0x3fff); break;
      default: seq = top > ReplayWindow::kWindow ? top - ReplayWindow::kWindow + (raw & 0x3) : raw & 0x3; break;
    }
    const bool took = w.accept(seq);
    const bool fresh = seq != 0 && !seen.count(seq);
    const bool in_window = seq > top || top - seq < ReplayWindow::kWindow;
    if (took != (fresh && in_window)) std::abort();
    if (took) {
      seen.insert(seq);
      top = std::max(top, seq);
    }
  }
}

void response(Input& in) {
  const uint8_t kind = in.take<uint8_t>();
  std::span<const uint8_t> raw = in.rest();
  auto body = parse_response(raw);
  if (!body.ok()) return;
  switch (kind % 11) {
    case 0: return roundtrip<ClusterMap>(*body);
    case 1: return roundtrip<InodeAttr>(*body);
    case 2: return roundtrip<ReaddirResp>(*body);
    case 3: return roundtrip<WriteResp>(*body);
    case 4: return roundtrip<ProcessList>(*body);
    case 5: return roundtrip<BackendStatus>(*body);
    case 6: return roundtrip<TokenResp>(*body);
    case 7: return roundtrip<UserList>(*body);
    case 8: return roundtrip<EntryResp>(*body);
    case 9: return roundtrip<ScrubResp>(*body);
    default: return roundtrip<LocateResp>(*body);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Input in{{data + 1, size - 1}};
  switch (data[0] % 4) {
    case 0: one_packet(in); break;
    case 1: reassembly(in); break;
    case 2: response(in); break;
    default: replay_window(in); break;
  }
  return 0;
}
