// The *at syscalls the passthrough filesystem needs, and nothing more.
//
// Calls that resolve a name or create something take the caller's uid/gid
// (-1: keep ours) and run with setfsuid/setfsgid switched to them, so the
// kernel checks permissions and assigns ownership as for the caller. The
// switch is per thread; these calls run on the Node main thread and restore
// the ids before returning. Failures throw Node-style errors (code, errno,
// syscall, path); policy stays in TypeScript.
#include <napi.h>
#include <uv.h>

#include "errors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
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
std::string S(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::String>(); }
Napi::Value Num(const Napi::CallbackInfo& info, double v) { return Napi::Number::New(info.Env(), v); }

// openat(dirfd, name, flags, mode, uid, gid): fd
Napi::Value Openat(const Napi::CallbackInfo& info) {
  std::string name = S(info, 1);
  AsCaller as(L(info, 4), L(info, 5));
  int fd = openat(I(info, 0), name.c_str(), I(info, 2) | O_CLOEXEC, static_cast<mode_t>(I(info, 3)));
  if (fd < 0) return Fail(info.Env(), errno, "openat", name);
  return Num(info, fd);
}

// statx(dirfd, name, flags, out: Float64Array(24)): fills out
//  0 ino, 1 dev_major, 2 dev_minor, 3 mnt_id, 4 mode, 5 nlink, 6 uid, 7 gid, 8 rdev_major,
//  9 rdev_minor, 10 size, 11 blocks, 12 blksize, 13/14 atime s/ns, 15/16 mtime, 17/18 ctime,
//  19/20 btime, 21 mask, 22 attributes
Napi::Value Statx(const Napi::CallbackInfo& info) {
  std::string name = S(info, 1);
  Napi::Float64Array out = info[3].As<Napi::Float64Array>();
  struct statx sx;
  if (statx(I(info, 0), name.c_str(), I(info, 2), STATX_BASIC_STATS | STATX_BTIME | STATX_MNT_ID, &sx) < 0)
    return Fail(info.Env(), errno, "statx", name);
  double* o = out.Data();
  o[0] = sx.stx_ino; o[1] = sx.stx_dev_major; o[2] = sx.stx_dev_minor; o[3] = sx.stx_mnt_id;
  o[4] = sx.stx_mode; o[5] = sx.stx_nlink; o[6] = sx.stx_uid; o[7] = sx.stx_gid;
  o[8] = sx.stx_rdev_major; o[9] = sx.stx_rdev_minor; o[10] = sx.stx_size; o[11] = sx.stx_blocks;
  o[12] = sx.stx_blksize; o[13] = sx.stx_atime.tv_sec; o[14] = sx.stx_atime.tv_nsec;
  o[15] = sx.stx_mtime.tv_sec; o[16] = sx.stx_mtime.tv_nsec; o[17] = sx.stx_ctime.tv_sec;
  o[18] = sx.stx_ctime.tv_nsec; o[19] = sx.stx_btime.tv_sec; o[20] = sx.stx_btime.tv_nsec;
  o[21] = sx.stx_mask; o[22] = static_cast<double>(sx.stx_attributes);
  return info.Env().Undefined();
}

// mkdirat(dirfd, name, mode, uid, gid)
Napi::Value Mkdirat(const Napi::CallbackInfo& info) {
  std::string name = S(info, 1);
  AsCaller as(L(info, 3), L(info, 4));
  if (mkdirat(I(info, 0), name.c_str(), I(info, 2)) < 0) return Fail(info.Env(), errno, "mkdirat", name);
  return info.Env().Undefined();
}

// mknodat(dirfd, name, mode, dev, uid, gid)
Napi::Value Mknodat(const Napi::CallbackInfo& info) {
  std::string name = S(info, 1);
  AsCaller as(L(info, 4), L(info, 5));
  if (mknodat(I(info, 0), name.c_str(), I(info, 2), static_cast<dev_t>(L(info, 3))) < 0)
    return Fail(info.Env(), errno, "mknodat", name);
  return info.Env().Undefined();
}

// symlinkat(target, dirfd, name, uid, gid)
Napi::Value Symlinkat(const Napi::CallbackInfo& info) {
  std::string target = S(info, 0), name = S(info, 2);
  AsCaller as(L(info, 3), L(info, 4));
  if (symlinkat(target.c_str(), I(info, 1), name.c_str()) < 0) return Fail(info.Env(), errno, "symlinkat", name);
  return info.Env().Undefined();
}

// linkat(olddirfd, oldname, newdirfd, newname, flags, uid, gid)
Napi::Value Linkat(const Napi::CallbackInfo& info) {
  std::string oldname = S(info, 1), newname = S(info, 3);
  AsCaller as(L(info, 5), L(info, 6));
  if (linkat(I(info, 0), oldname.c_str(), I(info, 2), newname.c_str(), I(info, 4)) < 0)
    return Fail(info.Env(), errno, "linkat", newname);
  return info.Env().Undefined();
}

// unlinkat(dirfd, name, flags, uid, gid)
Napi::Value Unlinkat(const Napi::CallbackInfo& info) {
  std::string name = S(info, 1);
  AsCaller as(L(info, 3), L(info, 4));
  if (unlinkat(I(info, 0), name.c_str(), I(info, 2)) < 0) return Fail(info.Env(), errno, "unlinkat", name);
  return info.Env().Undefined();
}

// renameat2(olddirfd, oldname, newdirfd, newname, flags, uid, gid)
Napi::Value Renameat2(const Napi::CallbackInfo& info) {
  std::string oldname = S(info, 1), newname = S(info, 3);
  AsCaller as(L(info, 5), L(info, 6));
  if (syscall(SYS_renameat2, I(info, 0), oldname.c_str(), I(info, 2), newname.c_str(), I(info, 4)) < 0)
    return Fail(info.Env(), errno, "renameat2", oldname);
  return info.Env().Undefined();
}

// readlinkat(dirfd, name): Buffer
Napi::Value Readlinkat(const Napi::CallbackInfo& info) {
  std::string name = S(info, 1);
  std::vector<char> buf(4096);
  ssize_t n = readlinkat(I(info, 0), name.c_str(), buf.data(), buf.size());
  if (n < 0) return Fail(info.Env(), errno, "readlinkat", name);
  return Napi::Buffer<char>::Copy(info.Env(), buf.data(), n);
}

// fchownat(dirfd, name, uid, gid, flags)
Napi::Value Fchownat(const Napi::CallbackInfo& info) {
  std::string name = S(info, 1);
  if (fchownat(I(info, 0), name.c_str(), static_cast<uid_t>(L(info, 2)), static_cast<gid_t>(L(info, 3)), I(info, 4)) < 0)
    return Fail(info.Env(), errno, "fchownat", name);
  return info.Env().Undefined();
}

// utimensat(dirfd, name, atimeSec, atimeNsec, mtimeSec, mtimeNsec, flags); nsec may be UTIME_NOW/UTIME_OMIT
Napi::Value Utimensat(const Napi::CallbackInfo& info) {
  std::string name = S(info, 1);
  struct timespec ts[2];
  ts[0].tv_sec = L(info, 2); ts[0].tv_nsec = L(info, 3);
  ts[1].tv_sec = L(info, 4); ts[1].tv_nsec = L(info, 5);
  if (utimensat(I(info, 0), name.c_str(), ts, I(info, 6)) < 0)
    return Fail(info.Env(), errno, "utimensat", name);
  return info.Env().Undefined();
}

// readdir(dirfd): [names[], inos[], types[]] — the whole directory (a fresh
// O_DIRECTORY fd is opened on `dirfd` so the O_PATH fd is not consumed).
Napi::Value Readdir(const Napi::CallbackInfo& info) {
  int fd = openat(I(info, 0), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Fail(info.Env(), errno, "openat", ".");
  DIR* d = fdopendir(fd);
  if (!d) { int e = errno; close(fd); return Fail(info.Env(), e, "fdopendir"); }
  Napi::Env env = info.Env();
  Napi::Array names = Napi::Array::New(env), inos = Napi::Array::New(env), types = Napi::Array::New(env);
  uint32_t i = 0;
  errno = 0;
  while (struct dirent* e = readdir(d)) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    names.Set(i, Napi::String::New(env, e->d_name));
    inos.Set(i, Napi::Number::New(env, static_cast<double>(e->d_ino)));
    types.Set(i, Napi::Number::New(env, e->d_type));
    i++;
  }
  int err = errno;
  closedir(d);
  if (err) return Fail(env, err, "readdir");
  Napi::Array r = Napi::Array::New(env, 3);
  r.Set(0u, names); r.Set(1u, inos); r.Set(2u, types);
  return r;
}

// Extended attributes by path (the caller passes /proc/self/fd/N for an O_PATH fd).
Napi::Value Getxattr(const Napi::CallbackInfo& info) {
  std::string path = S(info, 0), name = S(info, 1);
  ssize_t n = getxattr(path.c_str(), name.c_str(), nullptr, 0);
  if (n < 0) return Fail(info.Env(), errno, "getxattr", name);
  std::vector<char> buf(n > 0 ? n : 1);
  n = getxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
  if (n < 0) return Fail(info.Env(), errno, "getxattr", name);
  return Napi::Buffer<char>::Copy(info.Env(), buf.data(), n);
}
Napi::Value Setxattr(const Napi::CallbackInfo& info) {
  std::string path = S(info, 0), name = S(info, 1);
  Napi::Uint8Array v = info[2].As<Napi::Uint8Array>();
  if (setxattr(path.c_str(), name.c_str(), v.Data(), v.ByteLength(), I(info, 3)) < 0)
    return Fail(info.Env(), errno, "setxattr", name);
  return info.Env().Undefined();
}
Napi::Value Listxattr(const Napi::CallbackInfo& info) {
  std::string path = S(info, 0);
  ssize_t n = listxattr(path.c_str(), nullptr, 0);
  if (n < 0) return Fail(info.Env(), errno, "listxattr", path);
  std::vector<char> buf(n > 0 ? n : 1);
  n = listxattr(path.c_str(), buf.data(), buf.size());
  if (n < 0) return Fail(info.Env(), errno, "listxattr", path);
  return Napi::Buffer<char>::Copy(info.Env(), buf.data(), n);
}
Napi::Value Removexattr(const Napi::CallbackInfo& info) {
  std::string path = S(info, 0), name = S(info, 1);
  if (removexattr(path.c_str(), name.c_str()) < 0) return Fail(info.Env(), errno, "removexattr", name);
  return info.Env().Undefined();
}

// nameToHandleAt(dirfd, name, flags): [handleBytes, mountId]
Napi::Value NameToHandleAt(const Napi::CallbackInfo& info) {
  std::string name = S(info, 1);
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

// fallocate(fd, mode, offset, length)
Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  if (fallocate(I(info, 0), I(info, 1), L(info, 2), L(info, 3)) < 0) return Fail(info.Env(), errno, "fallocate");
  return info.Env().Undefined();
}
// lseek(fd, offset, whence): offset
Napi::Value Lseek(const Napi::CallbackInfo& info) {
  off_t r = lseek(I(info, 0), L(info, 1), I(info, 2));
  if (r < 0) return Fail(info.Env(), errno, "lseek");
  return Num(info, static_cast<double>(r));
}
// copyFileRange(fdIn, offIn, fdOut, offOut, len, flags): bytes copied
Napi::Value CopyFileRange(const Napi::CallbackInfo& info) {
  loff_t offIn = L(info, 1), offOut = L(info, 3);
  ssize_t n = copy_file_range(I(info, 0), &offIn, I(info, 2), &offOut, L(info, 4), I(info, 5));
  if (n < 0) return Fail(info.Env(), errno, "copy_file_range");
  return Num(info, static_cast<double>(n));
}
// fcntlLock(fd, cmd, type, start, len, pid): for F_GETLK returns [type, start, len, pid]
Napi::Value FcntlLock(const Napi::CallbackInfo& info) {
  struct flock fl;
  memset(&fl, 0, sizeof(fl));
  fl.l_type = I(info, 2);
  fl.l_whence = SEEK_SET;
  fl.l_start = L(info, 3);
  fl.l_len = L(info, 4);
  fl.l_pid = I(info, 5);
  int cmd = I(info, 1);
  if (fcntl(I(info, 0), cmd, &fl) < 0) return Fail(info.Env(), errno, "fcntl");
  Napi::Array r = Napi::Array::New(info.Env(), 4);
  r.Set(0u, Num(info, fl.l_type)); r.Set(1u, Num(info, static_cast<double>(fl.l_start)));
  r.Set(2u, Num(info, static_cast<double>(fl.l_len))); r.Set(3u, Num(info, fl.l_pid));
  return r;
}
// flock(fd, op)
Napi::Value Flock(const Napi::CallbackInfo& info) {
  if (flock(I(info, 0), I(info, 1)) < 0) return Fail(info.Env(), errno, "flock");
  return info.Env().Undefined();
}
// fstatfs(fd, out: Float64Array(8)): blocks, bfree, bavail, files, ffree, bsize, namelen, frsize
Napi::Value Fstatfs(const Napi::CallbackInfo& info) {
  struct statfs s;
  if (fstatfs(I(info, 0), &s) < 0) return Fail(info.Env(), errno, "fstatfs");
  double* o = info[1].As<Napi::Float64Array>().Data();
  o[0] = s.f_blocks; o[1] = s.f_bfree; o[2] = s.f_bavail; o[3] = s.f_files; o[4] = s.f_ffree;
  o[5] = s.f_bsize; o[6] = s.f_namelen; o[7] = s.f_frsize;
  return info.Env().Undefined();
}
// syncfs(fd)
Napi::Value Syncfs(const Napi::CallbackInfo& info) {
  if (syncfs(I(info, 0)) < 0) return Fail(info.Env(), errno, "syncfs");
  return info.Env().Undefined();
}
// faccessat(dirfd, name, mode, flags, uid, gid): throws on denial
Napi::Value Faccessat(const Napi::CallbackInfo& info) {
  std::string name = S(info, 1);
  AsCaller as(L(info, 4), L(info, 5));
  if (faccessat(I(info, 0), name.c_str(), I(info, 2), I(info, 3)) < 0) return Fail(info.Env(), errno, "faccessat", name);
  return info.Env().Undefined();
}

// setFsIds(uid, gid): set this thread's fsuid/fsgid (used around Node's own sync fs calls;
// restore with our euid/egid).
Napi::Value SetFsIds(const Napi::CallbackInfo& info) {
  setfsgid(static_cast<gid_t>(L(info, 1)));
  setfsuid(static_cast<uid_t>(L(info, 0)));
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
  o.Set("readdir", Napi::Function::New(env, Readdir));
  o.Set("getxattr", Napi::Function::New(env, Getxattr));
  o.Set("setxattr", Napi::Function::New(env, Setxattr));
  o.Set("listxattr", Napi::Function::New(env, Listxattr));
  o.Set("removexattr", Napi::Function::New(env, Removexattr));
  o.Set("nameToHandleAt", Napi::Function::New(env, NameToHandleAt));
  o.Set("openByHandleAt", Napi::Function::New(env, OpenByHandleAt));
  o.Set("fallocate", Napi::Function::New(env, Fallocate));
  o.Set("lseek", Napi::Function::New(env, Lseek));
  o.Set("copyFileRange", Napi::Function::New(env, CopyFileRange));
  o.Set("fcntlLock", Napi::Function::New(env, FcntlLock));
  o.Set("flock", Napi::Function::New(env, Flock));
  o.Set("fstatfs", Napi::Function::New(env, Fstatfs));
  o.Set("syncfs", Napi::Function::New(env, Syncfs));
  o.Set("raiseNofile", Napi::Function::New(env, RaiseNofile));
  o.Set("faccessat", Napi::Function::New(env, Faccessat));
  o.Set("setFsIds", Napi::Function::New(env, SetFsIds));
  exports.Set("pt", o);
}

}  // namespace pt
