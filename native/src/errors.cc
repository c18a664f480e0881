// Builds the JavaScript errors described in errors.h.
#include "errors.h"

#include <string.h>

namespace ovnode {

void ThrowSysError(Napi::Env env, const SysFailure& f) {
  // strerrordesc_np/strerrorname_np (glibc >= 2.32) are thread-safe, unlike strerror().
  const char* text = strerrordesc_np(f.err);
  const char* name = strerrorname_np(f.err);
  std::string message = std::string(f.op) + "(" + f.subject + "): " +
                        (text != nullptr ? text : "errno " + std::to_string(f.err));
  if (f.hint != nullptr) message += std::string(" (") + f.hint + ")";

  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", name != nullptr ? std::string(name) : "E" + std::to_string(f.err));
  error.Set("errno", Napi::Number::New(env, f.err));
  error.Set("syscall", f.syscall != nullptr ? f.syscall : f.op);
  throw error;
}

void ThrowError(Napi::Env env, const std::string& message) {
  throw Napi::Error::New(env, message);
}

void ThrowTypeError(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

}  // namespace ovnode
