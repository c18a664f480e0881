// Network namespace switching. setns(2) moves only the calling thread, and JavaScript runs on one
// thread, so runIn() can move the thread, run a synchronous callback and move it back: everything
// the callback does synchronously (sockets it opens, ioctls, os.networkInterfaces()) happens in
// the target namespace, while libuv's pool threads stay where they are. NetnsWorker moves a pool
// thread instead, with the same NetnsSwitch, for the length of one asynchronous operation's work
// (announce in packets.cc, deleteLink in links.cc).
#include "netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>

#include "args.h"
#include "errors.h"
#include "fd.h"

namespace ovnode {
namespace {

// The namespace of this thread, not of the process: /proc/self would name the main thread's,
// which is wrong for a libuv worker thread (NetnsWorker) and for a thread left inside runIn.
constexpr const char* kThreadNetns = "/proc/thread-self/ns/net";

bool IsNetworkNamespace(int fd) {
  // NS_GET_NSTYPE (Linux 4.11) fails with ENOTTY on anything that is not an nsfs file, e.g. the
  // empty mount point left behind when a named netns was unmounted but its file not removed.
  return ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}

Napi::Value RunIn(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "runIn");
  Napi::Function fn = FunctionArg(info, 1, "runIn");
  // Only OpenNetns and NetnsSwitch throw NativeFailure; what the callback throws is a Napi::Error
  // and passes through unchanged.
  return RethrowAsJs(info.Env(), [&]() -> Napi::Value {
    UniqueFd target = OpenNetns(path);
    NetnsSwitch inside(target, path, "runIn (JavaScript thread)");
    // A throwing callback surfaces here as a C++ exception (NAPI_CPP_EXCEPTIONS): `inside` is
    // destroyed on the way out, then node-addon-api rethrows the original JavaScript value.
    return fn.Call({});
  });
}

Napi::Value Exists(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "exists");
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  return Napi::Boolean::New(info.Env(), fd.valid() && IsNetworkNamespace(fd.get()));
}

}  // namespace

UniqueFd OpenNetns(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw NativeFailure(SysFailure{errno, "setns", path, "open"});
  if (!IsNetworkNamespace(fd.get())) {
    // EINVAL is what setns(2) itself would answer; checking first lets the message say why.
    throw NativeFailure(SysFailure{EINVAL, "setns", path, nullptr, "not a network namespace"});
  }
  return fd;
}

NetnsSwitch::NetnsSwitch(const UniqueFd& target, const std::string& path, const char* who)
    : origin_(open(kThreadNetns, O_RDONLY | O_CLOEXEC)), who_(who) {
  if (!origin_.valid()) throw NativeFailure(SysFailure{errno, "open", kThreadNetns});
  if (setns(target.get(), CLONE_NEWNET) != 0) throw NativeFailure(SysFailure{errno, "setns", path});
}

NetnsSwitch::~NetnsSwitch() {
  // Returning to a namespace we hold open cannot fail short of a kernel bug. If it ever did, this
  // thread would run all its later work in the pod's namespace: for runIn the JavaScript thread
  // (every later socket, ioctl and child process), for a NetnsWorker a libuv pool thread that goes
  // on to run unrelated fs/dns/crypto work and later netns operations, whose own "restore" would
  // then lead back into the pod's netns. Nothing can repair the thread from outside, and silently
  // working in the wrong network is worse than a restart, so crash loudly. stderr + abort() rather
  // than napi_fatal_error because this may run on a worker thread, where Node-API is off limits.
  if (setns(origin_.get(), CLONE_NEWNET) != 0) {
    const char* text = strerrordesc_np(errno);
    std::fprintf(stderr,
                 "ovnode_native: FATAL: %s: cannot return the thread to its original network "
                 "namespace (setns: %s); aborting so that no later work runs in the wrong "
                 "namespace\n",
                 who_, text != nullptr ? text : "unknown error");
    std::fflush(stderr);
    std::abort();
  }
}

NetnsWorker::NetnsWorker(Napi::Env env, const char* name, std::string netns_path)
    : Napi::AsyncWorker(env, (std::string("ovnode.") + name).c_str()),
      deferred_(Napi::Promise::Deferred::New(env)),
      name_(name),
      who_(std::string(name) + " (libuv worker thread)"),
      netns_path_(std::move(netns_path)) {}

Napi::Value NetnsWorker::Result(Napi::Env env) { return env.Undefined(); }

void NetnsWorker::Execute() {
  try {
    UniqueFd target = OpenNetns(netns_path_);
    // setns moves only this pool thread. ~NetnsSwitch moves it back however the block is left
    // (whatever RunInside opened is closed before that), and aborts the process if it cannot: a
    // pool thread left in the target netns would run later, unrelated thread-pool work (fs,
    // dns.lookup, crypto, further netns operations) there.
    NetnsSwitch inside(target, netns_path_, who_.c_str());
    RunInside();
  } catch (const NativeFailure& failure) {
    failure_ = failure;
  } catch (const std::exception& e) {  // std::bad_alloc and the like
    failure_ = NativeFailure(std::string(name_) + "(" + netns_path_ + "): " + e.what());
  }
}

void NetnsWorker::OnOK() {
  if (failure_) {
    deferred_.Reject(failure_->ToJs(Env()).Value());
  } else {
    deferred_.Resolve(Result(Env()));
  }
}

void NetnsWorker::OnError(const Napi::Error& e) { deferred_.Reject(e.Value()); }

void RegisterNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("runIn", Napi::Function::New(env, RunIn, "runIn"));
  exports.Set("exists", Napi::Function::New(env, Exists, "exists"));
}

}  // namespace ovnode
