// Typed calls: encode a proto message, call, split the status, decode the
// result. Used by the CLI, the client core and backend-to-backend calls.
#pragma once

#include <span>

#include "proto/messages.h"
#include "rpc/rpc.h"

namespace lanefs::rpc {

// A message with no body.
struct Empty {
  void encode(Encoder&) const {}
  bool decode(Decoder&) { return true; }
};
// A body that is raw bytes (read data, readlink target, xattr value).
struct Bytes {
  Buffer data;
  void encode(Encoder& e) const { e.raw(data.data(), data.size()); }
  bool decode(Decoder& d) {
    auto r = d.rest();
    data.assign(r.begin(), r.end());
    return true;
  }
};
// A body that is one value of a plain type.
struct U8 {
  uint8_t v = 0;
  void encode(Encoder& e) const { e.u8(v); }
  bool decode(Decoder& d) { v = d.u8(); return d.ok(); }
};
struct I64 {
  int64_t v = 0;
  void encode(Encoder& e) const { e.i64(v); }
  bool decode(Decoder& d) { v = d.i64(); return d.ok(); }
};

inline Result<Buffer> call_raw(RpcClient& client, NetAddr to, proto::Op op, std::span<const uint8_t> request,
                               uint64_t timeout_ns) {
  return client.call(to, static_cast<uint16_t>(op), request, timeout_ns);
}

template <class Resp, class Req>
Result<Resp> call_typed(RpcClient& client, NetAddr to, proto::Op op, const Req& req,
                        uint64_t timeout_ns) {
  LANEFS_ASSIGN_OR_RETURN(Buffer raw, call_raw(client, to, op, proto::encode_msg(req), timeout_ns));
  LANEFS_ASSIGN_OR_RETURN(auto body, proto::parse_response(raw));
  return proto::decode_msg<Resp>(body);
}

// Decodes a completed call's response message as status + Resp.
template <class Resp>
Result<Resp> decode_response(const Result<Response>& r) {
  if (!r.ok()) return r.error();
  if (!r->in_sink || r->body.empty()) {
    LANEFS_ASSIGN_OR_RETURN(auto body, proto::parse_response(r->head));
    return proto::decode_msg<Resp>(body);
  }
  Buffer whole = r->to_buffer();
  LANEFS_ASSIGN_OR_RETURN(auto body, proto::parse_response(whole));
  return proto::decode_msg<Resp>(body);
}

}  // namespace lanefs::rpc
