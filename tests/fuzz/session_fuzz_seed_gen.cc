// Writes session_fuzz's seeds into the directory named by argv[1].
#include <filesystem>
#include <fstream>

#include "fuzz/session_fuzz_seeds.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  std::filesystem::create_directories(argv[1]);
  for (const auto& [name, bytes] : lanefs::test::session_fuzz_seeds()) {
    std::ofstream f(std::string(argv[1]) + "/" + name, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) return 1;
  }
  return 0;
}
