// Network namespace switching. setns(2) moves only the calling thread, and JavaScript runs on one
// thread, so runIn() can move the thread, run a synchronous callback and move it back: everything
// the callback does synchronously (sockets it opens, ioctls, os.networkInterfaces()) happens in
// the target namespace, while libuv's pool threads stay where they are. NetnsWorker moves a pool
// thread instead, with the same NetnsSwitch, for the length of one asynchronous operation's work
// (announce in packets.cc, deleteLink in links.cc).
//
// Netns paths come from callers we do not trust (CNI_NETNS). Opening one for reading runs the
// open of whatever it names: a FIFO waits for a writer, a device runs its driver's open. So every
// path is first pinned with O_PATH, which resolves it without opening the file, and only a file
// on nsfs (whose files have no open of their own) is then opened for reading (InspectPath).
// Resolving the path can still wait (an unresponsive network or FUSE filesystem along it), which
// is why inspectNetns does all of it on a libuv worker thread.
#include "netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
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
constexpr const char* kProcessNetns = "/proc/self/ns/net";

// What a path names, as InspectPath found it.
struct PathInspection {
  enum class Kind {
    kNetns,
    // The path does not resolve: ENOENT or ENOTDIR.
    kMissing,
    // It resolves to something that is not a network namespace, or resolving it was refused
    // (EACCES, ELOOP, ...).
    kNotNetns,
    // The inspection itself failed (no descriptor left, /proc unusable): that says nothing about
    // the path, so there is no verdict on it.
    kFailed,
  };
  Kind kind = Kind::kFailed;
  // Unless kNetns: the errno (EINVAL when our own checks refused the file) and the system call
  // that returned it (nullptr for our checks).
  int err = 0;
  const char* syscall = nullptr;
  // For our own refusals, the hint of the setns error OpenNetns throws. A string literal.
  const char* hint = nullptr;
  // kMissing and kNotNetns: what to tell a person.
  std::string reason;
  // kNetns: a descriptor setns(2) accepts, and the namespace's identity.
  UniqueFd fd;
  dev_t dev = 0;
  ino_t ino = 0;
};

PathInspection Verdict(PathInspection::Kind kind, int err, const char* syscall,
                       std::string reason = "", const char* hint = nullptr) {
  PathInspection out;
  out.kind = kind;
  out.err = err;
  out.syscall = syscall;
  out.hint = hint;
  out.reason = std::move(reason);
  return out;
}

// Errors of open() that tell about this process rather than about the path: a verdict that the
// path is not a netns would hide them from whoever has to fix them.
bool IsResourceErrno(int err) {
  return err == EMFILE || err == ENFILE || err == ENOMEM || err == EINTR;
}

const char* FileKind(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    default: return "a file of unknown type";
  }
}

const char* NamespaceKind(int nstype) {
  switch (nstype) {
    case CLONE_NEWNS: return "a mnt namespace";
    case CLONE_NEWUTS: return "a uts namespace";
    case CLONE_NEWIPC: return "an ipc namespace";
    case CLONE_NEWUSER: return "a user namespace";
    case CLONE_NEWPID: return "a pid namespace";
    case CLONE_NEWCGROUP: return "a cgroup namespace";
#ifdef CLONE_NEWTIME
    case CLONE_NEWTIME: return "a time namespace";
#endif
    default: return "a namespace of unknown type";
  }
}

// The one place a netns path is looked at (see the top of this file). Returns every outcome
// rather than throwing, so that each caller decides what a missing path or a FIFO means to it.
// No Node-API: safe on any thread.
PathInspection InspectPath(const std::string& path) {
  using Kind = PathInspection::Kind;
  // c_str() would end the path at the NUL: we would inspect another file than the one named.
  if (path.find('\0') != std::string::npos) {
    constexpr const char* kNul = "the path contains a NUL byte";
    return Verdict(Kind::kNotNetns, EINVAL, nullptr, kNul, kNul);
  }
  UniqueFd pinned(open(path.c_str(), O_PATH | O_CLOEXEC));
  if (!pinned.valid()) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return Verdict(Kind::kMissing, err, "open", ErrnoText(err));
    if (IsResourceErrno(err)) return Verdict(Kind::kFailed, err, "open");
    return Verdict(Kind::kNotNetns, err, "open", ErrnoText(err));
  }
  struct stat st{};
  if (fstat(pinned.get(), &st) != 0) return Verdict(Kind::kFailed, errno, "fstat");
  struct statfs fs{};
  if (fstatfs(pinned.get(), &fs) != 0) return Verdict(Kind::kFailed, errno, "fstatfs");
  constexpr const char* kNotNet = "not a network namespace";
  if (fs.f_type != static_cast<decltype(fs.f_type)>(NSFS_MAGIC)) {
    return Verdict(Kind::kNotNetns, EINVAL, nullptr,
                   std::string(FileKind(st.st_mode)) + ", not a namespace file", kNotNet);
  }
  // setns refuses O_PATH descriptors, and NS_GET_NSTYPE needs an open file. Reopening through
  // /proc/self/fd opens the very file pinned above, whatever the path names by now.
  const std::string pinned_path = "/proc/self/fd/" + std::to_string(pinned.get());
  UniqueFd fd(open(pinned_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Verdict(Kind::kFailed, errno, "open");
  // NS_GET_NSTYPE: Linux 4.11.
  const int nstype = ioctl(fd.get(), NS_GET_NSTYPE);
  if (nstype < 0) return Verdict(Kind::kFailed, errno, "ioctl");
  if (nstype != CLONE_NEWNET) {
    return Verdict(Kind::kNotNetns, EINVAL, nullptr,
                   std::string(NamespaceKind(nstype)) + ", not a network namespace", kNotNet);
  }
  PathInspection out;
  out.kind = Kind::kNetns;
  out.fd = std::move(fd);
  out.dev = st.st_dev;
  out.ino = st.st_ino;
  return out;
}

// The process's own network namespace, which inspectNetns compares paths with.
struct ProcessNetns {
  int err = 0;  // of the stat, when it failed
  dev_t dev = 0;
  ino_t ino = 0;
};

// Taken once, when the addon is first loaded, not at each inspection: /proc/self/ns/net is the
// main thread's *current* netns, which is a pod's while the JavaScript thread is inside runIn, and
// a pool thread inspecting at that moment would take that pod's netns for the daemon's own, and
// the daemon's own for a stranger's. At first load nothing can be inside runIn yet. /proc/self
// rather than /proc/<getpid()>: under a /proc of another pid namespace, getpid() names another
// process.
const ProcessNetns& OwnNetns() {
  static const ProcessNetns own = [] {
    ProcessNetns id;
    struct stat st{};
    if (stat(kProcessNetns, &st) != 0) {
      id.err = errno;
    } else {
      id.dev = st.st_dev;
      id.ino = st.st_ino;
    }
    return id;
  }();
  return own;
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

// Kept for paths the daemon chose itself: resolving the path still happens on the JavaScript
// thread (see the top of this file). A caller's path goes through inspectNetns.
Napi::Value Exists(const Napi::CallbackInfo& info) {
  std::string path = StringArg(info, 0, "exists");
  const bool netns = InspectPath(path).kind == PathInspection::Kind::kNetns;
  return Napi::Boolean::New(info.Env(), netns);
}

// inspectNetns's work, all of it on a pool thread: InspectPath, then the comparison with OwnNetns.
// Resolves with a verdict on any path; rejects only when the inspection itself failed.
class InspectNetnsWorker : public Napi::AsyncWorker {
 public:
  InspectNetnsWorker(Napi::Env env, std::string path)
      : Napi::AsyncWorker(env, "ovnode.inspectNetns"),
        deferred_(Napi::Promise::Deferred::New(env)),
        path_(std::move(path)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 private:
  static constexpr const char* kFn = "inspectNetns";

  void Execute() override {
    try {
      found_ = InspectPath(path_);
      found_.fd = UniqueFd();  // only the identity is reported
      if (found_.kind == PathInspection::Kind::kFailed) {
        failure_ = NativeFailure(SysFailure{found_.err, kFn, path_, found_.syscall});
      } else if (found_.kind == PathInspection::Kind::kNetns) {
        const ProcessNetns& own = OwnNetns();
        if (own.err != 0) failure_ = NativeFailure(SysFailure{own.err, "stat", kProcessNetns});
        // An inode number is unique only within its device.
        own_ = own.dev == found_.dev && own.ino == found_.ino;
      }
    } catch (const std::exception& e) {  // std::bad_alloc and the like
      failure_ = NativeFailure(std::string(kFn) + "(" + path_ + "): " + e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failure_) {
      deferred_.Reject(failure_->ToJs(env).Value());
      return;
    }
    Napi::Object result = Napi::Object::New(env);
    switch (found_.kind) {
      case PathInspection::Kind::kNetns:
        result.Set("kind", "netns");
        // 64-bit in C; nsfs's device and inode numbers are far below 2^53, where a Number is exact.
        result.Set("dev", Napi::Number::New(env, static_cast<double>(found_.dev)));
        result.Set("ino", Napi::Number::New(env, static_cast<double>(found_.ino)));
        result.Set("own", Napi::Boolean::New(env, own_));
        break;
      case PathInspection::Kind::kMissing:
        result.Set("kind", "missing");
        result.Set("reason", found_.reason);
        break;
      default:
        result.Set("kind", "not-netns");
        result.Set("reason", found_.reason);
        break;
    }
    deferred_.Resolve(result);
  }

  // Only reached if Execute let an exception escape, which it does not; settle the promise anyway.
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
  std::string path_;
  PathInspection found_;
  bool own_ = false;
  std::optional<NativeFailure> failure_;
};

// inspectNetns(path): Promise<NetnsInspection>. Never throws: a path that is not a string rejects
// with the TypeError before anything is queued.
Napi::Value InspectNetns(const Napi::CallbackInfo& info) {
  return QueueInNetns(info.Env(), [&] { return new InspectNetnsWorker(info.Env(), StringArg(info, 0, "inspectNetns")); });
}

}  // namespace

UniqueFd OpenNetns(const std::string& path) {
  PathInspection found = InspectPath(path);
  if (found.kind == PathInspection::Kind::kNetns) return std::move(found.fd);
  // For a file our checks refused, EINVAL is what setns(2) itself would answer; checking first
  // lets the message say why.
  throw NativeFailure(SysFailure{found.err, "setns", path, found.syscall, found.hint});
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
  exports.Set("inspectNetns", Napi::Function::New(env, InspectNetns, "inspectNetns"));
  OwnNetns();  // now, while nothing can be inside runIn (see OwnNetns)
}

}  // namespace ovnode
