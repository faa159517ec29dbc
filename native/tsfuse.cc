// tsfuse native addon: only what JavaScript cannot do itself.
//
// The device (/dev/fuse open, FUSE_DEV_IOC_CLONE), mount(2)/umount2(2), fd
// passing for fusermount3 (socketpair + SCM_RIGHTS), the read wake-up (a
// uv_poll_t on the Node loop, reading until EAGAIN) and synchronous reply
// writes. Policy (which errno means what, retries) lives in TypeScript:
// read errors are handed to JavaScript as negative errno values; write and
// writev return -errno instead of throwing. Other failures throw errors shaped
// like Node's fs errors: { code, errno (negative), syscall, path }.
#include <napi.h>
#include <uv.h>

#include "errors.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <stddef.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace pt {
void Init(Napi::Env env, Napi::Object exports);  // native/pt.cc: the passthrough's *at syscalls
}
namespace uring {
void Init(Napi::Env env, Napi::Object exports);  // native/uring.cc: FUSE over io_uring
}

namespace {

// FUSE_DEV_IOC_CLONE = _IOR(229, 0, uint32_t); the local <linux/fuse.h> may be
// older than the kernel, so the value is written out (0x8004e500).
constexpr unsigned long kDevIocClone = 0x8004e500UL;

using tsfuse::ThrowErrno;

bool ArgsOk(const Napi::CallbackInfo& info, size_t n, const char* usage) {
  if (info.Length() < n) {
    Napi::TypeError::New(info.Env(), usage).ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// openDevice(path: string): number — O_RDWR|O_CLOEXEC|O_NONBLOCK
Napi::Value OpenDevice(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 1, "openDevice(path)")) return info.Env().Undefined();
  std::string path = info[0].As<Napi::String>();
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ThrowErrno(info.Env(), errno, "open", path);
  return Napi::Number::New(info.Env(), fd);
}

// mount(source, target, fstype, flags, data): undefined
Napi::Value Mount(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 5, "mount(source, target, fstype, flags, data)")) return info.Env().Undefined();
  std::string source = info[0].As<Napi::String>();
  std::string target = info[1].As<Napi::String>();
  std::string fstype = info[2].As<Napi::String>();
  unsigned long flags = info[3].As<Napi::Number>().Int64Value();
  std::string data = info[4].As<Napi::String>();
  if (mount(source.c_str(), target.c_str(), fstype.c_str(), flags, data.c_str()) < 0)
    return ThrowErrno(info.Env(), errno, "mount", target);
  return info.Env().Undefined();
}

// umount2(target, flags): undefined
Napi::Value Umount2(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 2, "umount2(target, flags)")) return info.Env().Undefined();
  std::string target = info[0].As<Napi::String>();
  int flags = info[1].As<Napi::Number>().Int32Value();
  if (umount2(target.c_str(), flags) < 0) return ThrowErrno(info.Env(), errno, "umount2", target);
  return info.Env().Undefined();
}

// cloneDevice(fd): number — a new /dev/fuse fd attached to fd's connection
Napi::Value CloneDevice(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 1, "cloneDevice(fd)")) return info.Env().Undefined();
  uint32_t src = info[0].As<Napi::Number>().Uint32Value();
  int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ThrowErrno(info.Env(), errno, "open", "/dev/fuse");
  if (ioctl(fd, kDevIocClone, &src) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(info.Env(), err, "ioctl", "FUSE_DEV_IOC_CLONE");
  }
  return Napi::Number::New(info.Env(), fd);
}

// FUSE_DEV_IOC_BACKING_OPEN = _IOW(229, 1, struct fuse_backing_map), BACKING_CLOSE =
// _IOW(229, 2, uint32_t) (7.40; not in the local header).
constexpr unsigned long kDevIocBackingOpen = 0x4010e501UL;
constexpr unsigned long kDevIocBackingClose = 0x4004e502UL;
struct BackingMap {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};

// backingOpen(devFd, fd): a backing id (> 0) for FOPEN_PASSTHROUGH, or -errno (EPERM without
// CAP_SYS_ADMIN or with writeback cache, EOPNOTSUPP without passthrough): never throws.
Napi::Value BackingOpen(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 2, "backingOpen(devFd, fd)")) return info.Env().Undefined();
  BackingMap map = {info[1].As<Napi::Number>().Int32Value(), 0, 0};
  int id = ioctl(info[0].As<Napi::Number>().Int32Value(), kDevIocBackingOpen, &map);
  return Napi::Number::New(info.Env(), id < 0 ? -errno : id);
}

// close(fd): 0 or -errno (Node's closeSync warns in a worker thread about an fd its fs
// module did not open there: the device fds of a threaded session are the addon's).
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 1, "close(fd)")) return info.Env().Undefined();
  int r = close(info[0].As<Napi::Number>().Int32Value());
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// backingClose(devFd, id): 0 or -errno.
Napi::Value BackingClose(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 2, "backingClose(devFd, id)")) return info.Env().Undefined();
  uint32_t id = info[1].As<Napi::Number>().Uint32Value();
  int r = ioctl(info[0].As<Napi::Number>().Int32Value(), kDevIocBackingClose, &id);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// setNonBlocking(fd, on): undefined
Napi::Value SetNonBlocking(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 2, "setNonBlocking(fd, on)")) return info.Env().Undefined();
  int fd = info[0].As<Napi::Number>().Int32Value();
  bool on = info[1].ToBoolean();
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK)) < 0)
    return ThrowErrno(info.Env(), errno, "fcntl");
  return info.Env().Undefined();
}

// socketpair(): [number, number] — AF_UNIX stream pair, both close-on-exec
// (child_process.spawn dup2()s the one it passes, which clears the flag).
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return ThrowErrno(info.Env(), errno, "socketpair");
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, Napi::Number::New(info.Env(), sv[0]));
  a.Set(1u, Napi::Number::New(info.Env(), sv[1]));
  return a;
}

// sendFd(sock, fd): undefined — sends `fd` with SCM_RIGHTS (one byte of data, 'F').
Napi::Value SendFd(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 2, "sendFd(sock, fd)")) return info.Env().Undefined();
  int sock = info[0].As<Napi::Number>().Int32Value();
  int fd = info[1].As<Napi::Number>().Int32Value();
  char byte = 'F';
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  memset(&ctl, 0, sizeof(ctl));
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof(ctl.buf);
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ssize_t n;
  do n = sendmsg(sock, &msg, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  if (n < 0) return ThrowErrno(info.Env(), errno, "sendmsg");
  return info.Env().Undefined();
}

// dup2(oldfd, newfd): undefined — for pointing stdout/stderr elsewhere once a daemon is ready.
Napi::Value Dup2(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 2, "dup2(oldfd, newfd)")) return info.Env().Undefined();
  int a = info[0].As<Napi::Number>().Int32Value();
  int b = info[1].As<Napi::Number>().Int32Value();
  int r;
  do r = dup2(a, b); while (r < 0 && errno == EINTR);
  if (r < 0) return ThrowErrno(info.Env(), errno, "dup2");
  return info.Env().Undefined();
}

// notifySocket(path, message): 0 or -errno — one datagram to a unix socket (systemd's
// NOTIFY_SOCKET; a leading '@' names an abstract socket).
Napi::Value NotifySocket(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 2, "notifySocket(path, message)")) return info.Env().Undefined();
  std::string path = info[0].As<Napi::String>();
  std::string text = info[1].As<Napi::String>();
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path)) return Napi::Number::New(info.Env(), -EINVAL);
  memcpy(sa.sun_path, path.data(), path.size());
  if (path[0] == '@') sa.sun_path[0] = 0;
  socklen_t len = offsetof(struct sockaddr_un, sun_path) + path.size();
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return Napi::Number::New(info.Env(), -errno);
  ssize_t n = sendto(s, text.data(), text.size(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&sa), len);
  int err = n < 0 ? errno : 0;
  close(s);
  return Napi::Number::New(info.Env(), -err);
}

// mapShared(fd, length): ArrayBuffer — the first `length` bytes of the file, mapped
// MAP_SHARED read-write: stores reach the page cache, so they outlive the process (the
// takeover journal). Unmapped when the ArrayBuffer is collected.
Napi::Value MapShared(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 2, "mapShared(fd, length)")) return info.Env().Undefined();
  int fd = info[0].As<Napi::Number>().Int32Value();
  size_t len = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  if (len == 0) return ThrowErrno(info.Env(), EINVAL, "mmap");
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ThrowErrno(info.Env(), errno, "mmap");
  return Napi::ArrayBuffer::New(
      info.Env(), p, len, [](Napi::Env, void* data, size_t* hint) { munmap(data, *hint); delete hint; }, new size_t(len));
}

// recvFd(sock): number — receives one fd sent with SCM_RIGHTS; -1 on EOF.
Napi::Value RecvFd(const Napi::CallbackInfo& info) {
  if (!ArgsOk(info, 1, "recvFd(sock)")) return info.Env().Undefined();
  int sock = info[0].As<Napi::Number>().Int32Value();
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof(ctl.buf);
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  if (n < 0) return ThrowErrno(info.Env(), errno, "recvmsg");
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (n == 0 || !c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
    return Napi::Number::New(info.Env(), -1);
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return Napi::Number::New(info.Env(), fd);
}

// write(fd, bytes, len): number — bytes written, or -errno (never throws)
Napi::Value Write(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Uint8Array b = info[1].As<Napi::Uint8Array>();
  size_t len = info[2].As<Napi::Number>().Uint32Value();
  if (len > b.ByteLength()) len = b.ByteLength();
  ssize_t n = write(fd, b.Data(), len);
  return Napi::Number::New(info.Env(), n < 0 ? -errno : n);
}

// writev(fd, chunks: Uint8Array[]): number — bytes written, or -errno
Napi::Value Writev(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Array arr = info[1].As<Napi::Array>();
  uint32_t cnt = arr.Length();
  if (cnt > 64) cnt = 64;
  struct iovec iov[64];
  for (uint32_t i = 0; i < cnt; i++) {
    Napi::Uint8Array b = arr.Get(i).As<Napi::Uint8Array>();
    iov[i].iov_base = b.Data();
    iov[i].iov_len = b.ByteLength();
  }
  ssize_t n = writev(fd, iov, cnt);
  return Napi::Number::New(info.Env(), n < 0 ? -errno : n);
}

// Reader: watches a non-blocking /dev/fuse fd with a uv_poll_t on the Node
// loop. When it is readable, reads requests into the caller's buffer until
// EAGAIN (at most kBudget per wake-up) and calls onRead(n) once per read, with
// n > 0 the request length or n < 0 a read error (-errno). onRead returning
// false stops this round. The buffer is borrowed: its content is valid only
// during the onRead call.
//
// Lifetime: only a started Reader is reachable from a GC root. Between start()
// and stop() it holds itself, the buffer and onRead strongly (the loop may call
// it at any time); otherwise all three references are weak. They must be: onRead
// is normally a closure over the session that owns this Reader, so a strong
// reference from here is a cycle through a root that the GC can never break, and
// every Server, FileSystem and read buffer of every past mount would stay alive.
// stop() is idempotent, may be called from inside onRead, and nothing is called
// after it (the read loop checks handle_ after every call).
class Reader : public Napi::ObjectWrap<Reader> {
 public:
  static constexpr int kBudget = 256;

  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Reader",
                       {InstanceMethod("start", &Reader::Start), InstanceMethod("stop", &Reader::Stop)});
  }

  // new Reader(fd, buffer, onRead)
  explicit Reader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Reader>(info) {
    if (info.Length() < 3) {
      Napi::TypeError::New(info.Env(), "new Reader(fd, buffer, onRead)").ThrowAsJavaScriptException();
      return;
    }
    fd_ = info[0].As<Napi::Number>().Int32Value();
    Napi::Uint8Array b = info[1].As<Napi::Uint8Array>();
    buf_ = b.Data();
    cap_ = b.ByteLength();
    bufRef_ = Napi::Weak(b.As<Napi::Object>());
    cb_ = Napi::Weak(info[2].As<Napi::Function>());
    ctx_ = new Napi::AsyncContext(info.Env(), "tsfuse.Reader");
  }

  // Normally stopped by now (a started Reader is not collected); at environment
  // teardown it may not be: detach the poll handle so it never calls back.
  ~Reader() override {
    CloseHandle();
    delete ctx_;
  }

 private:
  struct Handle {
    uv_poll_t poll;
    Reader* owner;
  };

  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (handle_) return info.Env().Undefined();
    if (bufRef_.Value().IsEmpty() || cb_.Value().IsEmpty()) {
      Napi::Error::New(info.Env(), "Reader.start: the buffer or callback was garbage-collected").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    uv_loop_t* loop;
    napi_get_uv_event_loop(info.Env(), &loop);
    handle_ = new Handle{};
    handle_->owner = this;
    handle_->poll.data = handle_;
    int r = uv_poll_init(loop, &handle_->poll, fd_);
    if (r != 0) {  // no handle was registered with the loop
      delete handle_;
      handle_ = nullptr;
      return ThrowErrno(info.Env(), -r, "uv_poll_init");
    }
    r = uv_poll_start(&handle_->poll, UV_READABLE, OnPoll);
    if (r != 0) {  // an initialised handle is freed only through uv_close
      CloseHandle();
      return ThrowErrno(info.Env(), -r, "uv_poll_start");
    }
    // Strong while the loop may call us (see "Lifetime" above).
    Ref();
    bufRef_.Ref();
    cb_.Ref();
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopPolling();
    return info.Env().Undefined();
  }

  void StopPolling() {
    if (!handle_) return;
    CloseHandle();
    cb_.Unref();
    bufRef_.Unref();
    Unref();
  }

  // Stops and closes the poll handle; the Handle is freed by uv_close's callback,
  // and does not point back at this Reader any more.
  void CloseHandle() {
    if (!handle_) return;
    Handle* h = handle_;
    handle_ = nullptr;
    h->owner = nullptr;
    uv_poll_stop(&h->poll);
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), [](uv_handle_t* p) { delete static_cast<Handle*>(p->data); });
  }

  static void OnPoll(uv_poll_t* p, int status, int /*events*/) {
    Reader* r = static_cast<Handle*>(p->data)->owner;
    if (!r) return;
    napi_env env = r->Env();
    Napi::HandleScope scope(env);
    // onRead may stop us (weakening every reference); this local keeps the Reader,
    // and so ctx_, alive until the scope closes, after the callback scope below.
    [[maybe_unused]] Napi::Object self = r->Value();
    // One callback scope per wake-up: microtasks (promise replies) run when it closes.
    Napi::CallbackScope cbscope(env, *r->ctx_);
    // Raw N-API on the per-request path: no handle scope, vector or escape per call.
    napi_value fn, recv;
    if (napi_get_reference_value(env, r->cb_, &fn) != napi_ok || fn == nullptr ||
        napi_get_undefined(env, &recv) != napi_ok)
      return;
    // Read until EAGAIN only while batches come (one client at a time sends one request per
    // wake-up: the read that would answer EAGAIN is a wasted syscall; the poller is level-
    // triggered, so a request that came meanwhile wakes us again at once). Every 16th
    // wake-up drains anyway, to notice when batches start.
    bool drain = r->batching_ || (++r->wakeups_ & 15) == 0;
    int got = 0;
    for (int i = 0; i < kBudget && r->handle_; i++) {
      if (got == 1 && !drain) break;
      ssize_t n = read(r->fd_, r->buf_, r->cap_);
      if (n >= 0) got++;
      int32_t res;
      if (n >= 0) {
        res = static_cast<int32_t>(n);  // at most the buffer size (a few MiB)
      } else if (errno == EAGAIN) {
        if (status >= 0) break;
        res = status;  // the poll itself failed (e.g. fd gone): report it
      } else {
        res = -errno;
      }
      napi_value arg, ret;
      napi_create_int32(env, res, &arg);
      if (!tsfuse::CallFromLoop(env, recv, fn, 1, &arg, &ret)) return;
      bool more = true;
      if (napi_get_value_bool(env, ret, &more) == napi_ok && !more) break;  // not a boolean: go on
    }
    if (drain) r->batching_ = got > 1;
  }

  int fd_ = -1;
  bool batching_ = true;  // the last draining wake-up found more than one request
  unsigned wakeups_ = 0;
  uint8_t* buf_ = nullptr;
  size_t cap_ = 0;
  // Weak unless started (see "Lifetime" above).
  Napi::ObjectReference bufRef_;
  Napi::FunctionReference cb_;
  Napi::AsyncContext* ctx_ = nullptr;
  // Set exactly while started; owned by this Reader until CloseHandle hands it to uv_close.
  Handle* handle_ = nullptr;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("openDevice", Napi::Function::New(env, OpenDevice));
  exports.Set("mount", Napi::Function::New(env, Mount));
  exports.Set("umount2", Napi::Function::New(env, Umount2));
  exports.Set("cloneDevice", Napi::Function::New(env, CloneDevice));
  exports.Set("backingOpen", Napi::Function::New(env, BackingOpen));
  exports.Set("close", Napi::Function::New(env, CloseFd));
  exports.Set("backingClose", Napi::Function::New(env, BackingClose));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking));
  exports.Set("socketpair", Napi::Function::New(env, SocketPair));
  exports.Set("recvFd", Napi::Function::New(env, RecvFd));
  exports.Set("sendFd", Napi::Function::New(env, SendFd));
  exports.Set("dup2", Napi::Function::New(env, Dup2));
  exports.Set("mapShared", Napi::Function::New(env, MapShared));
  exports.Set("notifySocket", Napi::Function::New(env, NotifySocket));
  exports.Set("write", Napi::Function::New(env, Write));
  exports.Set("writev", Napi::Function::New(env, Writev));
  exports.Set("Reader", Reader::Init(env));
  pt::Init(env, exports);
  uring::Init(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(tsfuse, Init)
