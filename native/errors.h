// Errors shaped like Node's fs errors: { code, errno (negative), syscall, path }.
#pragma once
#include <napi.h>
#include <uv.h>
#include <string.h>  // strerrorname_np: g++ defines _GNU_SOURCE
#include <string>

namespace tsfuse {

// The error object (not thrown): for promises rejected off the JavaScript thread's call stack.
inline Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path = "") {
  // libuv names only the errnos it knows (ESTALE is "Unknown system error -116"):
  // glibc ≥ 2.32 names them all.
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* name = strerrorname_np(err);
#else
  const char* name = nullptr;
#endif
  std::string code = name ? name : uv_err_name(-err);
  std::string msg = code + ": " + strerror(err) + ", " + syscall;
  if (!path.empty()) msg += " '" + path + "'";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  return e;
}

// Calls `fn` from the event loop (a poll callback); false if it threw, after handing the
// exception to Node as an uncaught one (as an exception in any callback would be).
inline bool CallFromLoop(napi_env env, napi_value recv, napi_value fn, size_t argc, const napi_value* argv, napi_value* ret) {
  if (napi_call_function(env, recv, fn, argc, argv, ret) == napi_ok) return true;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value e;
    napi_get_and_clear_last_exception(env, &e);
    napi_fatal_exception(env, e);
  }
  return false;
}

inline Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& path = "") {
  ErrnoError(env, err, syscall, path).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace tsfuse
