// The *at syscalls the passthrough filesystem needs, and nothing more.
//
// As the caller: become(uid, gid, groups) switches this (the Node main)
// thread's fsuid, fsgid and supplementary groups until become(-1), so the
// kernel checks permissions and assigns ownership as for the caller; the
// passthrough wraps each request's syscalls in one such switch. Calls that
// take a uid/gid (-1: keep ours) switch fsuid/fsgid for themselves only.
// Creations (mkdirat, mknodat, openat with O_CREAT/O_TMPFILE) run on the
// creator thread, as the caller of become(), under the umask they are given
// (pt_creator.h): the process umask is never touched. Data and directory I/O
// that may block runs on the thread pool (pt_io.cc).
//
// Values keep their whole range: names and paths are bytes (a Buffer, or a
// string taken as UTF-8), 64-bit offsets, sizes and inode numbers are
// BigInts; a value a syscall cannot take gets the kernel's errno. Failures
// throw Node-style errors (code, errno, syscall, path); policy stays in
// TypeScript.
#include <napi.h>
#include <uv.h>

#include "errors.h"
#include "pt_creator.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace pt {

inline Napi::Value Fail(Napi::Env env, int err, const char* syscall, const std::string& path = "") {
  return tsfuse::ThrowErrno(env, err, syscall, path);
}

// Runs as uid/gid for the object's lifetime (fsuid/fsgid of this thread).
class AsCaller {
 public:
  AsCaller(int64_t uid, int64_t gid) : active_(uid >= 0) {
    if (!active_) return;
    oldGid_ = setfsgid(static_cast<gid_t>(gid));
    oldUid_ = setfsuid(static_cast<uid_t>(uid));
  }
  ~AsCaller() {
    if (!active_) return;
    int e = errno;
    setfsuid(oldUid_);
    setfsgid(oldGid_);
    errno = e;
  }

 private:
  bool active_;
  int oldUid_ = 0, oldGid_ = 0;
};

int I(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }
int64_t L(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int64Value(); }
Napi::Value Num(const Napi::CallbackInfo& info, double v) { return Napi::Number::New(info.Env(), v); }
Napi::Value Big(const Napi::CallbackInfo& info, int64_t v) { return Napi::BigInt::New(info.Env(), v); }

// A name or path argument: a Buffer/Uint8Array holds the exact bytes (names
// may hold any byte but '/' and NUL, valid UTF-8 or not); a string is taken
// as UTF-8 (for the paths we build: "", ".", "/proc/self/fd/N"). False for
// anything else, and for a NUL inside: the kernel would see a shorter name.
bool Bytes(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  napi_env env = info.Env();
  napi_value v = info[i];
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_string) {
    size_t n;
    if (napi_get_value_string_utf8(env, v, nullptr, 0, &n) != napi_ok) return false;
    out->resize(n);
    if (napi_get_value_string_utf8(env, v, &(*out)[0], n + 1, &n) != napi_ok) return false;
  } else {
    bool is = false;
    napi_typedarray_type type;
    size_t len;
    void* data;
    if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
    if (napi_get_typedarray_info(env, v, &type, &len, &data, nullptr, nullptr) != napi_ok || type != napi_uint8_array) return false;
    out->assign(static_cast<const char*>(data), len);
  }
  return out->find('\0') == std::string::npos;
}

// A typed array argument's bytes (any element type), or false.
bool View(const Napi::CallbackInfo& info, size_t i, void** data, size_t* bytes) {
  napi_env env = info.Env();
  bool is = false;
  napi_typedarray_type type;
  size_t len;
  napi_value ab;
  size_t off;
  if (napi_is_typedarray(env, info[i], &is) != napi_ok || !is) return false;
  if (napi_get_typedarray_info(env, info[i], &type, &len, data, &ab, &off) != napi_ok) return false;
  static const size_t kSize[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};  // napi_typedarray_type order
  *bytes = len * (type < sizeof(kSize) / sizeof(kSize[0]) ? kSize[type] : 1);
  return true;
}

// A 64-bit integer argument: a BigInt, or a Number that is a safe integer.
// kOver: an unsigned value in [2^63, 2^64) — the kernel's loff_t cannot hold
// it (each call answers the errno the kernel gives for such a value).
// kBad: anything else that is not an exact int64 (fraction, beyond 2^64, not a number).
enum class Arg { kOk, kOver, kBad };
Arg I64(const Napi::CallbackInfo& info, size_t i, int64_t* out) {
  napi_env env = info.Env();
  napi_value v = info[i];
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return Arg::kBad;
  if (t == napi_bigint) {
    bool lossless = false;
    if (napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok && lossless) return Arg::kOk;
    uint64_t u;
    if (napi_get_value_bigint_uint64(env, v, &u, &lossless) == napi_ok && lossless) return Arg::kOver;
    return Arg::kBad;
  }
  double d;
  if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok) return Arg::kBad;
  if (!(d >= -9007199254740991.0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<int64_t>(d))) return Arg::kBad;
  *out = static_cast<int64_t>(d);
  return Arg::kOk;
}
// An unsigned 64-bit argument (a length such as size_t): BigInt in [0, 2^64) or a safe non-negative Number.
bool U64(const Napi::CallbackInfo& info, size_t i, uint64_t* out) {
  int64_t s;
  Arg a = I64(info, i, &s);
  if (a == Arg::kOk && s >= 0) { *out = static_cast<uint64_t>(s); return true; }
  if (a != Arg::kOver) return false;
  bool lossless = false;
  return napi_get_value_bigint_uint64(info.Env(), info[i], out, &lossless) == napi_ok && lossless;
}
// A file offset (loff_t): an exact int64, ≥ 0 if `nonNegative`. False otherwise (the caller
// answers EINVAL, as the kernel does to a negative offset: a u64 ≥ 2^63 is one as a loff_t).
bool Offset(const Napi::CallbackInfo& info, size_t i, int64_t* out, bool nonNegative = true) {
  Arg a = I64(info, i, out);
  return a == Arg::kOk && (!nonNegative || *out >= 0);
}

// statx's output into the two arrays statx() and lookupat() fill (see Statx).
void FillStatx(const struct statx& sx, double* o, uint64_t* b) {
  o[0] = sx.stx_dev_major; o[1] = sx.stx_dev_minor; o[2] = static_cast<double>(sx.stx_mnt_id);
  o[3] = sx.stx_mode; o[4] = sx.stx_nlink; o[5] = sx.stx_uid; o[6] = sx.stx_gid;
  o[7] = sx.stx_rdev_major; o[8] = sx.stx_rdev_minor; o[9] = sx.stx_blksize;
  o[10] = static_cast<double>(sx.stx_atime.tv_sec); o[11] = sx.stx_atime.tv_nsec;
  o[12] = static_cast<double>(sx.stx_mtime.tv_sec); o[13] = sx.stx_mtime.tv_nsec;
  o[14] = static_cast<double>(sx.stx_ctime.tv_sec); o[15] = sx.stx_ctime.tv_nsec;
  o[16] = static_cast<double>(sx.stx_btime.tv_sec); o[17] = sx.stx_btime.tv_nsec;
  o[18] = sx.stx_mask;
  b[0] = sx.stx_ino; b[1] = sx.stx_size; b[2] = sx.stx_blocks; b[3] = sx.stx_attributes;
}

// The caller this (JavaScript) thread runs as, set by become(): creations take the
// same credentials. uid < 0: none (ourselves).
thread_local Creds g_caller;  // per JavaScript thread (worker threads load the addon too)
// The groups to go back to (the process's at the first become()).
std::vector<gid_t> g_own;
bool g_ownKnown = false;
// What this thread's credentials are now (uid < 0: our own): become() switches only what
// differs, so a caller who is us (root serving root) costs no syscall, and another caller
// only the syscalls for what differs from ours (the passthrough goes back to ours after each
// request, so that no other code on the loop runs as a caller).
thread_local Creds g_applied;
uid_t g_euid = geteuid();
gid_t g_egid = getegid();

// The process umask, read once when the addon loads (from /proc/self/status, which reads
// it without changing it). A creation whose mode comes out the same under it as under the
// umask it needs runs on this thread; only the others go to the creator thread.
// refreshUmask() reads it again (a program that changes its umask later calls it).
bool g_umaskKnown = false;  // /proc/self/status said it (else every creation goes to the creator thread)
mode_t ReadProcessUmask() {
  FILE* f = fopen("/proc/self/status", "re");
  unsigned m = 022;
  bool found = false;
  if (f) {
    char line[256];
    while (fgets(line, sizeof line, f)) {
      if (sscanf(line, "Umask: %o", &m) == 1) { found = true; break; }
    }
    fclose(f);
  }
  g_umaskKnown = found;
  return static_cast<mode_t>(m & 0777);
}
mode_t g_procUmask = ReadProcessUmask();

bool SameCreds(const Creds& a, const Creds& b) {
  if (a.uid != b.uid || a.gid != b.gid || a.withGroups != b.withGroups) return false;
  return !a.withGroups || a.groups == b.groups;
}
// Creds that are just ours (root serving root keeps its groups): nothing to switch.
bool IsOwn(const Creds& c) {
  return c.uid < 0 || (static_cast<uid_t>(c.uid) == g_euid && static_cast<gid_t>(c.gid) == g_egid && !c.withGroups);
}
// Switches this thread from g_applied to `c` (uid < 0 or IsOwn: back to ourselves), with
// the syscalls for what differs only. False (errno set) if the groups could not be set.
bool SwitchCreds(const Creds& want) {
  Creds c = IsOwn(want) ? Creds() : want;
  if (SameCreds(c, g_applied)) return true;
  if (c.uid < 0) {
    int e = errno;
    setfsuid(g_euid);
    setfsgid(g_egid);
    if (g_applied.withGroups) syscall(SYS_setgroups, g_own.size(), g_own.data());
    errno = e;
    g_applied = Creds();
    return true;
  }
  const std::vector<gid_t>& from = g_applied.uid >= 0 && g_applied.withGroups ? g_applied.groups : g_own;
  const std::vector<gid_t>& to = c.withGroups ? c.groups : g_own;
  if (from != to && syscall(SYS_setgroups, to.size(), to.data()) < 0) {
    int e = errno;
    SwitchCreds(Creds());
    errno = e;
    return false;
  }
  gid_t fromGid = g_applied.uid >= 0 ? static_cast<gid_t>(g_applied.gid) : g_egid;
  uid_t fromUid = g_applied.uid >= 0 ? static_cast<uid_t>(g_applied.uid) : g_euid;
  if (fromGid != static_cast<gid_t>(c.gid)) setfsgid(static_cast<gid_t>(c.gid));
  if (fromUid != static_cast<uid_t>(c.uid)) setfsuid(static_cast<uid_t>(c.uid));
  g_applied = c;
  return true;
}

// Runs the creation `fn` of an object with permission bits `mode` under the umask in
// info[maskArg] (0 if absent) as the caller of become(), or else as info[uidArg],
// info[uidArg + 1] (fsuid/fsgid only); errno in *err. On this thread when the process
// umask gives the same mode (the usual case: the caller's umask is ours, or the kernel
// applied it and the mode has none of our umask's bits), else on the creator thread.
long RunCreation(const Napi::CallbackInfo& info, size_t uidArg, size_t maskArg, mode_t mode, const std::function<long()>& fn, int* err) {
  mode_t mask = info.Length() > maskArg && info[maskArg].IsNumber() ? static_cast<mode_t>(I(info, maskArg)) & 07777 : 0;
  if (g_umaskKnown && ((mode & 0777) & (g_procUmask ^ mask)) == 0) {
    AsCaller as(g_caller.uid >= 0 ? -1 : L(info, uidArg), g_caller.uid >= 0 ? -1 : L(info, uidArg + 1));
    errno = 0;
    long r = fn();
    *err = errno;
    return r;
  }
  if (g_caller.uid >= 0) return Creator::Run(g_caller, mask, fn, err);
  Creds who;
  who.uid = L(info, uidArg);
  who.gid = L(info, uidArg + 1);
  return Creator::Run(who, mask, fn, err);
}

// become(uid, gid, groups: Uint32Array | null): this thread runs as uid/gid with those
// supplementary groups (null: keep ours) until become(-1): fsuid, fsgid and groups go back
// to ours. Creations take the same credentials meanwhile. Only what differs from the
// thread's current credentials is switched.
Napi::Value Become(const Napi::CallbackInfo& info) {
  int64_t uid = L(info, 0);
  if (uid < 0) {
    SwitchCreds(Creds());
    g_caller = Creds();
    return info.Env().Undefined();
  }
  static std::once_flag ownOnce;  // worker threads may make their first become() at once
  std::call_once(ownOnce, [] {
    g_own = OwnGroups();
    g_ownKnown = true;
    Creator::Start();  // now, with our own credentials: a new thread inherits the creator's
  });
  Creds c;
  c.uid = uid;
  c.gid = L(info, 1);
  void* data;
  size_t bytes;
  if (info.Length() > 2 && View(info, 2, &data, &bytes)) {
    c.withGroups = true;
    c.groups.assign(static_cast<gid_t*>(data), static_cast<gid_t*>(data) + bytes / sizeof(gid_t));
  }
  if (!SwitchCreds(c)) {
    int e = errno;
    g_caller = Creds();
    return Fail(info.Env(), e, "setgroups");
  }
  g_caller = std::move(c);
  return info.Env().Undefined();
}

// statat(dirfd, name, num, big): statx of `name` in dirfd (not following a symlink) as this
// thread's caller, filling the arrays as statx() does; 0 or -errno, never throws.
Napi::Value Statat(const Napi::CallbackInfo& info) {
  std::string name;
  void *nv, *bv;
  size_t nb, bb;
  if (!Bytes(info, 1, &name) || !View(info, 2, &nv, &nb) || nb < 19 * 8 || !View(info, 3, &bv, &bb) || bb < 4 * 8)
    return Num(info, -EINVAL);
  struct statx sx;
  if (statx(I(info, 0), name.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME | STATX_MNT_ID, &sx) < 0) return Num(info, -errno);
  FillStatx(sx, static_cast<double*>(nv), static_cast<uint64_t*>(bv));
  return Num(info, 0);
}

// refreshUmask(): reads the process umask again (after the program changed it); returns it.
Napi::Value RefreshUmask(const Napi::CallbackInfo& info) {
  g_procUmask = ReadProcessUmask();
  return Num(info, g_procUmask);
}

// lookupat(dirfd, name, num, big): opens `name` in dirfd O_PATH|O_NOFOLLOW as this thread's
// caller and fills statx's output as statx() does; returns the fd, or -errno without throwing
// (ENOENT is the normal answer of a lookup, and building an error object costs more than
// the syscalls).
Napi::Value Lookupat(const Napi::CallbackInfo& info) {
  std::string name;
  void *nv, *bv;
  size_t nb, bb;
  if (!Bytes(info, 1, &name) || !View(info, 2, &nv, &nb) || nb < 19 * 8 || !View(info, 3, &bv, &bb) || bb < 4 * 8)
    return Num(info, -EINVAL);
  int fd = openat(I(info, 0), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Num(info, -errno);
  struct statx sx;
  if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME | STATX_MNT_ID, &sx) < 0) {
    int e = errno;
    close(fd);
    return Num(info, -e);
  }
  FillStatx(sx, static_cast<double*>(nv), static_cast<uint64_t*>(bv));
  return Num(info, fd);
}

// openat(dirfd, name, flags, mode, uid, gid, umask): fd. With O_CREAT or O_TMPFILE it runs on the
// creator thread under `umask` (default 0); other opens run here.
Napi::Value Openat(const Napi::CallbackInfo& info) {
  std::string name;
  if (!Bytes(info, 1, &name)) return Fail(info.Env(), EINVAL, "openat");
  int flags = I(info, 2) | O_CLOEXEC;
  mode_t mode = static_cast<mode_t>(I(info, 3));
  int dirfd = I(info, 0);
  if (flags & (O_CREAT | __O_TMPFILE)) {
    int err = 0;
    long fd = RunCreation(info, 4, 6, mode, [&]() -> long { return openat(dirfd, name.c_str(), flags, mode); }, &err);
    if (fd < 0) return Fail(info.Env(), err, "openat", name);
    return Num(info, static_cast<double>(fd));
  }
  AsCaller as(L(info, 4), L(info, 5));
  int fd = openat(dirfd, name.c_str(), flags, mode);
  if (fd < 0) return Fail(info.Env(), errno, "openat", name);
  return Num(info, fd);
}

// statx(dirfd, name, flags, num: Float64Array(19), big: BigUint64Array(4)): fills both.
//  num: 0 dev_major, 1 dev_minor, 2 mnt_id, 3 mode, 4 nlink, 5 uid, 6 gid, 7 rdev_major, 8 rdev_minor,
//       9 blksize, 10/11 atime s/ns, 12/13 mtime, 14/15 ctime, 16/17 btime, 18 mask
//  big: 0 ino, 1 size, 2 blocks, 3 attributes (the 64-bit fields, exact)
Napi::Value Statx(const Napi::CallbackInfo& info) {
  std::string name;
  if (!Bytes(info, 1, &name)) return Fail(info.Env(), EINVAL, "statx");
  void *nv, *bv;
  size_t nb, bb;
  if (!View(info, 3, &nv, &nb) || nb < 19 * 8 || !View(info, 4, &bv, &bb) || bb < 4 * 8) return Fail(info.Env(), EINVAL, "statx");
  struct statx sx;
  if (statx(I(info, 0), name.c_str(), I(info, 2), STATX_BASIC_STATS | STATX_BTIME | STATX_MNT_ID, &sx) < 0)
    return Fail(info.Env(), errno, "statx", name);
  FillStatx(sx, static_cast<double*>(nv), static_cast<uint64_t*>(bv));
  return info.Env().Undefined();
}

// mkdirat(dirfd, name, mode, uid, gid, umask) — on the creator thread
Napi::Value Mkdirat(const Napi::CallbackInfo& info) {
  std::string name;
  if (!Bytes(info, 1, &name)) return Fail(info.Env(), EINVAL, "mkdirat");
  int dirfd = I(info, 0);
  mode_t mode = static_cast<mode_t>(I(info, 2));
  int err = 0;
  if (RunCreation(info, 3, 5, mode, [&]() -> long { return mkdirat(dirfd, name.c_str(), mode); }, &err) < 0)
    return Fail(info.Env(), err, "mkdirat", name);
  return info.Env().Undefined();
}

// mknodat(dirfd, name, mode, dev, uid, gid, umask) — on the creator thread; dev is glibc's dev_t
Napi::Value Mknodat(const Napi::CallbackInfo& info) {
  std::string name;
  int64_t dev;
  if (!Bytes(info, 1, &name) || I64(info, 3, &dev) != Arg::kOk) return Fail(info.Env(), EINVAL, "mknodat");
  int dirfd = I(info, 0);
  mode_t mode = static_cast<mode_t>(I(info, 2));
  int err = 0;
  if (RunCreation(info, 4, 6, mode, [&]() -> long { return mknodat(dirfd, name.c_str(), mode, static_cast<dev_t>(dev)); }, &err) < 0)
    return Fail(info.Env(), err, "mknodat", name);
  return info.Env().Undefined();
}

// symlinkat(target, dirfd, name, uid, gid): target and name are bytes (a symlink's mode ignores the umask)
Napi::Value Symlinkat(const Napi::CallbackInfo& info) {
  std::string target, name;
  if (!Bytes(info, 0, &target) || !Bytes(info, 2, &name)) return Fail(info.Env(), EINVAL, "symlinkat");
  AsCaller as(L(info, 3), L(info, 4));
  if (symlinkat(target.c_str(), I(info, 1), name.c_str()) < 0) return Fail(info.Env(), errno, "symlinkat", name);
  return info.Env().Undefined();
}

// linkat(olddirfd, oldname, newdirfd, newname, flags, uid, gid)
Napi::Value Linkat(const Napi::CallbackInfo& info) {
  std::string oldname, newname;
  if (!Bytes(info, 1, &oldname) || !Bytes(info, 3, &newname)) return Fail(info.Env(), EINVAL, "linkat");
  AsCaller as(L(info, 5), L(info, 6));
  if (linkat(I(info, 0), oldname.c_str(), I(info, 2), newname.c_str(), I(info, 4)) < 0)
    return Fail(info.Env(), errno, "linkat", newname);
  return info.Env().Undefined();
}

// unlinkat(dirfd, name, flags, uid, gid)
Napi::Value Unlinkat(const Napi::CallbackInfo& info) {
  std::string name;
  if (!Bytes(info, 1, &name)) return Fail(info.Env(), EINVAL, "unlinkat");
  AsCaller as(L(info, 3), L(info, 4));
  if (unlinkat(I(info, 0), name.c_str(), I(info, 2)) < 0) return Fail(info.Env(), errno, "unlinkat", name);
  return info.Env().Undefined();
}

// renameat2(olddirfd, oldname, newdirfd, newname, flags, uid, gid)
Napi::Value Renameat2(const Napi::CallbackInfo& info) {
  std::string oldname, newname;
  if (!Bytes(info, 1, &oldname) || !Bytes(info, 3, &newname)) return Fail(info.Env(), EINVAL, "renameat2");
  AsCaller as(L(info, 5), L(info, 6));
  if (syscall(SYS_renameat2, I(info, 0), oldname.c_str(), I(info, 2), newname.c_str(), I(info, 4)) < 0)
    return Fail(info.Env(), errno, "renameat2", oldname);
  return info.Env().Undefined();
}

// readlinkat(dirfd, name): Buffer (the target's bytes)
Napi::Value Readlinkat(const Napi::CallbackInfo& info) {
  std::string name;
  if (!Bytes(info, 1, &name)) return Fail(info.Env(), EINVAL, "readlinkat");
  std::vector<char> buf(PATH_MAX + 1);
  ssize_t n = readlinkat(I(info, 0), name.c_str(), buf.data(), buf.size());
  if (n < 0) return Fail(info.Env(), errno, "readlinkat", name);
  return Napi::Buffer<char>::Copy(info.Env(), buf.data(), n);
}

// fchownat(dirfd, name, uid, gid, flags)
Napi::Value Fchownat(const Napi::CallbackInfo& info) {
  std::string name;
  if (!Bytes(info, 1, &name)) return Fail(info.Env(), EINVAL, "fchownat");
  if (fchownat(I(info, 0), name.c_str(), static_cast<uid_t>(L(info, 2)), static_cast<gid_t>(L(info, 3)), I(info, 4)) < 0)
    return Fail(info.Env(), errno, "fchownat", name);
  return info.Env().Undefined();
}

// utimensat(dirfd, name, atimeSec, atimeNsec, mtimeSec, mtimeNsec, flags); nsec may be UTIME_NOW/UTIME_OMIT
Napi::Value Utimensat(const Napi::CallbackInfo& info) {
  std::string name;
  if (!Bytes(info, 1, &name)) return Fail(info.Env(), EINVAL, "utimensat");
  struct timespec ts[2];
  ts[0].tv_sec = L(info, 2); ts[0].tv_nsec = L(info, 3);
  ts[1].tv_sec = L(info, 4); ts[1].tv_nsec = L(info, 5);
  if (utimensat(I(info, 0), name.c_str(), ts, I(info, 6)) < 0)
    return Fail(info.Env(), errno, "utimensat", name);
  return info.Env().Undefined();
}

// Extended attributes by path (the caller passes /proc/self/fd/N for an O_PATH fd);
// names are bytes, values and the list are returned as the raw bytes.
Napi::Value Getxattr(const Napi::CallbackInfo& info) {
  std::string path, name;
  if (!Bytes(info, 0, &path) || !Bytes(info, 1, &name)) return Fail(info.Env(), EINVAL, "getxattr");
  for (;;) {
    ssize_t n = getxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (n < 0) return Fail(info.Env(), errno, "getxattr", name);
    std::vector<char> buf(n > 0 ? n : 1);
    ssize_t m = getxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
    if (m < 0 && errno == ERANGE) continue;  // grew in between
    if (m < 0) return Fail(info.Env(), errno, "getxattr", name);
    return Napi::Buffer<char>::Copy(info.Env(), buf.data(), m);
  }
}
Napi::Value Setxattr(const Napi::CallbackInfo& info) {
  std::string path, name;
  void* v;
  size_t len;
  if (!Bytes(info, 0, &path) || !Bytes(info, 1, &name) || !View(info, 2, &v, &len)) return Fail(info.Env(), EINVAL, "setxattr");
  if (setxattr(path.c_str(), name.c_str(), v, len, I(info, 3)) < 0) return Fail(info.Env(), errno, "setxattr", name);
  return info.Env().Undefined();
}
Napi::Value Listxattr(const Napi::CallbackInfo& info) {
  std::string path;
  if (!Bytes(info, 0, &path)) return Fail(info.Env(), EINVAL, "listxattr");
  for (;;) {
    ssize_t n = listxattr(path.c_str(), nullptr, 0);
    if (n < 0) return Fail(info.Env(), errno, "listxattr", path);
    std::vector<char> buf(n > 0 ? n : 1);
    ssize_t m = listxattr(path.c_str(), buf.data(), buf.size());
    if (m < 0 && errno == ERANGE) continue;  // grew in between
    if (m < 0) return Fail(info.Env(), errno, "listxattr", path);
    return Napi::Buffer<char>::Copy(info.Env(), buf.data(), m);
  }
}
// listxattrInto(path, buf): one listxattr(2) with buf (its length is the size; an empty buf makes
// the size probe): the count the call answered. For clients that check the probe and ERANGE
// themselves (listxattr above retries until the list fits).
Napi::Value ListxattrInto(const Napi::CallbackInfo& info) {
  std::string path;
  void* buf;
  size_t len;
  if (!Bytes(info, 0, &path) || !View(info, 1, &buf, &len)) return Fail(info.Env(), EINVAL, "listxattr");
  ssize_t n = listxattr(path.c_str(), static_cast<char*>(buf), len);
  if (n < 0) return Fail(info.Env(), errno, "listxattr", path);
  return Num(info, static_cast<double>(n));
}
// getxattrInto(path, name, buf): one getxattr(2) with buf (its length is the size; an empty buf
// makes the size probe): the count the call answered.
Napi::Value GetxattrInto(const Napi::CallbackInfo& info) {
  std::string path, name;
  void* buf;
  size_t len;
  if (!Bytes(info, 0, &path) || !Bytes(info, 1, &name) || !View(info, 2, &buf, &len)) return Fail(info.Env(), EINVAL, "getxattr");
  ssize_t n = getxattr(path.c_str(), name.c_str(), buf, len);
  if (n < 0) return Fail(info.Env(), errno, "getxattr", name);
  return Num(info, static_cast<double>(n));
}
Napi::Value Removexattr(const Napi::CallbackInfo& info) {
  std::string path, name;
  if (!Bytes(info, 0, &path) || !Bytes(info, 1, &name)) return Fail(info.Env(), EINVAL, "removexattr");
  if (removexattr(path.c_str(), name.c_str()) < 0) return Fail(info.Env(), errno, "removexattr", name);
  return info.Env().Undefined();
}

// nameToHandleAt(dirfd, name, flags): [handleBytes, mountId]
Napi::Value NameToHandleAt(const Napi::CallbackInfo& info) {
  std::string name;
  if (!Bytes(info, 1, &name)) return Fail(info.Env(), EINVAL, "name_to_handle_at");
  std::vector<char> buf(sizeof(struct file_handle) + MAX_HANDLE_SZ);
  auto* fh = reinterpret_cast<struct file_handle*>(buf.data());
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mount_id;
  if (name_to_handle_at(I(info, 0), name.c_str(), fh, &mount_id, I(info, 2)) < 0)
    return Fail(info.Env(), errno, "name_to_handle_at", name);
  Napi::Array r = Napi::Array::New(info.Env(), 2);
  r.Set(0u, Napi::Buffer<char>::Copy(info.Env(), buf.data(), sizeof(struct file_handle) + fh->handle_bytes));
  r.Set(1u, Num(info, mount_id));
  return r;
}

// openByHandleAt(mountfd, handleBytes, flags): fd
Napi::Value OpenByHandleAt(const Napi::CallbackInfo& info) {
  Napi::Uint8Array h = info[1].As<Napi::Uint8Array>();
  std::vector<char> buf(h.Data(), h.Data() + h.ByteLength());
  int fd = open_by_handle_at(I(info, 0), reinterpret_cast<struct file_handle*>(buf.data()), I(info, 2) | O_CLOEXEC);
  if (fd < 0) return Fail(info.Env(), errno, "open_by_handle_at");
  return Num(info, fd);
}

// ---- data: offsets and sizes are BigInts (or safe-integer Numbers), exact over 64 bits ----

// pread(fd, buf: Uint8Array, pos) / pwrite(fd, data: Uint8Array, pos): bytes read into buf (up to
// its length) or written. EINVAL for pos < 0 or ≥ 2^63.
template <typename Buf, ssize_t (*Call)(int, Buf, size_t, off_t)>
Napi::Value PositionalIo(const Napi::CallbackInfo& info, const char* name) {
  void* data;
  size_t len;
  int64_t pos;
  if (!View(info, 1, &data, &len) || !Offset(info, 2, &pos)) return Fail(info.Env(), EINVAL, name);
  ssize_t n = Call(I(info, 0), static_cast<Buf>(data), len, pos);
  if (n < 0) return Fail(info.Env(), errno, name);
  return Num(info, static_cast<double>(n));
}
Napi::Value Pread(const Napi::CallbackInfo& info) { return PositionalIo<void*, pread>(info, "pread"); }
// preadNowait(fd, buf, pos, at) / pwriteNowait(fd, data, pos, at): preadv2/pwritev2 with
// RWF_NOWAIT of buf[at..] at pos: what can be done without blocking (data in the page cache,
// a write that needs no block allocation), as a byte count, or -errno (EAGAIN: it would
// block; EOPNOTSUPP: the file cannot say). Never throws: the caller then goes to the pool.
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008  // linux/fs.h (4.14)
#endif
template <bool kWrite>
Napi::Value PositionalNowait(const Napi::CallbackInfo& info) {
  void* data;
  size_t len;
  int64_t pos;
  if (!View(info, 1, &data, &len) || !Offset(info, 2, &pos)) return Num(info, -EINVAL);
  size_t at = static_cast<size_t>(info[3].As<Napi::Number>().Int64Value());
  if (at > len) return Num(info, -EINVAL);
  struct iovec iov = {static_cast<uint8_t*>(data) + at, len - at};
  ssize_t n = kWrite ? pwritev2(I(info, 0), &iov, 1, pos, RWF_NOWAIT) : preadv2(I(info, 0), &iov, 1, pos, RWF_NOWAIT);
  return Num(info, n < 0 ? -errno : static_cast<double>(n));
}
Napi::Value Pwrite(const Napi::CallbackInfo& info) { return PositionalIo<const void*, pwrite>(info, "pwrite"); }
// ftruncate(fd, size): EFBIG for a size ≥ 2^63 (beyond any file), EINVAL for a negative one.
Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  int64_t size;
  Arg a = I64(info, 1, &size);
  if (a != Arg::kOk) return Fail(info.Env(), a == Arg::kOver ? EFBIG : EINVAL, "ftruncate");
  if (ftruncate(I(info, 0), size) < 0) return Fail(info.Env(), errno, "ftruncate");
  return info.Env().Undefined();
}
// truncate(path, size): truncate(2) by path, which reaches a FUSE server as SETATTR without a
// file handle (ftruncate sends the fh); EFBIG for a size ≥ 2^63, EINVAL for a negative one.
Napi::Value Truncate(const Napi::CallbackInfo& info) {
  std::string path;
  int64_t size;
  if (!Bytes(info, 0, &path)) return Fail(info.Env(), EINVAL, "truncate");
  Arg a = I64(info, 1, &size);
  if (a != Arg::kOk) return Fail(info.Env(), a == Arg::kOver ? EFBIG : EINVAL, "truncate");
  if (truncate(path.c_str(), size) < 0) return Fail(info.Env(), errno, "truncate", path);
  return info.Env().Undefined();
}
// fallocate(fd, mode, offset, length): a value ≥ 2^63 is EINVAL (what the kernel says to a negative one).
Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  int64_t off, len;
  if (!Offset(info, 2, &off, false) || !Offset(info, 3, &len, false)) return Fail(info.Env(), EINVAL, "fallocate");
  if (fallocate(I(info, 0), I(info, 1), off, len) < 0) return Fail(info.Env(), errno, "fallocate");
  return info.Env().Undefined();
}
// lseek(fd, offset, whence): the new offset (BigInt). `offset` is signed (an int64).
Napi::Value Lseek(const Napi::CallbackInfo& info) {
  int64_t off;
  if (!Offset(info, 1, &off, false)) return Fail(info.Env(), EINVAL, "lseek");
  off_t r = lseek(I(info, 0), off, I(info, 2));
  if (r < 0) return Fail(info.Env(), errno, "lseek");
  return Big(info, r);
}
// copyFileRange(fdIn, offIn, fdOut, offOut, len, flags): bytes copied (BigInt). len is a size_t.
Napi::Value CopyFileRange(const Napi::CallbackInfo& info) {
  int64_t offIn, offOut;
  uint64_t len;
  if (!Offset(info, 1, &offIn, false) || !Offset(info, 3, &offOut, false) || !U64(info, 4, &len))
    return Fail(info.Env(), EINVAL, "copy_file_range");
  loff_t in = offIn, out = offOut;
  ssize_t n = copy_file_range(I(info, 0), &in, I(info, 2), &out, len, I(info, 5));
  if (n < 0) return Fail(info.Env(), errno, "copy_file_range");
  return Big(info, n);
}
// fcntlLock(fd, cmd, type, start, len, pid): [type, start, len, pid] (start and len BigInts, as
// F_GETLK answers them; l_whence SEEK_SET).
Napi::Value FcntlLock(const Napi::CallbackInfo& info) {
  int64_t start, len;
  if (!Offset(info, 3, &start, false) || !Offset(info, 4, &len, false)) return Fail(info.Env(), EINVAL, "fcntl");
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = I(info, 2);
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  fl.l_pid = I(info, 5);
  int cmd = I(info, 1);
  if (fcntl(I(info, 0), cmd, &fl) < 0) return Fail(info.Env(), errno, "fcntl");
  Napi::Array r = Napi::Array::New(info.Env(), 4);
  r.Set(0u, Num(info, fl.l_type)); r.Set(1u, Big(info, fl.l_start));
  r.Set(2u, Big(info, fl.l_len)); r.Set(3u, Num(info, fl.l_pid));
  return r;
}
// flock(fd, op)
Napi::Value Flock(const Napi::CallbackInfo& info) {
  if (flock(I(info, 0), I(info, 1)) < 0) return Fail(info.Env(), errno, "flock");
  return info.Env().Undefined();
}
// fstatfs(fd, out: BigUint64Array(8)): blocks, bfree, bavail, files, ffree, bsize, namelen, frsize
Napi::Value Fstatfs(const Napi::CallbackInfo& info) {
  void* v;
  size_t bytes;
  if (!View(info, 1, &v, &bytes) || bytes < 8 * 8) return Fail(info.Env(), EINVAL, "fstatfs");
  struct statfs s;
  if (fstatfs(I(info, 0), &s) < 0) return Fail(info.Env(), errno, "fstatfs");
  uint64_t* o = static_cast<uint64_t*>(v);
  o[0] = s.f_blocks; o[1] = s.f_bfree; o[2] = s.f_bavail; o[3] = s.f_files; o[4] = s.f_ffree;
  o[5] = s.f_bsize; o[6] = s.f_namelen; o[7] = s.f_frsize;
  if (bytes >= 9 * 8) o[8] = static_cast<uint64_t>(s.f_type);
  return info.Env().Undefined();
}
// syncfs(fd)
Napi::Value Syncfs(const Napi::CallbackInfo& info) {
  if (syncfs(I(info, 0)) < 0) return Fail(info.Env(), errno, "syncfs");
  return info.Env().Undefined();
}
// faccessat(dirfd, name, mode, flags, uid, gid): throws on denial
Napi::Value Faccessat(const Napi::CallbackInfo& info) {
  std::string name;
  if (!Bytes(info, 1, &name)) return Fail(info.Env(), EINVAL, "faccessat");
  AsCaller as(L(info, 4), L(info, 5));
  if (faccessat(I(info, 0), name.c_str(), I(info, 2), I(info, 3)) < 0) return Fail(info.Env(), errno, "faccessat", name);
  return info.Env().Undefined();
}

// raiseNofile(want): the soft RLIMIT_NOFILE now in effect (raised up to the hard limit)
Napi::Value RaiseNofile(const Napi::CallbackInfo& info) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) < 0) return Fail(info.Env(), errno, "getrlimit");
  rlim_t want = static_cast<rlim_t>(L(info, 0));
  if (want > r.rlim_max) want = r.rlim_max;
  if (want > r.rlim_cur) {
    r.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &r) < 0) return Fail(info.Env(), errno, "setrlimit");
  }
  return Num(info, static_cast<double>(r.rlim_cur));
}

void InitIo(Napi::Env env, Napi::Object o);  // pt_io.cc

void Init(Napi::Env env, Napi::Object exports) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("openat", Napi::Function::New(env, Openat));
  o.Set("statx", Napi::Function::New(env, Statx));
  o.Set("mkdirat", Napi::Function::New(env, Mkdirat));
  o.Set("mknodat", Napi::Function::New(env, Mknodat));
  o.Set("symlinkat", Napi::Function::New(env, Symlinkat));
  o.Set("linkat", Napi::Function::New(env, Linkat));
  o.Set("unlinkat", Napi::Function::New(env, Unlinkat));
  o.Set("renameat2", Napi::Function::New(env, Renameat2));
  o.Set("readlinkat", Napi::Function::New(env, Readlinkat));
  o.Set("fchownat", Napi::Function::New(env, Fchownat));
  o.Set("utimensat", Napi::Function::New(env, Utimensat));
  o.Set("getxattr", Napi::Function::New(env, Getxattr));
  o.Set("setxattr", Napi::Function::New(env, Setxattr));
  o.Set("listxattr", Napi::Function::New(env, Listxattr));
  o.Set("removexattr", Napi::Function::New(env, Removexattr));
  o.Set("listxattrInto", Napi::Function::New(env, ListxattrInto));
  o.Set("getxattrInto", Napi::Function::New(env, GetxattrInto));
  o.Set("nameToHandleAt", Napi::Function::New(env, NameToHandleAt));
  o.Set("openByHandleAt", Napi::Function::New(env, OpenByHandleAt));
  o.Set("pread", Napi::Function::New(env, Pread));
  o.Set("pwrite", Napi::Function::New(env, Pwrite));
  o.Set("ftruncate", Napi::Function::New(env, Ftruncate));
  o.Set("truncate", Napi::Function::New(env, Truncate));
  o.Set("fallocate", Napi::Function::New(env, Fallocate));
  o.Set("lseek", Napi::Function::New(env, Lseek));
  o.Set("copyFileRange", Napi::Function::New(env, CopyFileRange));
  o.Set("fcntlLock", Napi::Function::New(env, FcntlLock));
  o.Set("flock", Napi::Function::New(env, Flock));
  o.Set("fstatfs", Napi::Function::New(env, Fstatfs));
  o.Set("syncfs", Napi::Function::New(env, Syncfs));
  o.Set("raiseNofile", Napi::Function::New(env, RaiseNofile));
  o.Set("faccessat", Napi::Function::New(env, Faccessat));
  o.Set("become", Napi::Function::New(env, Become));
  o.Set("refreshUmask", Napi::Function::New(env, RefreshUmask));
  o.Set("lookupat", Napi::Function::New(env, Lookupat));
  o.Set("statat", Napi::Function::New(env, Statat));
  o.Set("preadNowait", Napi::Function::New(env, PositionalNowait<false>));
  o.Set("pwriteNowait", Napi::Function::New(env, PositionalNowait<true>));
  InitIo(env, o);
  exports.Set("pt", o);
}

}  // namespace pt
