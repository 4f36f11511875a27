// CUDA device memory to a dma-buf descriptor (cuda_import.cc; only built
// with LANEFS_CUDA). 0 and *fd, or -errno and *why.
#pragma once

#include <cstddef>
#include <string>

namespace lanefs::direct {
int cuda_dmabuf(void* dev_ptr, size_t size, int* fd, std::string* why);
}
