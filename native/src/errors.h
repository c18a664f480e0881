// How the addon reports failures to JavaScript: every system call failure becomes an Error whose
// message names the operation, its subject and the errno text ("setns(/var/run/netns/x): No such
// file or directory") and which carries code ("ENOENT"), errno (positive) and syscall properties,
// so the TypeScript side can branch on the code without parsing text.
#pragma once

#include <napi.h>

#include <string>

namespace ovnode {

struct SysFailure {
  // First member so that `{errno, ...}` reads errno before the string members are built: a
  // constructor that allocates may itself change errno.
  int err;
  // Operation as the caller knows it, e.g. "setns" or "ETHTOOL_SFEATURES".
  const char* op;
  // What the operation was applied to: a path or an interface name.
  std::string subject;
  // The failing system call when it differs from op (e.g. op "setns" failing in open()).
  const char* syscall = nullptr;
  // Optional explanation appended after the errno text.
  const char* hint = nullptr;
};

[[noreturn]] void ThrowSysError(Napi::Env env, const SysFailure& failure);

// A failure that is not an errno: a refused argument or a kernel state we could not reach.
[[noreturn]] void ThrowError(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& message);

}  // namespace ovnode
