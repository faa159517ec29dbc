#!/usr/bin/env python3
"""fsx.py — a random-operation file exerciser in the spirit of fsx (xfstests).

usage: fsx.py FILE --ops N --seed S [--maxlen BYTES] [--maxop BYTES]
              [--copy-peer FILE2] [--direct] [--verbose]

FILE is created (or truncated to 0). An in-memory model (bytearray) of its
contents is kept; N random operations are applied through real syscalls and
every read is checked against the model, as is the size after every op:

  write        pwrite at a random offset/length (beyond EOF too: holes)
  read         pread (also across EOF: short reads) and compare
  truncate     os.ftruncate up or down
  mapread      mmap(PROT_READ|PROT_WRITE, MAP_SHARED) of a window, compare;
               and the part of the last page past EOF must read as zeros
  mapwrite     extend with ftruncate if needed, write through a shared
               mapping, msync
  fallocate    os.posix_fallocate (mode 0: may extend the size)
  falloc_keep  fallocate(FALLOC_FL_KEEP_SIZE)
  punch_hole   fallocate(FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE)
  zero_range   fallocate(FALLOC_FL_ZERO_RANGE[|FALLOC_FL_KEEP_SIZE])
  copy_range   os.copy_file_range within FILE (non-overlapping ranges)
  copy_peer    os.copy_file_range from FILE2 into FILE (with --copy-peer)
  copy_to_peer os.copy_file_range from FILE into FILE2 (with --copy-peer)
  dread        (--direct) O_DIRECT pread, page-aligned offset/length/buffer,
               on a second fd of FILE, mixed with the buffered ops (fsx -Z)
  dwrite       (--direct) O_DIRECT pwrite, likewise
  fsync        fsync or fdatasync
  reopen       close and reopen FILE (and FILE2, and the O_DIRECT fd)

An fallocate mode answered with EOPNOTSUPP is marked unsupported and not
tried again. At the end the whole file (and the peer) is compared again
after a reopen. On a mismatch the tail of the op log (last 20 ops), the first
differing offset and the bytes around it are printed and the exit status is
1. On success the last line is `fsx: N ops ok (op=count ...)`.
Python standard library only.
"""
import argparse
import collections
import ctypes
import ctypes.util
import errno
import mmap
import os
import random
import sys

PAGE = mmap.PAGESIZE
GRAN = mmap.ALLOCATIONGRANULARITY

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

PROT_READ, PROT_WRITE = 1, 2
MAP_SHARED = 1

_libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
_libc.fallocate.restype = ctypes.c_int
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_longlong]
_libc.mmap.restype = ctypes.c_void_p
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.munmap.restype = ctypes.c_int
MAP_FAILED = ctypes.c_void_p(-1).value


def fallocate(fd, mode, offset, length):
    if _libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Mismatch(Exception):
    pass


class Unsupported(Exception):
    pass


class Skip(Exception):
    """The op cannot run in the current state (e.g. empty file); pick another."""


# name -> weight
WEIGHTS = {
    'write': 20, 'read': 18, 'truncate': 5, 'mapread': 8, 'mapwrite': 8,
    'fallocate': 3, 'falloc_keep': 3, 'punch_hole': 4, 'zero_range': 3,
    'copy_range': 5, 'copy_peer': 5, 'copy_to_peer': 2, 'fsync': 2, 'reopen': 2,
    'dread': 6, 'dwrite': 6,
}
PEER_OPS = ('copy_peer', 'copy_to_peer')
DIRECT_OPS = ('dread', 'dwrite')


class Fsx:
    def __init__(self, path, seed, maxlen, maxop, peer, verbose, direct=False):
        self.path = path
        self.peer_path = peer
        self.rnd = random.Random(seed)
        self.maxlen = maxlen
        self.maxop = maxop
        self.verbose = verbose
        self.model = bytearray()
        self.peer_model = bytearray()
        self.log = collections.deque(maxlen=20)
        self.counts = collections.Counter()
        self.unsupported = set()
        self.opno = 0
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self.pfd = -1
        self.direct = direct
        self.dfd = os.open(path, os.O_RDWR | os.O_DIRECT) if direct else -1
        if peer:
            self.pfd = os.open(peer, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            n = self.rnd.randint(max(1, maxlen // 4), maxlen)
            self.peer_model = bytearray(self.rnd.randbytes(n))
            self.pwrite_all(self.pfd, bytes(self.peer_model), 0)
            os.fsync(self.pfd)
        ops = [o for o in WEIGHTS if (peer or o not in PEER_OPS) and (direct or o not in DIRECT_OPS)]
        self.ops = ops
        self.weights = [WEIGHTS[o] for o in ops]

    # ---- helpers ----

    def note(self, text):
        line = f'#{self.opno} {text}'
        self.log.append(line)
        if self.verbose:
            print(line, flush=True)

    def pick_off(self, limit):
        """An offset in [0, limit): uniform, page-aligned, or near a page boundary."""
        if limit <= 0:
            return 0
        r = self.rnd.random()
        if r < 0.6:
            return self.rnd.randrange(limit)
        pages = (limit - 1) // PAGE
        base = self.rnd.randint(0, pages) * PAGE
        if r < 0.8:
            return min(base, limit - 1)
        return max(0, min(limit - 1, base + self.rnd.randint(-3, 3)))

    def pick_len(self, limit=None):
        """A length in [1, min(maxop, limit)]: uniform, small, page multiple or near one."""
        top = self.maxop if limit is None else min(self.maxop, limit)
        if top <= 0:
            return 0
        r = self.rnd.random()
        if r < 0.55:
            n = self.rnd.randint(1, top)
        elif r < 0.7:
            n = self.rnd.randint(1, 16)
        elif r < 0.85:
            n = PAGE * self.rnd.randint(1, max(1, top // PAGE))
        else:
            n = PAGE * self.rnd.randint(1, max(1, top // PAGE)) + self.rnd.randint(-3, 3)
        return max(1, min(top, n))

    @staticmethod
    def pwrite_all(fd, data, off):
        done = 0
        view = memoryview(data)
        while done < len(data):
            n = os.pwrite(fd, view[done:], off + done)
            if n <= 0:
                raise OSError(errno.EIO, f'pwrite returned {n} at {off + done:#x}')
            done += n

    @staticmethod
    def pread_all(fd, n, off):
        parts = []
        got = 0
        while got < n:
            b = os.pread(fd, n - got, off + got)
            if not b:
                break
            parts.append(b)
            got += len(b)
        return b''.join(parts)

    def set_model(self, model, off, data):
        end = off + len(data)
        if end > len(model):
            model.extend(bytes(end - len(model)))
        model[off:end] = data

    def resize(self, model, n):
        if n < len(model):
            del model[n:]
        else:
            model.extend(bytes(n - len(model)))

    def compare(self, what, off, got, expect, model=None):
        if got == expect:
            return
        model = self.model if model is None else model
        first = next((i for i in range(min(len(got), len(expect))) if got[i] != expect[i]), min(len(got), len(expect)))
        bad = sum(1 for a, b in zip(got, expect) if a != b) + abs(len(got) - len(expect))
        lines = [f'fsx: MISMATCH in op #{self.opno} {what}: read {len(got):#x} bytes at {off:#x}, expected {len(expect):#x}',
                 f'fsx: first differing file offset {off + first:#x} ({off + first}), {bad} bytes differ'
                 f' in this range, file size (model) {len(model):#x}']
        lo = first
        exp = bytes(expect[lo:lo + 16])
        gb = bytes(got[lo:lo + 16])
        lines.append(f'fsx:   expected {exp.hex(" ")}')
        lines.append(f'fsx:   got      {gb.hex(" ")}')
        if gb and gb == bytes(len(gb)):
            lines.append('fsx:   (got zeros)')
        elif len(gb) >= 8:
            where = bytes(model).find(gb)
            if where >= 0:
                lines.append(f'fsx:   the bytes read are at model offset {where:#x} (shift {where - (off + first):+d})')
        if len(got) != len(expect):
            lines.append(f'fsx:   length differs: got {len(got):#x}, expected {len(expect):#x}')
        raise Mismatch('\n'.join(lines))

    def check_size(self, fd, model, what):
        st = os.fstat(fd)
        if st.st_size != len(model):
            raise Mismatch(f'fsx: SIZE MISMATCH after op #{self.opno} ({what}): fstat says {st.st_size:#x}, '
                           f'model {len(model):#x}')

    # ---- operations ----

    def op_write(self):
        off = self.pick_off(self.maxlen)
        n = self.pick_len(self.maxlen - off)
        data = self.rnd.randbytes(n)
        self.note(f'write   off={off:#x} len={n:#x} end={off + n:#x} (size {len(self.model):#x})')
        self.pwrite_all(self.fd, data, off)
        self.set_model(self.model, off, data)

    def op_read(self):
        size = len(self.model)
        if size == 0:
            raise Skip()
        off = self.pick_off(size)
        n = self.pick_len()
        if self.rnd.random() < 0.8:
            n = min(n, size - off)
        self.note(f'read    off={off:#x} len={n:#x} (size {size:#x})')
        got = self.pread_all(self.fd, n, off)
        self.compare('read', off, got, bytes(self.model[off:off + n]))

    def op_truncate(self):
        old = len(self.model)
        r = self.rnd.random()
        if r < 0.1:
            n = 0
        elif r < 0.3:
            n = self.pick_off(self.maxlen + 1)
        else:
            n = self.rnd.randint(0, self.maxlen)
        self.note(f'truncate {old:#x} -> {n:#x}')
        os.ftruncate(self.fd, n)
        self.resize(self.model, n)

    def window(self, off, n):
        moff = off // GRAN * GRAN
        return moff, off + n - moff

    def check_eofpage(self):
        """The part of the last page beyond EOF must read as zeros through a mapping."""
        size = len(self.model)
        if size == 0 or size % PAGE == 0:
            return
        poff = (size - 1) // PAGE * PAGE
        addr = _libc.mmap(None, PAGE, PROT_READ, MAP_SHARED, self.fd, poff)
        if addr is None or addr == MAP_FAILED:
            e = ctypes.get_errno()
            raise OSError(e, f'mmap of the last page: {os.strerror(e)}')
        try:
            page = ctypes.string_at(addr, PAGE)
        finally:
            _libc.munmap(addr, PAGE)
        tail = page[size - poff:]
        if tail != bytes(len(tail)):
            i = next(i for i, b in enumerate(tail) if b)
            raise Mismatch(f'fsx: EOF PAGE MISMATCH in op #{self.opno}: byte at {size + i:#x} (past EOF {size:#x}) '
                           f'reads {tail[i]:#04x} through mmap, expected 0; '
                           f'{sum(1 for b in tail if b)} of {len(tail)} tail bytes non-zero: {tail[i:i + 16].hex(" ")}')
        head = page[:size - poff]
        self.compare('mapread(eofpage)', poff, head, bytes(self.model[poff:size]))

    def op_mapread(self):
        size = len(self.model)
        if size == 0:
            raise Skip()
        off = self.pick_off(size)
        n = self.pick_len(size - off)
        moff, mlen = self.window(off, n)
        self.note(f'mapread off={off:#x} len={n:#x} (map {moff:#x}+{mlen:#x}, size {size:#x})')
        with mmap.mmap(self.fd, mlen, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=moff) as mm:
            got = mm[off - moff:off - moff + n]
        self.compare('mapread', off, got, bytes(self.model[off:off + n]))
        self.check_eofpage()

    def op_mapwrite(self):
        off = self.pick_off(self.maxlen)
        n = self.pick_len(self.maxlen - off)
        old = len(self.model)
        end = off + n
        self.note(f'mapwrite off={off:#x} len={n:#x} end={end:#x} (size {old:#x}'
                  f'{f", ftruncate to {end:#x} first" if end > old else ""})')
        if end > old:
            os.ftruncate(self.fd, end)
            self.resize(self.model, end)
        data = self.rnd.randbytes(n)
        moff, mlen = self.window(off, n)
        with mmap.mmap(self.fd, mlen, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=moff) as mm:
            mm[off - moff:off - moff + n] = data
            mm.flush()  # msync(MS_SYNC)
        self.set_model(self.model, off, data)

    def falloc_args(self):
        off = self.pick_off(self.maxlen)
        n = self.pick_len(self.maxlen - off)
        return off, n

    def op_fallocate(self):
        off, n = self.falloc_args()
        self.note(f'fallocate off={off:#x} len={n:#x} end={off + n:#x} (size {len(self.model):#x})')
        try:
            os.posix_fallocate(self.fd, off, n)
        except OSError as e:
            if e.errno == errno.EOPNOTSUPP:
                raise Unsupported()
            raise
        if off + n > len(self.model):
            self.resize(self.model, off + n)

    def do_fallocate(self, mode, name, off, n):
        self.note(f'{name} off={off:#x} len={n:#x} end={off + n:#x} mode={mode:#x} (size {len(self.model):#x})')
        try:
            fallocate(self.fd, mode, off, n)
        except OSError as e:
            if e.errno == errno.EOPNOTSUPP:
                raise Unsupported()
            raise

    def op_falloc_keep(self):
        off, n = self.falloc_args()
        self.do_fallocate(FALLOC_FL_KEEP_SIZE, 'falloc_keep', off, n)

    def op_punch_hole(self):
        size = len(self.model)
        if size == 0:
            raise Skip()
        off = self.pick_off(size)
        n = self.pick_len()
        self.do_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 'punch_hole', off, n)
        end = min(off + n, size)
        self.model[off:end] = bytes(end - off)

    def op_zero_range(self):
        keep = self.rnd.random() < 0.5
        off, n = self.falloc_args()
        self.do_fallocate(FALLOC_FL_ZERO_RANGE | (FALLOC_FL_KEEP_SIZE if keep else 0),
                          'zero_range' + ('(keep)' if keep else ''), off, n)
        size = len(self.model)
        end = off + n if not keep else min(off + n, size)
        if end > size:
            self.resize(self.model, end)
        if end > off:
            self.model[off:end] = bytes(end - off)

    def copy(self, fd_in, m_in, off_in, fd_out, m_out, off_out, n):
        """copy_file_range until n bytes or EOF of the input; applies each chunk to the model."""
        # Expected count from the input size before the copy (for a copy within
        # one file, callers keep the input range inside EOF: its output could
        # otherwise grow the input while the copy runs).
        expect = max(0, min(n, len(m_in) - off_in))
        done = 0
        calls = 0
        while done < n:
            c = os.copy_file_range(fd_in, fd_out, n - done, off_in + done, off_out + done)
            calls += 1
            if c == 0:
                break
            if c < 0 or c > n - done:
                raise OSError(errno.EIO, f'copy_file_range returned {c} for {n - done}')
            self.set_model(m_out, off_out + done, bytes(m_in[off_in + done:off_in + done + c]))
            done += c
        if done != expect:
            raise Mismatch(f'fsx: COPY COUNT MISMATCH in op #{self.opno}: copied {done:#x} bytes in {calls} calls, '
                           f'expected {expect:#x} (input size {len(m_in):#x}, off_in {off_in:#x})')
        return done

    def op_copy_range(self):
        size = len(self.model)
        if size == 0:
            raise Skip()
        for _ in range(8):
            off_in = self.pick_off(size)
            n = self.pick_len(size - off_in)
            off_out = self.pick_off(self.maxlen - n + 1) if n <= self.maxlen else 0
            if off_out + n > self.maxlen:
                continue
            if off_in + n <= off_out or off_out + n <= off_in:
                break
        else:
            raise Skip()
        self.note(f'copy_range in={off_in:#x} out={off_out:#x} len={n:#x} (size {size:#x})')
        self.copy(self.fd, self.model, off_in, self.fd, self.model, off_out, n)

    def op_copy_peer(self):
        psize = len(self.peer_model)
        if psize == 0:
            raise Skip()
        off_in = self.pick_off(psize)
        off_out = self.pick_off(self.maxlen)
        n = self.pick_len(self.maxlen - off_out)
        self.note(f'copy_peer in={off_in:#x} out={off_out:#x} len={n:#x} (peer {psize:#x}, size {len(self.model):#x})')
        self.copy(self.pfd, self.peer_model, off_in, self.fd, self.model, off_out, n)

    def op_copy_to_peer(self):
        size = len(self.model)
        if size == 0:
            raise Skip()
        off_in = self.pick_off(size)
        off_out = self.pick_off(self.maxlen)
        n = self.pick_len(self.maxlen - off_out)
        self.note(f'copy_to_peer in={off_in:#x} out={off_out:#x} len={n:#x} (size {size:#x}, peer {len(self.peer_model):#x})')
        self.copy(self.fd, self.model, off_in, self.pfd, self.peer_model, off_out, n)
        self.check_size(self.pfd, self.peer_model, 'copy_to_peer (peer)')
        got = self.pread_all(self.pfd, n, off_out)
        self.compare('copy_to_peer (peer read-back)', off_out, got, bytes(self.peer_model[off_out:off_out + n]),
                     self.peer_model)

    def direct_args(self, limit):
        """Page-aligned offset < limit and page-multiple length (0: none fits)."""
        pages = (limit + PAGE - 1) // PAGE
        if pages == 0:
            return 0, 0
        off = self.rnd.randrange(pages) * PAGE
        n = PAGE * self.rnd.randint(1, max(1, self.maxop // PAGE))
        return off, n

    def op_dread(self):
        size = len(self.model)
        off, n = self.direct_args(size)
        if n == 0:
            raise Skip()
        self.note(f'dread   off={off:#x} len={n:#x} (size {size:#x}, O_DIRECT)')
        with mmap.mmap(-1, n) as buf:  # page-aligned
            r = os.preadv(self.dfd, [buf], off)
            got = bytes(buf[:r])
        self.compare('dread', off, got, bytes(self.model[off:off + n]))

    def op_dwrite(self):
        off, n = self.direct_args(self.maxlen)
        n = min(n, (self.maxlen - off) // PAGE * PAGE)
        if n == 0:
            raise Skip()
        self.note(f'dwrite  off={off:#x} len={n:#x} end={off + n:#x} (size {len(self.model):#x}, O_DIRECT)')
        data = self.rnd.randbytes(n)
        with mmap.mmap(-1, n) as buf:
            buf[:] = data
            r = os.pwritev(self.dfd, [buf], off)
        if r != n:
            raise OSError(errno.EIO, f'short O_DIRECT write: {r:#x} of {n:#x} at {off:#x}')
        self.set_model(self.model, off, data)

    def op_fsync(self):
        data = self.rnd.random() < 0.5
        self.note('fdatasync' if data else 'fsync')
        (os.fdatasync if data else os.fsync)(self.fd)

    def op_reopen(self):
        self.note('reopen')
        os.close(self.fd)
        self.fd = -1
        self.fd = os.open(self.path, os.O_RDWR)
        if self.pfd >= 0:
            os.close(self.pfd)
            self.pfd = -1
            self.pfd = os.open(self.peer_path, os.O_RDWR)
        if self.dfd >= 0:
            os.close(self.dfd)
            self.dfd = -1
            self.dfd = os.open(self.path, os.O_RDWR | os.O_DIRECT)

    # ---- driver ----

    def full_check(self, what):
        self.check_size(self.fd, self.model, what)
        got = self.pread_all(self.fd, len(self.model) + 4096, 0)
        self.compare(what, 0, got, bytes(self.model))
        if self.pfd >= 0:
            self.check_size(self.pfd, self.peer_model, what + ' (peer)')
            got = self.pread_all(self.pfd, len(self.peer_model) + 4096, 0)
            self.compare(what + ' (peer)', 0, got, bytes(self.peer_model), self.peer_model)

    def run(self, n):
        skips = 0
        while self.opno < n:
            name = self.rnd.choices(self.ops, self.weights)[0]
            if name in self.unsupported:
                continue
            self.opno += 1
            try:
                getattr(self, 'op_' + name)()
            except Skip:
                self.opno -= 1
                skips += 1
                if skips > 100 * n + 1000:
                    raise RuntimeError('fsx: too many skipped ops')
                continue
            except Unsupported:
                self.unsupported.add(name)
                self.note(f'{name}: EOPNOTSUPP, not tried again')
                self.opno -= 1
                continue
            self.counts[name] += 1
            self.check_size(self.fd, self.model, name)
        self.opno += 1
        self.note('final check')
        self.full_check('final check')
        self.op_reopen()
        self.full_check('final check after reopen')
        os.close(self.fd)
        for fd in (self.pfd, self.dfd):
            if fd >= 0:
                os.close(fd)

    def dump(self):
        print('fsx: last ops (oldest first):', file=sys.stderr)
        for line in self.log:
            print('  ' + line, file=sys.stderr)

    def summary(self):
        counts = ' '.join(f'{o}={self.counts[o]}' for o in self.ops if self.counts[o])
        uns = f' unsupported: {",".join(sorted(self.unsupported))}' if self.unsupported else ''
        return f'fsx: {self.opno - 1} ops ok ({counts}){uns} final size {len(self.model):#x}'


def size_arg(s):
    s = s.strip().lower()
    mult = 1
    for suf, m in (('k', 1 << 10), ('m', 1 << 20), ('g', 1 << 30)):
        if s.endswith(suf):
            s, mult = s[:-1], m
            break
    return int(s, 0) * mult


def main(argv):
    p = argparse.ArgumentParser(description='random-operation file exerciser (fsx-like)')
    p.add_argument('file')
    p.add_argument('--ops', type=int, required=True, help='number of operations')
    p.add_argument('--seed', type=int, required=True)
    p.add_argument('--maxlen', type=size_arg, default=1 << 20, help='largest file size (default 1M)')
    p.add_argument('--maxop', type=size_arg, default=None, help='largest single op (default min(maxlen, 256K))')
    p.add_argument('--copy-peer', dest='peer', default=None, help='a second file to copy_file_range from/to')
    p.add_argument('--direct', action='store_true', help='also O_DIRECT reads/writes on a second fd (like fsx -Z)')
    p.add_argument('--verbose', '-v', action='store_true', help='print every op')
    a = p.parse_args(argv)
    maxop = a.maxop if a.maxop is not None else min(a.maxlen, 256 << 10)
    if a.maxlen < 1 or maxop < 1:
        p.error('--maxlen and --maxop must be positive')
    print(f'fsx: {a.file} seed={a.seed} ops={a.ops} maxlen={a.maxlen:#x} maxop={maxop:#x}'
          f'{" peer=" + a.peer if a.peer else ""}{" direct" if a.direct else ""} page={PAGE}', flush=True)
    try:
        f = Fsx(a.file, a.seed, a.maxlen, maxop, a.peer, a.verbose, a.direct)
    except OSError as e:
        print(f'fsx: ERROR setting up {a.file}: {e!r}', file=sys.stderr)
        print(f'fsx: FAILED at setup (seed {a.seed}): {e}', flush=True)
        return 1
    try:
        f.run(a.ops)
    except Mismatch as e:
        print(str(e), file=sys.stderr)
        f.dump()
        print(f'fsx: FAILED at op #{f.opno} (seed {a.seed})', flush=True)
        return 1
    except OSError as e:
        print(f'fsx: ERROR in op #{f.opno}: {e!r}', file=sys.stderr)
        f.dump()
        print(f'fsx: FAILED at op #{f.opno} (seed {a.seed}): {e}', flush=True)
        return 1
    print(f.summary(), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
