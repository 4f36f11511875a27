// Seed inputs for session_fuzz (session_fuzz.cc documents their layout):
// valid connects, one request per opcode with a valid body, fragment
// sequences, responses. Used by session_fuzz_replay and written to a
// directory for the libFuzzer run by session_fuzz_seed_gen.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lanefs::test {

// (name, bytes)
std::vector<std::pair<std::string, std::vector<uint8_t>>> session_fuzz_seeds();

}  // namespace lanefs::test
