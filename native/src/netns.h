// Network namespace switching: runIn(path, fn) and exists(path) for the calling (JavaScript)
// thread, and NetnsWorker, which does the same on a libuv worker thread for the asynchronous
// operations (announce in packets.cc, deleteLink in links.cc); inspectNetns(path), which checks
// a caller's path entirely on a libuv worker thread.
#pragma once

#include <napi.h>

#include <optional>
#include <string>

#include "errors.h"
#include "fd.h"

namespace ovnode {

void RegisterNetns(Napi::Env env, Napi::Object exports);

// Opens the network namespace file at path for setns(2). Never opens anything else for reading:
// the path is first pinned with O_PATH and checked to be an nsfs file, so a FIFO or a device
// cannot make it wait; only resolving the path itself can (an unresponsive network or FUSE
// filesystem along it). Throws NativeFailure "setns(path): ..." (syscall "open") when the path
// cannot be resolved, EINVAL "(not a network namespace)" for any other file, "(the path contains
// a NUL byte)" for such a path. No Node-API: safe on any thread.
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

// An operation that runs on a libuv pool thread inside the network namespace at netns_path and
// settles a promise on the JavaScript thread. Execute() opens the netns, holds the pool thread in
// it with a NetnsSwitch for the length of RunInside() (so the thread is back in its own netns
// however RunInside ends, or the process aborts), and keeps any NativeFailure; OnOK then rejects
// with the very error the synchronous calls would throw (`op(subject): errno text`) or resolves
// with Result(). A subclass supplies only RunInside and, when the promise carries a value, Result.
// Start one with QueueInNetns.
class NetnsWorker : public Napi::AsyncWorker {
 public:
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  // name is the JavaScript function's, a string literal, e.g. "announce": it names the async
  // resource ("ovnode.announce"), the abort message and failures that are not a NativeFailure.
  NetnsWorker(Napi::Env env, const char* name, std::string netns_path);

  // On the pool thread, inside the netns. Throws NativeFailure; must not use Node-API.
  virtual void RunInside() = 0;
  // On the JavaScript thread after RunInside returned: what the promise resolves with.
  virtual Napi::Value Result(Napi::Env env);

 private:
  void Execute() final;
  void OnOK() final;
  // Only reached if Execute let an exception escape, which it does not; settle the promise anyway.
  void OnError(const Napi::Error& e) final;

  Napi::Promise::Deferred deferred_;
  const char* name_;
  std::string who_;
  std::string netns_path_;
  std::optional<NativeFailure> failure_;
};

// The JavaScript entry of an asynchronous native operation: calls make() on the JavaScript thread,
// where it decodes and validates the arguments and returns a new worker (a NetnsWorker subclass,
// or any AsyncWorker with a Promise()); queues it and returns its promise. Never throws: a
// Napi::Error from make() (an invalid argument's TypeError) rejects the returned promise
// instead, before anything is queued.
template <class Make>
Napi::Value QueueInNetns(Napi::Env env, Make&& make) {
  decltype(make()) worker = nullptr;
  try {
    worker = make();
  } catch (const Napi::Error& e) {
    Napi::Promise::Deferred refused = Napi::Promise::Deferred::New(env);
    refused.Reject(e.Value());
    return refused.Promise();
  }
  // Owned by the queue from here: node-addon-api deletes it after OnOK/OnError.
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace ovnode
