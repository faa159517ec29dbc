// The passthrough's data and directory I/O, off the JavaScript thread.
//
// pread, pwrite, fsync and getdents64 may block for as long as the source
// takes (a network filesystem, a FUSE source, a disk under load): each runs
// on the libuv thread pool and answers a Promise, so the protocol loop keeps
// serving other requests (FORGET and INTERRUPT included) meanwhile. None of
// them needs the caller's credentials: they act on an fd opened for the
// caller before. The buffer a call reads into or writes from is held by a
// reference until the call is done; the fd must stay open until the promise
// settles (the JavaScript side counts calls in flight before it closes one).
#include <napi.h>

#include "errors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <functional>
#include <utility>

namespace pt {

int I(const Napi::CallbackInfo& info, size_t i);
bool View(const Napi::CallbackInfo& info, size_t i, void** data, size_t* bytes);
bool Offset(const Napi::CallbackInfo& info, size_t i, int64_t* out, bool nonNegative);

namespace {

// One call on the thread pool: `fn` returns a count (≥ 0) or -1 with errno.
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, const char* name, Napi::Value keep, std::function<long()> fn)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), name_(name), fn_(std::move(fn)) {
    if (keep.IsObject()) keep_ = Napi::Persistent(keep.As<Napi::Object>());
  }
  Napi::Promise Start() {
    Napi::Promise p = deferred_.Promise();
    Queue();  // deletes itself after OnOK
    return p;
  }

 protected:
  void Execute() override {
    errno = 0;
    result_ = fn_();
    err_ = result_ < 0 ? errno : 0;
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (result_ < 0) deferred_.Reject(tsfuse::ErrnoError(env, err_, name_).Value());
    else deferred_.Resolve(Napi::Number::New(env, static_cast<double>(result_)));
  }

 private:
  Napi::Promise::Deferred deferred_;
  const char* name_;
  std::function<long()> fn_;
  Napi::ObjectReference keep_;
  long result_ = 0;
  int err_ = 0;
};

// A Promise already rejected with `err` (bad arguments: no job is queued).
Napi::Value Rejected(Napi::Env env, int err, const char* name) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Reject(tsfuse::ErrnoError(env, err, name).Value());
  return d.Promise();
}

// preadAsync(fd, buf, pos) / pwriteAsync(fd, data, pos): Promise of the bytes read into buf (up
// to its length) or written. EINVAL for pos < 0 or ≥ 2^63.
template <bool kWrite>
Napi::Value PositionalAsync(const Napi::CallbackInfo& info) {
  const char* name = kWrite ? "pwrite" : "pread";
  void* data;
  size_t len;
  int64_t pos;
  if (!View(info, 1, &data, &len) || !Offset(info, 2, &pos, true)) return Rejected(info.Env(), EINVAL, name);
  int fd = I(info, 0);
  auto fn = [=]() -> long {
    return kWrite ? pwrite(fd, data, len, pos) : pread(fd, data, len, pos);
  };
  return (new Job(info.Env(), name, info[1], fn))->Start();
}

// fsyncAsync(fd, datasync): Promise of 0.
Napi::Value FsyncAsync(const Napi::CallbackInfo& info) {
  int fd = I(info, 0);
  bool datasync = info[1].ToBoolean().Value();
  auto fn = [=]() -> long { return datasync ? fdatasync(fd) : fsync(fd); };
  return (new Job(info.Env(), datasync ? "fdatasync" : "fsync", info.Env().Undefined(), fn))->Start();
}

// getdentsAsync(fd, buf, seek, pos): Promise of the bytes of linux_dirent64 records read into
// buf (0 at the end). seek: lseek(fd, pos) first (pos: a d_off the source gave, any int64 —
// some filesystems hand out negative ones —, or 0); else go on from where the last call stopped.
Napi::Value GetdentsAsync(const Napi::CallbackInfo& info) {
  void* data;
  size_t len;
  int64_t pos;
  if (!View(info, 1, &data, &len) || !Offset(info, 3, &pos, false)) return Rejected(info.Env(), EINVAL, "getdents64");
  int fd = I(info, 0);
  bool seek = info[2].ToBoolean().Value();
  auto fn = [=]() -> long {
    if (seek && lseek(fd, pos, SEEK_SET) < 0) return -1;
    return syscall(SYS_getdents64, fd, data, len);
  };
  return (new Job(info.Env(), "getdents64", info[1], fn))->Start();
}

}  // namespace

void InitIo(Napi::Env env, Napi::Object o) {
  o.Set("preadAsync", Napi::Function::New(env, PositionalAsync<false>));
  o.Set("pwriteAsync", Napi::Function::New(env, PositionalAsync<true>));
  o.Set("fsyncAsync", Napi::Function::New(env, FsyncAsync));
  o.Set("getdentsAsync", Napi::Function::New(env, GetdentsAsync));
}

}  // namespace pt
