// How the addon reports failures to JavaScript: every system call failure becomes an Error whose
// message names the operation, its subject and the errno text ("setns(/var/run/netns/x): No such
// file or directory") and which carries code ("ENOENT"), errno (positive) and syscall properties,
// so the TypeScript side can branch on the code without parsing text.
#pragma once

#include <napi.h>

#include <exception>
#include <optional>
#include <string>
#include <utility>

namespace ovnode {

struct SysFailure {
  // First member so that `{errno, ...}` reads errno before the string members are built: a
  // constructor that allocates may itself change errno.
  int err;
  // Operation as the caller knows it, e.g. "setns" or "ETHTOOL_SFEATURES". A string literal.
  const char* op;
  // What the operation was applied to: a path or an interface name.
  std::string subject;
  // The failing system call when it differs from op (e.g. op "setns" failing in open()).
  const char* syscall = nullptr;
  // Optional explanation appended after the errno text. A string literal.
  const char* hint = nullptr;
};

// "op(subject): errno text[ (hint)]". Thread-safe: no Node-API, no strerror().
std::string SysMessage(const SysFailure& failure);
// The errno text alone ("No such file or directory"); thread-safe like SysMessage.
std::string ErrnoText(int err);
// The JavaScript error for a system call failure (see the top of this file).
Napi::Error SysError(Napi::Env env, const SysFailure& failure);
[[noreturn]] void ThrowSysError(Napi::Env env, const SysFailure& failure);

// A failure that is not an errno: a refused argument or a kernel state we could not reach.
[[noreturn]] void ThrowError(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& message);

// A failure raised by code that must not touch Node-API because it also runs on a libuv worker
// thread (NetnsWorker), where no Napi::Env may be used. It holds everything needed to build the
// very error ThrowSysError / ThrowError would have thrown; ToJs builds it later, on the JavaScript
// thread.
class NativeFailure : public std::exception {
 public:
  explicit NativeFailure(SysFailure failure)
      : sys_(std::move(failure)), message_(SysMessage(*sys_)) {}
  explicit NativeFailure(std::string message) : message_(std::move(message)) {}

  const char* what() const noexcept override { return message_.c_str(); }
  Napi::Error ToJs(Napi::Env env) const {
    return sys_ ? SysError(env, *sys_) : Napi::Error::New(env, message_);
  }

 private:
  std::optional<SysFailure> sys_;
  std::string message_;
};

// Runs fn on the JavaScript thread and rethrows a NativeFailure from it as the JavaScript error it
// describes: node-addon-api converts only Napi::Error into a JavaScript exception.
template <class F>
decltype(auto) RethrowAsJs(Napi::Env env, F&& fn) {
  try {
    return fn();
  } catch (const NativeFailure& failure) {
    throw failure.ToJs(env);
  }
}

}  // namespace ovnode
