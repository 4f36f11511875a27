"""lanefs_direct: Python binding of liblanefs-direct (include/lanefs/direct.h).

Reads and writes files of a lanefs mount through shared-memory rings to
lanefs-frontend, past FUSE and the page cache: the frontend places the data
in a registered buffer, which Python sees as a memoryview (or a numpy
array) without a copy.

    import os, lanefs_direct as ld
    fd = os.open("/mnt/fs1/shard-0001", os.O_RDONLY)
    with ld.Ring("/mnt/fs1", entries=32) as ring, ld.Buffer("/mnt/fs1", 8 << 20) as buf:
        n = ring.read(buf, 0, fd, 0, 8 << 20)     # bytes read into buf
        arr = buf.numpy()[:n]                      # zero-copy numpy view
        data = bytearray(1 << 20)
        ring.read_into(fd, 4096, data)             # one copy into your bytearray

Errors raise DirectError (an OSError: errno and the library's words).
Built on CFFI in ABI mode: no compiler needed. LANEFS_DIRECT_LIB names the
library file (default liblanefs-direct.so.1 on the loader's path).
"""
import os

from cffi import FFI

__all__ = ["Buffer", "Ring", "DirectError", "PATH_NAMES", "BOUNCE_REASONS"]

_ffi = FFI()
_ffi.cdef("""
typedef struct lanefs_buf lanefs_buf;
typedef struct lanefs_ring lanefs_ring;
struct lanefs_cqe { int64_t res; uint64_t user_data; uint32_t path; uint32_t reason; };
lanefs_buf* lanefs_buf_create(const char* mountpoint, size_t size);
lanefs_buf* lanefs_buf_import_dmabuf(int dmabuf_fd, uint64_t offset, size_t size);
void* lanefs_buf_addr(const lanefs_buf* buf);
size_t lanefs_buf_size(const lanefs_buf* buf);
int lanefs_buf_destroy(lanefs_buf* buf);
lanefs_ring* lanefs_ring_create(const char* mountpoint, unsigned entries);
int lanefs_ring_destroy(lanefs_ring* ring);
int lanefs_prep_read(lanefs_ring* ring, lanefs_buf* buf, size_t off_in_buf, int fd, uint64_t file_off,
                     size_t len, uint64_t user_data);
int lanefs_prep_write(lanefs_ring* ring, lanefs_buf* buf, size_t off_in_buf, int fd, uint64_t file_off,
                      size_t len, uint64_t user_data);
int lanefs_submit(lanefs_ring* ring);
int lanefs_wait(lanefs_ring* ring, struct lanefs_cqe* cqes, unsigned max, unsigned min, int timeout_ms);
int lanefs_fd_forget(int fd);
const char* lanefs_direct_error(void);
""")
_lib = _ffi.dlopen(os.environ.get("LANEFS_DIRECT_LIB", "liblanefs-direct.so.1"))

PATH_NAMES = {0: "host", 1: "rdma", 2: "gpudirect", 3: "bounced"}
BOUNCE_REASONS = {0: None, 1: "not_rdma", 2: "encrypted", 3: "unaligned", 4: "no_dmabuf_support",
                  5: "device_unregistered"}


class DirectError(OSError):
    pass


def _error(code, what):
    words = _ffi.string(_lib.lanefs_direct_error()).decode(errors="replace")
    return DirectError(code, f"{what}: {words or os.strerror(code)}")


def _check(rc, what):
    if rc < 0:
        raise _error(-rc, what)
    return rc


class Buffer:
    """Host memory shared with lanefs-frontend (a memfd), `size` bytes."""

    def __init__(self, mountpoint, size):
        self._b = _lib.lanefs_buf_create(os.fsencode(mountpoint), size)
        if self._b == _ffi.NULL:
            raise _error(_ffi.errno, "lanefs_buf_create")
        self.size = _lib.lanefs_buf_size(self._b)

    @classmethod
    def import_dmabuf(cls, dmabuf_fd, offset, size):
        """Device memory: `size` bytes at `offset` of a dma-buf (GPUDirect
        where the lane allows, else bounced; see lanefs_buf_import_dmabuf)."""
        self = cls.__new__(cls)
        self._b = _lib.lanefs_buf_import_dmabuf(dmabuf_fd, offset, size)
        if self._b == _ffi.NULL:
            raise _error(_ffi.errno, "lanefs_buf_import_dmabuf")
        self.size = _lib.lanefs_buf_size(self._b)
        return self

    def view(self):
        """A writable memoryview of the whole buffer (no copy); device
        memory the process cannot map raises DirectError (ENOTSUP)."""
        addr = _lib.lanefs_buf_addr(self._b)
        if addr == _ffi.NULL:
            raise DirectError(95, "this device buffer is not mapped in the process")
        return memoryview(_ffi.buffer(addr, self.size))

    def numpy(self, dtype="uint8"):
        """The buffer as a numpy array (no copy); needs numpy."""
        import numpy
        return numpy.frombuffer(self.view(), dtype=dtype)

    def close(self):
        if self._b is not None:
            _check(_lib.lanefs_buf_destroy(self._b), "lanefs_buf_destroy")
            self._b = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Ring:
    """A submission/completion ring to lanefs-frontend for one mount."""

    def __init__(self, mountpoint, entries=64):
        self._mount = os.fsencode(mountpoint)
        self._r = _lib.lanefs_ring_create(self._mount, entries)
        if self._r == _ffi.NULL:
            raise _error(_ffi.errno, "lanefs_ring_create")
        self._cqes = _ffi.new("struct lanefs_cqe[]", 256)
        self._scratch = None

    def prep_read(self, buf, off_in_buf, fd, file_off, length, user_data=0):
        _check(_lib.lanefs_prep_read(self._r, buf._b, off_in_buf, fd, file_off, length, user_data), "lanefs_prep_read")

    def prep_write(self, buf, off_in_buf, fd, file_off, length, user_data=0):
        _check(_lib.lanefs_prep_write(self._r, buf._b, off_in_buf, fd, file_off, length, user_data), "lanefs_prep_write")

    def submit(self):
        return _check(_lib.lanefs_submit(self._r), "lanefs_submit")

    def wait(self, min_complete=1, timeout_ms=-1):
        """Completions as (res, user_data, path, reason) tuples; res < 0 is -errno."""
        n = _check(_lib.lanefs_wait(self._r, self._cqes, 256, min_complete, timeout_ms), "lanefs_wait")
        return [(c.res, c.user_data, PATH_NAMES.get(c.path, c.path), BOUNCE_REASONS.get(c.reason, c.reason))
                for c in (self._cqes[i] for i in range(n))]

    def _one(self, what):
        self.submit()
        res, _, _, _ = self.wait(1)[0]
        if res < 0:
            raise DirectError(-res, f"{what}: {os.strerror(-res)}")
        return res

    def read(self, buf, off_in_buf, fd, file_off, length):
        """Reads into `buf` and returns the bytes read (short at end of file)."""
        self.prep_read(buf, off_in_buf, fd, file_off, length)
        return self._one("read")

    def write(self, buf, off_in_buf, fd, file_off, length):
        self.prep_write(buf, off_in_buf, fd, file_off, length)
        return self._one("write")

    def read_into(self, fd, file_off, target):
        """Reads len(target) bytes into a bytearray or writable numpy array
        (one copy, from the ring's scratch buffer); returns the bytes read."""
        out = memoryview(target).cast("B")
        if self._scratch is None or self._scratch.size < len(out):
            if self._scratch is not None:
                self._scratch.close()
            self._scratch = Buffer(self._mount, len(out))
        n = self.read(self._scratch, 0, fd, file_off, len(out))
        out[:n] = self._scratch.view()[:n]
        return n

    def close(self):
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None
        if self._r is not None:
            _check(_lib.lanefs_ring_destroy(self._r), "lanefs_ring_destroy")
            self._r = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
