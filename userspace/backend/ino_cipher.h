// Inode numbers a client cannot guess (issue 16; docs/security.md, "Inode
// numbers"). A shard hands out inode numbers from a counter (MetaStore),
// and the number a client sees is not the counter but a keyed permutation
// of it: the low 48 bits of an inode number are 2^47 | P(counter), P a
// permutation of [0, 2^47) under a random key the shard keeps in its
// metadata store. Distinct counters give distinct numbers (nothing is
// ever reused), and without the key the next or a neighbouring number is
// a 1 in ~2^47 guess: a session can name only inodes whose numbers it was
// told (lookup, readdir, create), never one it counted to.
//
// P: a 10-round balanced Feistel network on 48 bits (two 24-bit halves;
// round function AES-128 under the key, OpenSSL), restricted to 47 bits
// by cycle walking (re-apply until the value is below 2^47; ~2 passes).
// Numbers below 2^47 were handed out unpermuted by stores made before
// this (their counter values are below the permuted range's; a store
// keeps its counter, so old and new numbers never meet).
#pragma once

#include <array>
#include <cstdint>

#include "common/result.h"

namespace lanefs::backend {

class InoCipher {
 public:
  static constexpr uint64_t kPermutedBit = uint64_t{1} << 47;
  static constexpr uint64_t kDomain = kPermutedBit;  // P permutes [0, kDomain)
  using Key = std::array<uint8_t, 16>;

  explicit InoCipher(const Key& key) : key_(key) {}
  // The low 48 bits of the inode number for counter value `seq` (< kDomain).
  Result<uint64_t> number(uint64_t seq) const;
  // The counter value a number from number() came from (for rebuilding a
  // lost counter); a number below kPermutedBit is its own counter value.
  Result<uint64_t> counter(uint64_t low48) const;

 private:
  Result<uint64_t> feistel(uint64_t v, bool inverse) const;
  Key key_;
};

}  // namespace lanefs::backend
