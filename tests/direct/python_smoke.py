"""The Python binding against a real mount (run by direct_api_test):
python_smoke.py MOUNT FILE SIZE. The file holds bytes i % 251."""
import os
import sys

import lanefs_direct as ld

mnt, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
expect = bytes(i % 251 for i in range(size))
fd = os.open(path, os.O_RDWR)
with ld.Ring(mnt, entries=8) as ring, ld.Buffer(mnt, size) as buf:
    n = ring.read(buf, 0, fd, 0, size)
    assert n == size, n
    assert bytes(buf.view()[:n]) == expect, "zero-copy view differs"
    target = bytearray(65536)
    assert ring.read_into(fd, 4096, target) == 65536
    assert bytes(target) == expect[4096:4096 + 65536], "bytearray read differs"
    buf.view()[:4] = b"LFDS"
    assert ring.write(buf, 0, fd, 100, 4) == 4
    assert os.pread(fd, 4, 100) == b"LFDS", "the mount does not see the write"
    try:
        ring.read(buf, size, fd, 0, 1)
        raise SystemExit("reading past the buffer did not fail")
    except ld.DirectError as e:
        assert e.errno == 34 and "past the buffer" in str(e), e  # ERANGE
    try:
        import numpy
        arr = buf.numpy()
        assert arr[4] == expect[4]
        print("numpy view ok")
    except ImportError:
        print("numpy not installed: numpy view not checked")
os.close(fd)
print("python binding ok")
