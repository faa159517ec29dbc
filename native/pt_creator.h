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
// synchronous like all of pt.cc): one job at a time, handed over under a mutex
// and condition variable. The thread starts at the first creation and lives
// as long as the process; it blocks all signals (they go to other threads).
#pragma once
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/stat.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace pt {

class Creator {
 public:
  // Runs `fn` on the creator thread with umask `mask` and, if uid >= 0, the
  // fsuid/fsgid uid/gid; returns its result with errno in *err.
  static long Run(int64_t uid, int64_t gid, mode_t mask, const std::function<long()>& fn, int* err) {
    return Get().Call(uid, gid, mask, fn, err);
  }

 private:
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

  long Call(int64_t uid, int64_t gid, mode_t mask, const std::function<long()>& fn, int* err) {
    std::lock_guard<std::mutex> one(calls_);  // one job at a time (worker_threads may share the addon)
    std::unique_lock<std::mutex> lk(m_);
    job_ = Job{&fn, uid, gid, mask, 0, 0, false};
    pending_ = true;
    cv_.notify_all();
    cv_.wait(lk, [this] { return job_.done; });
    pending_ = false;
    *err = job_.err;
    return job_.result;
  }

  void Loop() {
    // Failing here (it cannot for an ordinary thread) would make the umask shared again:
    // then every creation answers the error instead of using the process umask.
    int unshareErr = unshare(CLONE_FS) < 0 ? errno : 0;
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      cv_.wait(lk, [this] { return pending_ && !job_.done; });
      if (unshareErr) {
        job_.result = -1;
        job_.err = unshareErr;
      } else {
        umask(job_.mask);
        int oldGid = 0, oldUid = 0;
        if (job_.uid >= 0) {
          oldGid = setfsgid(static_cast<gid_t>(job_.gid));
          oldUid = setfsuid(static_cast<uid_t>(job_.uid));
        }
        errno = 0;
        job_.result = (*job_.fn)();
        job_.err = errno;
        if (job_.uid >= 0) {
          setfsuid(oldUid);
          setfsgid(oldGid);
        }
      }
      job_.done = true;
      cv_.notify_all();
    }
  }

  struct Job {
    const std::function<long()>* fn;
    int64_t uid, gid;
    mode_t mask;
    long result;
    int err;
    bool done;
  };

  std::mutex calls_;  // held by the caller for a whole job
  // Guarded by m_: the job (written by the caller, then by the thread until done), pending_.
  std::mutex m_;
  std::condition_variable cv_;
  Job job_{};
  bool pending_ = false;
};

}  // namespace pt
