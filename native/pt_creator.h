// Creations under a umask of our choosing, without touching the process umask.
//
// The umask is process-wide state (shared by every thread through CLONE_FS),
// and a library must not change it: other code of the process creates files
// too. So creations (mkdirat, mknodat, openat with O_CREAT or O_TMPFILE) run
// on one dedicated thread that called unshare(CLONE_FS) once: its umask (and
// cwd, root) are its own from then on, and it sets the umask the request needs
// before each creation — virtiofsd does the same in its worker threads. The
// fd table stays shared (CLONE_FILES), so fds it opens are ours; fsuid/fsgid
// are per thread anyway and are switched there for the call.
//
// The JavaScript caller blocks until the creation is done (these natives are
// synchronous like all of pt.cc): one job at a time, handed over through an
// atomic state, each side sleeping on its own condition variable. (Spinning
// before sleeping was measured slower: on a loaded machine with few CPUs,
// or vCPUs, the spinner takes the CPU the other side needs.) The thread starts
// at the first creation and lives as long as the process; it blocks all
// signals (they go to other threads).
#pragma once
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pt {

// The credentials a request runs with: fsuid, fsgid and the supplementary groups.
// uid < 0: as ourselves. Credentials are per thread in Linux; the raw setgroups
// syscall changes only the calling thread's (glibc's setgroups() would change
// every thread of the process), so each thread switches its own.
struct Creds {
  int64_t uid = -1, gid = -1;
  bool withGroups = false;  // false: keep the thread's groups
  std::vector<gid_t> groups;
};

// This thread's supplementary groups (the ones to go back to).
inline std::vector<gid_t> OwnGroups() {
  int n = getgroups(0, nullptr);
  std::vector<gid_t> g(n > 0 ? n : 0);
  if (n > 0 && getgroups(n, g.data()) < 0) g.clear();
  return g;
}

// Switches this thread to `c`; false (errno set) if the groups could not be set.
inline bool ApplyCreds(const Creds& c) {
  if (c.uid < 0) return true;
  if (c.withGroups && syscall(SYS_setgroups, c.groups.size(), c.groups.data()) < 0) return false;
  setfsgid(static_cast<gid_t>(c.gid));
  setfsuid(static_cast<uid_t>(c.uid));
  return true;
}
// Back to ourselves (fsuid/fsgid = euid/egid, groups = `own`), keeping errno.
inline void RestoreCreds(const Creds& c, const std::vector<gid_t>& own) {
  if (c.uid < 0) return;
  int e = errno;
  setfsuid(geteuid());
  setfsgid(getegid());
  if (c.withGroups) syscall(SYS_setgroups, own.size(), own.data());
  errno = e;
}

class Creator {
 public:
  // Runs `fn` on the creator thread with umask `mask` and the credentials `who`
  // (uid < 0: ours); returns its result with errno in *err.
  static long Run(const Creds& who, mode_t mask, const std::function<long()>& fn, int* err) {
    return Get().Call(who, mask, fn, err);
  }
  // Starts the thread if it is not running: call it while this thread has its own
  // credentials (a new thread inherits the creator's, and keeps them as its own).
  static void Start() { Get(); }

 private:
  enum State { kIdle, kPosted, kDone };

  static Creator& Get() {
    static Creator* c = new Creator();  // never destroyed: the thread may outlive static destructors
    return *c;
  }

  Creator() {
    // The thread inherits this mask; set it before it starts so no signal is ever delivered to it.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    std::thread([this] { Loop(); }).detach();
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  // Sets state_ under the mutex (so a sleeper cannot miss it) and wakes the other side.
  void Publish(State s, std::condition_variable& cv) {
    {
      std::lock_guard<std::mutex> lk(m_);
      state_.store(s, std::memory_order_release);
    }
    cv.notify_one();
  }
  void Await(State want, std::condition_variable& cv) {
    if (state_.load(std::memory_order_acquire) == want) return;
    std::unique_lock<std::mutex> lk(m_);
    cv.wait(lk, [&] { return state_.load(std::memory_order_acquire) == want; });
  }

  long Call(const Creds& who, mode_t mask, const std::function<long()>& fn, int* err) {
    std::lock_guard<std::mutex> one(calls_);  // one job at a time (worker_threads may share the addon)
    job_ = Job{&fn, &who, mask, 0, 0};
    Publish(kPosted, posted_);
    Await(kDone, done_);
    *err = job_.err;
    long r = job_.result;
    state_.store(kIdle, std::memory_order_relaxed);  // the thread only waits for kPosted
    return r;
  }

  void Loop() {
    // Failing here (it cannot for an ordinary thread) would make the umask shared again:
    // then every creation answers the error instead of using the process umask.
    int unshareErr = unshare(CLONE_FS) < 0 ? errno : 0;
    const std::vector<gid_t> own = OwnGroups();
    mode_t mask = umask(0);  // ours (unshared): set only when a job needs another
    umask(mask);
    for (;;) {
      Await(kPosted, posted_);
      if (unshareErr) {
        job_.result = -1;
        job_.err = unshareErr;
      } else {
        if (job_.mask != mask) umask(mask = job_.mask);
        if (!ApplyCreds(*job_.who)) {
          job_.result = -1;
          job_.err = errno;
        } else {
          errno = 0;
          job_.result = (*job_.fn)();
          job_.err = errno;
        }
        RestoreCreds(*job_.who, own);
      }
      Publish(kDone, done_);
    }
  }

  struct Job {
    const std::function<long()>* fn;
    const Creds* who;
    mode_t mask;
    long result;
    int err;
  };

  std::mutex calls_;  // held by the caller for a whole job
  // job_ is the caller's until it publishes kPosted, the thread's until it publishes kDone.
  Job job_{};
  std::atomic<int> state_{kIdle};
  std::mutex m_;  // guards the transitions sleepers wait for
  std::condition_variable posted_, done_;
};

}  // namespace pt
