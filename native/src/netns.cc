// Network namespace switching. setns(2) moves only the calling thread, and JavaScript runs on one
// thread, so runIn() can move the thread, run a synchronous callback and move it back: everything
// the callback does synchronously (sockets it opens, ioctls, os.networkInterfaces()) happens in
// the target namespace, while libuv's pool threads stay where they are.
#include "netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>

#include <string>

#include "args.h"
#include "errors.h"
#include "fd.h"

namespace ovnode {
namespace {

// The namespace of this thread, not of the process (/proc/self would name the main thread's,
// which is the same here but wrong for a worker thread).
constexpr const char* kThreadNetns = "/proc/thread-self/ns/net";

bool IsNetworkNamespace(int fd) {
  // NS_GET_NSTYPE (Linux 4.11) fails with ENOTTY on anything that is not an nsfs file, e.g. the
  // empty mount point left behind when a named netns was unmounted but its file not removed.
  return ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
}

UniqueFd OpenNetns(Napi::Env env, const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) ThrowSysError(env, {errno, "setns", path, "open"});
  if (!IsNetworkNamespace(fd.get())) {
    // EINVAL is what setns(2) itself would answer; checking first lets the message say why.
    ThrowSysError(env, {EINVAL, "setns", path, nullptr, "not a network namespace"});
  }
  return fd;
}

// Holds the calling thread inside a network namespace for its own lifetime. The destructor is
// what guarantees the way back, also when the callback in between throws.
class NetnsSwitch {
 public:
  NetnsSwitch(Napi::Env env, const UniqueFd& target, const std::string& path)
      : origin_(open(kThreadNetns, O_RDONLY | O_CLOEXEC)) {
    if (!origin_.valid()) ThrowSysError(env, {errno, "open", kThreadNetns});
    if (setns(target.get(), CLONE_NEWNET) != 0) ThrowSysError(env, {errno, "setns", path});
  }

  ~NetnsSwitch() {
    // Returning to a namespace we hold open cannot fail short of a kernel bug. If it ever did,
    // this thread (the JavaScript thread) would run all later work in the pod's namespace:
    // crashing is safer than silently configuring the wrong network.
    if (setns(origin_.get(), CLONE_NEWNET) != 0) {
      Napi::Error::Fatal("ovnode_native runIn", "cannot return to the original network namespace");
    }
  }

  NetnsSwitch(const NetnsSwitch&) = delete;
  NetnsSwitch& operator=(const NetnsSwitch&) = delete;

 private:
  UniqueFd origin_;
};

Napi::Value RunIn(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "runIn");
  Napi::Function fn = FunctionArg(info, 1, "runIn");
  UniqueFd target = OpenNetns(info.Env(), path);
  NetnsSwitch inside(info.Env(), target, path);
  // A throwing callback surfaces here as a C++ exception (NAPI_CPP_EXCEPTIONS): `inside` is
  // destroyed on the way out, then node-addon-api rethrows the original JavaScript value.
  return fn.Call({});
}

Napi::Value Exists(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "exists");
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  return Napi::Boolean::New(info.Env(), fd.valid() && IsNetworkNamespace(fd.get()));
}

}  // namespace

void RegisterNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("runIn", Napi::Function::New(env, RunIn, "runIn"));
  exports.Set("exists", Napi::Function::New(env, Exists, "exists"));
}

}  // namespace ovnode
