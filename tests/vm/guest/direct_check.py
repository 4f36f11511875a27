"""direct_check.py MOUNT SRC (guest, run by direct_rdma.sh): the direct API
on an RDMA mount. Prints one JSON line of what each IO took.
  1. host buffer: 1 MiB reads and writes over RDMA, in place (path "rdma"),
     data verified against SRC (a copy of the file's first bytes);
  2. device memory: a dma-buf made by udmabuf from a memfd stands in for
     GPU memory; a 1 MiB read lands in it (GPUDirect or bounced, with the
     reason), verified through the memfd."""
import fcntl
import json
import mmap
import os
import struct
import sys

import lanefs_direct as ld

mnt, src = sys.argv[1], sys.argv[2]
want = open(src, "rb").read()
MiB = 1 << 20
out = {}
fd = os.open(mnt + "/direct.bin", os.O_RDWR)
with ld.Ring(mnt, entries=16) as ring, ld.Buffer(mnt, 8 * MiB) as buf:
    for i in range(4):
        ring.prep_read(buf, i * MiB, fd, i * MiB, MiB, i)
    ring.submit()
    got = []
    while len(got) < 4:
        got += ring.wait(1)
    out["host_read_paths"] = sorted({p for _, _, p, _ in got})
    assert all(r == MiB for r, _, _, _ in got), got
    assert bytes(buf.view()[:4 * MiB]) == want[:4 * MiB], "host-buffer reads differ"
    buf.view()[4 * MiB:5 * MiB] = want[7 * MiB:8 * MiB]
    ring.prep_write(buf, 4 * MiB, fd, 5 * MiB, MiB, 9)
    ring.submit()
    (res, _, path, _), = ring.wait(1)
    assert res == MiB, res
    out["host_write_path"] = path
    assert os.pread(fd, MiB, 5 * MiB) == want[7 * MiB:8 * MiB], "the direct write differs"

    # Device memory: udmabuf over a sealed memfd.
    try:
        ud = os.open("/dev/udmabuf", os.O_RDWR)
    except OSError as e:
        out["udmabuf"] = f"unavailable: {e}"
    else:
        mfd = os.memfd_create("gpu-stand-in", os.MFD_ALLOW_SEALING)
        os.ftruncate(mfd, 4 * MiB)
        fcntl.fcntl(mfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
        UDMABUF_CREATE = 0x40187542  # _IOW('u', 0x42, struct udmabuf_create)
        # A mutable argument with mutate_flag: the call returns the ioctl's
        # value (the new dma-buf's descriptor).
        dfd = fcntl.ioctl(ud, UDMABUF_CREATE, bytearray(struct.pack("IIQQ", mfd, 0x01, 0, 4 * MiB)), True)
        dev = ld.Buffer.import_dmabuf(dfd, 0, 4 * MiB)
        ring.prep_read(dev, MiB, fd, 2 * MiB, MiB, 7)
        ring.submit()
        (res, _, path, reason), = ring.wait(1)
        assert res == MiB, res
        out["device_read_path"] = path
        out["device_read_reason"] = reason
        view = mmap.mmap(mfd, 4 * MiB)
        assert view[MiB:2 * MiB] == want[2 * MiB:3 * MiB], "the device-memory read differs"
        # Unaligned (not 4 KiB): never GPUDirect.
        ring.prep_read(dev, 100, fd, 2 * MiB, MiB, 8)
        ring.submit()
        (res, _, path, reason), = ring.wait(1)
        assert res == MiB and view[100:100 + MiB] == want[2 * MiB:3 * MiB]
        out["device_unaligned"] = [path, reason]
        view.close()
        dev.close()
os.close(fd)
print(json.dumps(out))
