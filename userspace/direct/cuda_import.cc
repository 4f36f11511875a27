// CUDA device memory as a dma-buf (lanefs_buf_import_cuda), built when
// the toolkit's cuda.h is found (LANEFS_CUDA). The driver library is
// opened at run time, so liblanefs-direct needs no GPU driver to load.
#include <dlfcn.h>

#include <cerrno>
#include <string>

#include <cuda.h>

#include "direct/cuda_import.h"

namespace lanefs::direct {

int cuda_dmabuf(void* dev_ptr, size_t size, int* fd, std::string* why) {
  void* lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    *why = "the CUDA driver (libcuda.so.1) is not installed: no GPU driver on this machine";
    return -ENOTSUP;
  }
  using InitFn = CUresult (*)(unsigned);
  using HandleFn = CUresult (*)(void*, CUdeviceptr, size_t, CUmemRangeHandleType, unsigned long long);
  auto init = reinterpret_cast<InitFn>(::dlsym(lib, "cuInit"));
  auto handle = reinterpret_cast<HandleFn>(::dlsym(lib, "cuMemGetHandleForAddressRange"));
  if (init == nullptr || handle == nullptr) {
    *why = "the CUDA driver has no cuMemGetHandleForAddressRange (driver older than CUDA 11.7)";
    return -ENOTSUP;
  }
  if (CUresult rc = init(0); rc != CUDA_SUCCESS) {
    *why = "cuInit failed (" + std::to_string(static_cast<int>(rc)) + "): no usable GPU";
    return -ENOTSUP;
  }
  int out = -1;
  CUresult rc = handle(&out, reinterpret_cast<CUdeviceptr>(dev_ptr), size, CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0);
  if (rc != CUDA_SUCCESS) {
    *why = "cuMemGetHandleForAddressRange failed (" + std::to_string(static_cast<int>(rc)) +
           "): the range is not whole device allocations aligned to the GPU page, or the driver lacks dma-buf support";
    return rc == CUDA_ERROR_INVALID_VALUE ? -EINVAL : -ENOTSUP;
  }
  *fd = out;
  return 0;
}

}  // namespace lanefs::direct
