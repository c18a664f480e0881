// Network namespace switching: runIn(path, fn) and exists(path) for the calling (JavaScript)
// thread, and the pieces announce (packets.cc) uses to do the same on a libuv worker thread.
#pragma once

#include <napi.h>

#include <string>

#include "fd.h"

namespace ovnode {

void RegisterNetns(Napi::Env env, Napi::Object exports);

// Opens the network namespace file at path. Throws NativeFailure "setns(path): ..." (syscall
// "open") when it cannot be opened, EINVAL "not a network namespace" for any other file. No
// Node-API: safe on any thread.
UniqueFd OpenNetns(const std::string& path);

// Holds the calling thread inside a network namespace for its own lifetime. setns(2) moves only
// the calling thread. The destructor is what guarantees the way back, also when the code in
// between throws; if that way back fails, the process aborts (see ~NetnsSwitch). The constructor
// throws NativeFailure; no Node-API: safe on any thread.
class NetnsSwitch {
 public:
  // who names the caller in the abort message, e.g. "runIn (JavaScript thread)".
  NetnsSwitch(const UniqueFd& target, const std::string& path, const char* who);
  ~NetnsSwitch();

  NetnsSwitch(const NetnsSwitch&) = delete;
  NetnsSwitch& operator=(const NetnsSwitch&) = delete;

 private:
  UniqueFd origin_;
  const char* who_;
};

}  // namespace ovnode
