// FUSE over io_uring (Linux 6.14+, fs/fuse/dev_uring.c), raw io_uring syscalls.
//
// One ring per queue, one queue per possible CPU (the kernel puts a request on
// the queue of the CPU its caller runs on, and activates the rings only when
// every queue has registered entries). Each entry is a header block
// (fuse_uring_req_header: in_out, op_in, ring_ent_in_out) and a payload buffer,
// registered with FUSE_IO_URING_CMD_REGISTER; a completion with res 0 means a
// request sits in the entry. The entry is assembled into the /dev/fuse layout
// (fuse_in_header, the op's header, then the rest) in the caller's buffer, so
// the request path is the same as for read(2); the reply's out header goes to
// in_out, its body to the payload, and COMMIT_AND_FETCH hands the entry back.
//
// Every ring fd is watched by a uv_poll_t on the Node loop (a ring fd polls
// readable when completions wait), like the /dev/fuse Reader: requests are
// served on the JavaScript thread. Commits made while completions are being
// handled are submitted together at the end, one io_uring_enter per wake-up;
// a reply made later (an async handler) is submitted at once.
#include <napi.h>
#include <uv.h>

#include "errors.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

namespace uring {

constexpr uint32_t kCmdRegister = 1;
constexpr uint32_t kCmdCommitAndFetch = 2;
constexpr size_t kInHeader = 40;   // fuse_in_header
constexpr size_t kOutHeader = 16;  // fuse_out_header

struct EntInOut {
  uint64_t flags;
  uint64_t commit_id;
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
};
struct ReqHeader {
  uint8_t in_out[128];
  uint8_t op_in[128];
  EntInOut ring;
};
struct CmdReq {
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};

struct Ring {
  int fd = -1;
  unsigned *sq_head = nullptr, *sq_tail = nullptr, *sq_mask = nullptr, *sq_array = nullptr;
  unsigned *cq_head = nullptr, *cq_tail = nullptr, *cq_mask = nullptr;
  io_uring_cqe* cqes = nullptr;
  uint8_t* sqes = nullptr;
  void* sqMap = nullptr;
  void* cqMap = nullptr;
  size_t sqSize = 0, cqSize = 0, sqesSize = 0;
  unsigned pending = 0;  // SQEs prepared, not yet submitted
};

int RingInit(Ring* r, unsigned entries) {
  io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_SQE128;
  int fd = static_cast<int>(syscall(__NR_io_uring_setup, entries, &p));
  if (fd < 0) return -errno;
  r->fd = fd;
  r->sqSize = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cqSize = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  bool single = p.features & IORING_FEAT_SINGLE_MMAP;
  if (single) r->sqSize = r->cqSize = r->sqSize > r->cqSize ? r->sqSize : r->cqSize;
  r->sqMap = mmap(nullptr, r->sqSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (r->sqMap == MAP_FAILED) return -errno;
  r->cqMap = single ? r->sqMap : mmap(nullptr, r->cqSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
  if (r->cqMap == MAP_FAILED) return -errno;
  r->sqesSize = p.sq_entries * 128;
  void* s = mmap(nullptr, r->sqesSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (s == MAP_FAILED) return -errno;
  r->sqes = static_cast<uint8_t*>(s);
  uint8_t* sq = static_cast<uint8_t*>(r->sqMap);
  uint8_t* cq = static_cast<uint8_t*>(r->cqMap);
  r->sq_head = reinterpret_cast<unsigned*>(sq + p.sq_off.head);
  r->sq_tail = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
  r->sq_mask = reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
  r->sq_array = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
  r->cq_head = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
  r->cq_tail = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
  r->cq_mask = reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
  r->cqes = reinterpret_cast<io_uring_cqe*>(cq + p.cq_off.cqes);
  return 0;
}

void RingFree(Ring* r) {
  if (r->sqes) munmap(r->sqes, r->sqesSize);
  if (r->cqMap && r->cqMap != MAP_FAILED && r->cqMap != r->sqMap) munmap(r->cqMap, r->cqSize);
  if (r->sqMap && r->sqMap != MAP_FAILED) munmap(r->sqMap, r->sqSize);
  if (r->fd >= 0) close(r->fd);
  *r = Ring();
}

io_uring_sqe* RingSqe(Ring* r) {
  unsigned tail = *r->sq_tail + r->pending;
  unsigned idx = tail & *r->sq_mask;
  io_uring_sqe* s = reinterpret_cast<io_uring_sqe*>(r->sqes + idx * 128);
  memset(s, 0, 128);
  r->sq_array[idx] = idx;
  r->pending++;
  return s;
}

// Submits the prepared SQEs; 0 or -errno.
int RingSubmit(Ring* r) {
  if (!r->pending) return 0;
  unsigned n = r->pending;
  __atomic_store_n(r->sq_tail, *r->sq_tail + n, __ATOMIC_RELEASE);
  r->pending = 0;
  for (;;) {
    long ret = syscall(__NR_io_uring_enter, r->fd, n, 0, 0, nullptr, static_cast<size_t>(_NSIG / 8));
    if (ret >= 0) return 0;
    if (errno != EINTR && errno != EAGAIN && errno != EBUSY) return -errno;
  }
}

struct Ent {
  ReqHeader hdr __attribute__((aligned(64)));
  uint8_t* payload = nullptr;
  iovec iov[2];
};

class Uring;
struct Queue {
  Uring* owner = nullptr;
  uint16_t qid = 0;
  Ring ring;
  uv_poll_t* poll = nullptr;
};

class Uring : public Napi::ObjectWrap<Uring> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Uring", {
      InstanceMethod("start", &Uring::Start), InstanceMethod("commit", &Uring::Commit),
      InstanceMethod("commitv", &Uring::Commitv), InstanceMethod("answer", &Uring::Answer), InstanceMethod("stop", &Uring::Stop),
    });
  }

  // new Uring(devFd, queues, entriesPerQueue, payloadSize, buffer, onRequest(n, ent))
  explicit Uring(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Uring>(info) {
    if (info.Length() < 6) {
      Napi::TypeError::New(info.Env(), "new Uring(devFd, queues, entries, payloadSize, buffer, onRequest)").ThrowAsJavaScriptException();
      return;
    }
    devFd_ = info[0].As<Napi::Number>().Int32Value();
    nq_ = info[1].As<Napi::Number>().Uint32Value();
    ne_ = info[2].As<Napi::Number>().Uint32Value();
    payloadSize_ = info[3].As<Napi::Number>().Uint32Value();
    Napi::Uint8Array b = info[4].As<Napi::Uint8Array>();
    buf_ = b.Data();
    cap_ = b.ByteLength();
    bufRef_ = Napi::Persistent(b.As<Napi::Object>());
    cb_ = Napi::Persistent(info[5].As<Napi::Function>());
    ctx_ = new Napi::AsyncContext(info.Env(), "tsfuse.Uring");
  }
  ~Uring() override {
    Teardown();
    delete ctx_;
  }

 private:
  // start(): sets up the rings, registers every entry; throws on failure (nothing left behind).
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!queues_.empty()) return env.Undefined();
    if (nq_ == 0 || ne_ == 0 || nq_ > 1024 || ne_ > 256) return tsfuse::ThrowErrno(env, EINVAL, "uring");
    uv_loop_t* loop;
    napi_get_uv_event_loop(env, &loop);
    ents_.resize(static_cast<size_t>(nq_) * ne_, nullptr);
    queues_.resize(nq_, nullptr);
    for (unsigned q = 0; q < nq_; q++) {
      Queue* qu = queues_[q] = new Queue();
      qu->owner = this;
      qu->qid = static_cast<uint16_t>(q);
      int rc = RingInit(&qu->ring, ne_ * 2);
      if (rc < 0) return Fail(env, -rc, "io_uring_setup");
      for (unsigned i = 0; i < ne_; i++) {
        void* mem = nullptr;
        if (posix_memalign(&mem, 64, sizeof(Ent)) != 0) return Fail(env, ENOMEM, "uring");
        Ent* e = new (mem) Ent();
        if (posix_memalign(reinterpret_cast<void**>(&e->payload), 4096, payloadSize_) != 0) return Fail(env, ENOMEM, "uring");
        ents_[q * ne_ + i] = e;
        e->iov[0] = {&e->hdr, sizeof e->hdr};
        e->iov[1] = {e->payload, payloadSize_};
        Prep(qu, q * ne_ + i, kCmdRegister, 0);
      }
      rc = RingSubmit(&qu->ring);
      if (rc < 0) return Fail(env, -rc, "io_uring_enter(REGISTER)");
      qu->poll = new uv_poll_t;
      qu->poll->data = qu;
      rc = uv_poll_init(loop, qu->poll, qu->ring.fd);
      if (rc != 0) {
        delete qu->poll;
        qu->poll = nullptr;
        return Fail(env, -rc, "uv_poll_init");
      }
      uv_poll_start(qu->poll, UV_READABLE, OnPoll);
    }
    Ref();
    refd_ = true;
    return env.Undefined();
  }

  Napi::Value Fail(Napi::Env env, int err, const char* what) {
    Teardown();
    return tsfuse::ThrowErrno(env, err, what);
  }

  // commit(ent, bytes, len): the reply (out header, then body) for the request in `ent`; 0 or -errno.
  Napi::Value Commit(const Napi::CallbackInfo& info) {
    uint32_t ent = info[0].As<Napi::Number>().Uint32Value();
    Napi::Uint8Array b = info[1].As<Napi::Uint8Array>();
    size_t len = info[2].As<Napi::Number>().Uint32Value();
    if (len > b.ByteLength()) len = b.ByteLength();
    const uint8_t* parts[2] = {b.Data(), b.Data() + kOutHeader};
    size_t sizes[2] = {kOutHeader, len > kOutHeader ? len - kOutHeader : 0};
    return Napi::Number::New(info.Env(), len < kOutHeader ? -EINVAL : Finish(ent, parts, sizes, 2));
  }

  // commitv(ent, chunks): the same from [header, body...].
  Napi::Value Commitv(const Napi::CallbackInfo& info) {
    uint32_t ent = info[0].As<Napi::Number>().Uint32Value();
    Napi::Array a = info[1].As<Napi::Array>();
    uint32_t n = a.Length();
    if (n == 0 || n > 8) return Napi::Number::New(info.Env(), -EINVAL);
    const uint8_t* parts[8];
    size_t sizes[8];
    for (uint32_t i = 0; i < n; i++) {
      Napi::Uint8Array c = a.Get(i).As<Napi::Uint8Array>();
      parts[i] = c.Data();
      sizes[i] = c.ByteLength();
    }
    if (sizes[0] != kOutHeader) return Napi::Number::New(info.Env(), -EINVAL);
    return Napi::Number::New(info.Env(), Finish(ent, parts, sizes, n));
  }

  // Copies the reply into entry `ent` and queues its COMMIT_AND_FETCH: bytes or -errno.
  long Finish(uint32_t ent, const uint8_t* const* parts, const size_t* sizes, uint32_t n) {
    if (ent >= ents_.size() || !ents_[ent] || stopped_) return -ENODEV;
    Ent* e = ents_[ent];
    size_t body = 0;
    for (uint32_t i = 1; i < n; i++) body += sizes[i];
    if (body > payloadSize_) {  // answered EIO, so the entry comes back (the caller learns -EINVAL)
      Fail(ent, -EIO);
      return -EINVAL;
    }
    memcpy(e->hdr.in_out, parts[0], kOutHeader);
    size_t at = 0;
    for (uint32_t i = 1; i < n; i++) {
      memcpy(e->payload + at, parts[i], sizes[i]);
      at += sizes[i];
    }
    e->hdr.ring.payload_sz = static_cast<uint32_t>(body);
    Queue* q = queues_[ent / ne_];
    Prep(q, ent, kCmdCommitAndFetch, e->hdr.ring.commit_id);
    if (!inPoll_) {
      int rc = RingSubmit(&q->ring);
      if (rc < 0) return rc;
    }
    return static_cast<long>(kOutHeader + body);
  }

  // Answers the request in `ent` with `err` (negative) and no body, and hands the entry back.
  void Fail(uint32_t ent, int32_t err) {
    Ent* e = ents_[ent];
    uint64_t unique;
    memcpy(&unique, e->hdr.in_out + 8, 8);  // fuse_in_header.unique, still in place
    uint32_t len = kOutHeader;
    memcpy(e->hdr.in_out, &len, 4);
    memcpy(e->hdr.in_out + 4, &err, 4);
    memcpy(e->hdr.in_out + 8, &unique, 8);
    e->hdr.ring.payload_sz = 0;
    Queue* q = queues_[ent / ne_];
    Prep(q, ent, kCmdCommitAndFetch, e->hdr.ring.commit_id);
    if (!inPoll_) RingSubmit(&q->ring);
  }

  // answer(ent, errno): the request in `ent` gets no reply from the server (a notice, a request
  // that came as the session ended): answered with -errno (0: success, no body), so the entry
  // comes back. 0 or -errno.
  Napi::Value Answer(const Napi::CallbackInfo& info) {
    uint32_t ent = info[0].As<Napi::Number>().Uint32Value();
    int32_t err = info[1].As<Napi::Number>().Int32Value();
    if (ent >= ents_.size() || !ents_[ent] || stopped_) return Napi::Number::New(info.Env(), -ENODEV);
    Fail(ent, -err);
    return Napi::Number::New(info.Env(), 0);
  }

  void Prep(Queue* q, uint32_t ent, uint32_t op, uint64_t commitId) {
    io_uring_sqe* s = RingSqe(&q->ring);
    s->opcode = IORING_OP_URING_CMD;
    s->fd = devFd_;
    s->cmd_op = op;
    s->user_data = ent;
    if (op == kCmdRegister) {
      s->addr = reinterpret_cast<uint64_t>(ents_[ent]->iov);
      s->len = 2;
    }
    CmdReq* c = reinterpret_cast<CmdReq*>(s->cmd);
    c->qid = q->qid;
    c->commit_id = commitId;
    c->flags = 0;
  }

  static void OnPoll(uv_poll_t* p, int /*status*/, int /*events*/) {
    Queue* q = static_cast<Queue*>(p->data);
    Uring* u = q->owner;
    if (!u || u->stopped_) return;
    napi_env env = u->Env();
    Napi::HandleScope scope(env);
    [[maybe_unused]] Napi::Object self = u->Value();
    Napi::CallbackScope cbscope(env, *u->ctx_);
    napi_value fn, recv;
    if (napi_get_reference_value(env, u->cb_, &fn) != napi_ok || napi_get_undefined(env, &recv) != napi_ok) return;
    u->inPoll_ = true;
    unsigned head = *q->ring.cq_head;
    unsigned tail = __atomic_load_n(q->ring.cq_tail, __ATOMIC_ACQUIRE);
    while (head != tail && !u->stopped_) {
      io_uring_cqe* c = &q->ring.cqes[head & *q->ring.cq_mask];
      uint32_t ent = static_cast<uint32_t>(c->user_data);
      int32_t res = c->res;
      head++;
      __atomic_store_n(q->ring.cq_head, head, __ATOMIC_RELEASE);
      int32_t n = res;
      if (res == 0 && ent < u->ents_.size()) {
        n = u->Assemble(u->ents_[ent]);
        if (n < 0) u->Fail(ent, n);  // a request we cannot lay out: EIO, and the entry comes back
      }
      napi_value args[2], ret;
      napi_create_int32(env, n, &args[0]);
      napi_create_uint32(env, ent, &args[1]);
      if (!tsfuse::CallFromLoop(env, recv, fn, 2, args, &ret)) break;
      if (u->stopped_) break;  // the session ended in the callback: q is gone
      if (head == tail) tail = __atomic_load_n(q->ring.cq_tail, __ATOMIC_ACQUIRE);
    }
    u->inPoll_ = false;
    if (!u->stopped_) {
      for (Queue* other : u->queues_) if (other && other->ring.pending) RingSubmit(&other->ring);
    }
  }

  // The request in `e` in /dev/fuse layout in buf_: its length, or -EIO if it cannot be.
  int32_t Assemble(Ent* e) {
    uint32_t len;
    memcpy(&len, e->hdr.in_out, 4);
    uint32_t payload = e->hdr.ring.payload_sz;
    if (len < kInHeader + payload || len > cap_ || payload > payloadSize_) return -EIO;
    size_t op = len - kInHeader - payload;
    if (op > sizeof e->hdr.op_in) return -EIO;
    memcpy(buf_, e->hdr.in_out, kInHeader);
    memcpy(buf_ + kInHeader, e->hdr.op_in, op);
    memcpy(buf_ + kInHeader + op, e->payload, payload);
    return static_cast<int32_t>(len);
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Teardown();
    return info.Env().Undefined();
  }

  // Closing a ring cancels its commands. Called once the session has ended (the kernel then
  // has no request for an entry and never copies into one again), or on a failed start.
  void Teardown() {
    if (stopped_) return;
    stopped_ = true;
    for (Queue* q : queues_) {
      if (!q) continue;
      q->owner = nullptr;
      if (q->poll) {
        uv_poll_stop(q->poll);
        uv_close(reinterpret_cast<uv_handle_t*>(q->poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
        q->poll = nullptr;
      }
      RingFree(&q->ring);
      delete q;
    }
    queues_.clear();
    // The entries are not freed: closing a ring cancels its commands later (from a
    // workqueue), and until then the kernel may still copy a request into an entry it
    // holds (a session that ends while its connection lives: an fd-handed mount, a lazy
    // unmount). Leaking them (8 entries × (payload + 1 KiB) per queue, once per ended
    // session) is the safe side of that race.
    ents_.clear();
    if (refd_) Unref();
    refd_ = false;
  }

  int devFd_ = -1;
  uint32_t nq_ = 0, ne_ = 0, payloadSize_ = 0;
  uint8_t* buf_ = nullptr;
  size_t cap_ = 0;
  Napi::ObjectReference bufRef_;
  Napi::FunctionReference cb_;
  Napi::AsyncContext* ctx_ = nullptr;
  std::vector<Queue*> queues_;
  std::vector<Ent*> ents_;
  bool inPoll_ = false;
  bool stopped_ = false;
  bool refd_ = false;
};

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Uring", Uring::Init(env));
}

}  // namespace uring
