// Builds the JavaScript errors described in errors.h.
#include "errors.h"

#include <string.h>

namespace ovnode {

// strerrordesc_np/strerrorname_np (glibc >= 2.32) are thread-safe, unlike strerror(): messages are
// also built on libuv worker threads (NativeFailure).
std::string ErrnoText(int err) {
  const char* text = strerrordesc_np(err);
  return text != nullptr ? text : "errno " + std::to_string(err);
}

std::string SysMessage(const SysFailure& f) {
  std::string message = std::string(f.op) + "(" + f.subject + "): " + ErrnoText(f.err);
  if (f.hint != nullptr) message += std::string(" (") + f.hint + ")";
  return message;
}

Napi::Error SysError(Napi::Env env, const SysFailure& f) {
  const char* name = strerrorname_np(f.err);
  Napi::Error error = Napi::Error::New(env, SysMessage(f));
  // Appending rather than `"E" + std::to_string(...)`, which trips GCC 12's false -Wrestrict.
  std::string code = name != nullptr ? name : "E";
  if (name == nullptr) code += std::to_string(f.err);
  error.Set("code", code);
  error.Set("errno", Napi::Number::New(env, f.err));
  error.Set("syscall", f.syscall != nullptr ? f.syscall : f.op);
  return error;
}

void ThrowSysError(Napi::Env env, const SysFailure& f) { throw SysError(env, f); }

void ThrowError(Napi::Env env, const std::string& message) {
  throw Napi::Error::New(env, message);
}

void ThrowTypeError(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

}  // namespace ovnode
