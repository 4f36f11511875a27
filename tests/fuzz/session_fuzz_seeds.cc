#include "fuzz/session_fuzz_seeds.h"

#include <cstring>
#include <fstream>

#include "proto/messages.h"
#include "proto/session.h"

namespace lanefs::test {
namespace {

using namespace lanefs::proto;

template <class T>
void put(std::vector<uint8_t>* v, T x) {
  const auto* p = reinterpret_cast<const uint8_t*>(&x);
  v->insert(v->end(), p, p + sizeof x);
}

// Mode 0: one packet.
std::vector<uint8_t> packet(PktType type, uint16_t opcode, const std::vector<uint8_t>& payload,
                            uint16_t flags = 0) {
  std::vector<uint8_t> v{0};
  put<uint8_t>(&v, static_cast<uint8_t>(type));
  put<uint16_t>(&v, flags);
  put<uint32_t>(&v, 0x1234);        // session
  put<uint64_t>(&v, 77);            // request / nonce
  put<uint16_t>(&v, 0);             // pkt_num
  put<uint16_t>(&v, 1);             // pkt_count
  put<uint16_t>(&v, 0);             // generation
  put<uint16_t>(&v, opcode);
  put<uint32_t>(&v, 0);             // frag_offset
  put<uint32_t>(&v, 0);             // frag_len seen
  put<uint32_t>(&v, ~0u);           // last_off seen
  put<uint64_t>(&v, 5);             // seq
  put<uint16_t>(&v, 50);            // a bit to flip in a keyed packet: its byte
  put<uint8_t>(&v, 3);              // and the bit
  v.insert(v.end(), payload.begin(), payload.end());
  return v;
}

template <class T>
std::vector<uint8_t> request(Op op, const T& body) {
  return packet(PktType::kRequest, static_cast<uint16_t>(op), encode_msg(body));
}

}  // namespace

std::vector<std::pair<std::string, std::vector<uint8_t>>> session_fuzz_seeds() {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> out;
  ConnectBody c;
  c.slots = 32;
  c.name = "frontend:host";
  c.max_datagram = 1472;
  c.push = 16;
  c.client_id = 99;
  c.user = "alice";
  {
    std::vector<uint8_t> b;
    Encoder e(&b);
    c.encode(e);
    out.push_back({"connect_hello", packet(PktType::kConnect, 0, b)});
    c.cookie.assign(kCookieBytes, 7);
    c.proof.assign(32, 9);
    b.clear();
    Encoder e2(&b);
    c.encode(e2);
    out.push_back({"connect_proof", packet(PktType::kConnect, 0, b)});
  }
  CreateReq cr;
  cr.parent = 5;
  cr.name = "f";
  cr.mode = 0100644;
  out.push_back({"req_create", request(Op::kCreate, cr)});
  out.push_back({"req_lookup", request(Op::kLookup, NameAtReq{5, "name", {}})});
  out.push_back({"req_lookup_keyed", packet(PktType::kRequest, static_cast<uint16_t>(Op::kLookup),
                                            encode_msg(NameAtReq{5, "name", {}}), kFlagMac)});
  out.push_back({"req_getattr", request(Op::kGetattr, InoReq{5})});
  out.push_back({"req_read", request(Op::kRead, ReadReq{5, 4096, 4096})});
  out.push_back({"req_readdir", request(Op::kReaddir, ReaddirReq{5, 0, 64, true, {}})});
  out.push_back({"req_fs_delete", request(Op::kFsDelete, NameReq{"fs1"})});
  out.push_back({"req_user_add", request(Op::kUserAdd, UserRecord{"bob", Role::kClient, {"fs1"}, true, 3, 0})});
  ClusterMap m;
  m.members.push_back(Member{});
  m.users.push_back(UserRecord{"bob", Role::kReadonly, {}, false, 1, 0});
  SetMapReq sm{m, true, std::vector<uint8_t>(32, 1)};
  out.push_back({"req_set_map", request(Op::kSetMap, sm)});
  // Mode 1: 3000 bytes in three fragments, the last first, one twice.
  {
    std::vector<uint8_t> v{1};
    put<uint16_t>(&v, 2999);  // msg_len - 1
    put<uint8_t>(&v, 2);      // pkt_count - 1
    for (auto [num, off, len] : {std::tuple{2, 2048, 952}, {0, 0, 1024}, {0, 0, 1024}, {1, 1024, 1024}}) {
      put<uint8_t>(&v, static_cast<uint8_t>(num));
      put<uint16_t>(&v, static_cast<uint16_t>(off));
      put<uint16_t>(&v, static_cast<uint16_t>(len));
    }
    out.push_back({"fragments", v});
  }
  // Mode 2: responses.
  {
    std::vector<uint8_t> v{2, 0};
    auto r = ok_response(encode_msg(m));
    v.insert(v.end(), r.begin(), r.end());
    out.push_back({"resp_map", v});
    std::vector<uint8_t> t{2, 6};
    TokenResp tr;
    tr.user = "bob";
    auto rt = ok_response(encode_msg(tr));
    t.insert(t.end(), rt.begin(), rt.end());
    out.push_back({"resp_token", t});
    std::vector<uint8_t> e{2, 1};
    auto re = error_response(make_error(Errc::kPermission, "permission denied"));
    e.insert(e.end(), re.begin(), re.end());
    out.push_back({"resp_error", e});
  }
  // Mode 3: sequence numbers (near the top, far behind, the window's edge).
  {
    std::vector<uint8_t> v{3};
    for (uint16_t raw : {1, 2, 2, 1, 0x4001, 0x8000 | 9000, 3, 0xc000, 0xc001, 0x4000 | 8191, 5})
      put<uint16_t>(&v, raw);
    out.push_back({"replay_window", v});
  }
  return out;
}

}  // namespace lanefs::test
