#!/usr/bin/env python3
"""Prints the records waiting in a pinned BPF ring buffer as JSON, and consumes them.

    python3 examples/read-ringbuf.py /sys/fs/bpf/.../events

bpftool cannot dump a BPF_MAP_TYPE_RINGBUF, so check-kernel.mjs reads ringbuf-events' records
with this. It maps the buffer the way libbpf's ring_buffer__poll() does (kernel/bpf/ringbuf.c):
the consumer position page read-write at offset 0, then the producer position page and the
data pages read-only from offset PAGE_SIZE. Each record starts with an 8-byte header: the
length, with BPF_RINGBUF_BUSY_BIT (31) and BPF_RINGBUF_DISCARD_BIT (30), and a page offset;
records are 8-byte aligned.
"""
import ctypes
import json
import mmap
import os
import platform
import struct
import sys

BPF_OBJ_GET = 7
BPF_OBJ_GET_INFO_BY_FD = 15
NR_BPF = {"x86_64": 321, "aarch64": 280}
BUSY = 1 << 31
DISCARD = 1 << 30

libc = ctypes.CDLL(None, use_errno=True)


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = libc.syscall(NR_BPF[platform.machine()], cmd, buf, len(attr))
    if ret < 0:
        err = ctypes.get_errno()
        sys.exit(f"read-ringbuf: bpf({cmd}) failed: {os.strerror(err)}")
    return ret, buf.raw


def main(path):
    name = ctypes.create_string_buffer(path.encode())
    fd, _ = bpf(BPF_OBJ_GET, struct.pack("=QII", ctypes.addressof(name), 0, 0).ljust(128, b"\0"))
    # struct bpf_map_info: type, id, key_size, value_size, max_entries (the data size in bytes).
    info = ctypes.create_string_buffer(128)
    bpf(BPF_OBJ_GET_INFO_BY_FD, struct.pack("=IIQ", fd, 128, ctypes.addressof(info)).ljust(128, b"\0"))
    map_type, _, _, _, size = struct.unpack_from("=IIIII", info.raw)
    if map_type != 27:  # BPF_MAP_TYPE_RINGBUF
        sys.exit(f"read-ringbuf: {path} is map type {map_type}, not a ring buffer")
    page = mmap.PAGESIZE
    consumer = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
    # The data pages are mapped twice in a row, so a record that wraps reads straight on.
    producer = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
    cons = struct.unpack_from("=Q", consumer, 0)[0]
    prod = struct.unpack_from("=Q", producer, 0)[0]
    records = []
    while cons < prod:
        at = page + (cons & (size - 1))
        length, _ = struct.unpack_from("=II", producer, at)
        if length & BUSY:
            break  # reserved but not yet submitted
        n = length & ~(BUSY | DISCARD)
        if not length & DISCARD:
            records.append(producer[at + 8 : at + 8 + n].hex())
        cons += (n + 8 + 7) & ~7
    struct.pack_into("=Q", consumer, 0, cons)
    json.dump(records, sys.stdout)
    print()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: read-ringbuf.py PINNED_RINGBUF_MAP")
    main(sys.argv[1])
