// Exit watches on processes that need not be our children (the OVS/OVN programs the daemon adopts
// after a restart), with neither polling nor a thread. pidfd_open(2) (Linux 5.3) returns a
// descriptor for any process, which becomes readable once that process has exited (a zombie
// counts; whether and by whom it is reaped does not matter). watchExit(pid) hands the descriptor to
// libuv as a uv_poll_t on the JavaScript thread's loop, unreferenced so that a pending watch does
// not keep the process alive, and settles a promise from the poll callback, on that thread.
//
// One watch (Watch) is live from watchExit until the first of: the process exits (poll callback:
// resolve, close), cancel() (close; the promise stays pending) or the teardown of the Node.js
// environment (cleanup hook: close). Exactly the live watches are in Registry::live, and each of
// those three paths takes its watch out of it before anything else, so whichever comes later finds
// nothing to do and the handle is closed once. uv_close finishes on a later turn of the loop, when
// OnClosed closes the pidfd and frees the memory. Node.js unloads an addon when a worker thread's
// environment goes away, and libuv must not call OnClosed after that: the cleanup hook is an
// asynchronous one, which Node.js keeps running the loop for until it reports done, and it reports
// done only once every handle it or anything before it closed has finished closing.
#include "processes.h"

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>

#include "errors.h"
#include "fd.h"
#include "uv_min.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434  // the same in every architecture's syscall table
#endif

namespace ovnode {
namespace {

constexpr const char* kFn = "watchExit";
constexpr pid_t kMaxPid = std::numeric_limits<pid_t>::max();

struct Registry;

struct Watch {
  Registry* registry;
  uint64_t id;
  pid_t pid;
  int pidfd;
  // uv_handle_size(UV_POLL) bytes, freed by OnClosed. Its data pointer leads back here.
  uv_poll_t* poll;
  // The promise's resolving functions, held while the watch is live and released when it ends, so
  // that a cancelled watch's promise can be garbage collected. (napi_create_promise's deferred
  // cannot be released without settling it.)
  napi_ref resolve = nullptr;
  napi_ref reject = nullptr;
};

// One per Node.js environment that loads the addon (the main thread, each worker thread). Freed
// when the environment's teardown is done with it (Teardown, or the last OnClosed after it).
struct Registry {
  napi_env env;
  uv_loop_t* loop;
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, Watch*> live{};
  // Handles passed to uv_close whose OnClosed has not run yet.
  size_t closing = 0;
  // Set by Teardown: the hook to report done once closing drops to 0.
  napi_async_cleanup_hook_handle teardown = nullptr;
};

// Tells Node.js that the environment's teardown may go on (and unload the addon).
void FinishTeardown(Registry* registry) {
  napi_remove_async_cleanup_hook(registry->teardown);
  delete registry;
}

uv_handle_t* AsHandle(uv_poll_t* poll) { return reinterpret_cast<uv_handle_t*>(poll); }

void OnClosed(uv_handle_t* handle) {
  Watch* watch = static_cast<Watch*>(uv_handle_get_data(handle));
  Registry* registry = watch->registry;
  ::close(watch->pidfd);
  ::operator delete(watch->poll);
  delete watch;
  if (--registry->closing == 0 && registry->teardown != nullptr) FinishTeardown(registry);
}

// Ends a watch that the caller has just taken out of Registry::live (or never put in): releases
// the promise and closes the handle, which stops it. The env must still be usable.
void Retire(napi_env env, Watch* watch) {
  if (watch->resolve != nullptr) napi_delete_reference(env, watch->resolve);
  if (watch->reject != nullptr) napi_delete_reference(env, watch->reject);
  watch->resolve = watch->reject = nullptr;
  watch->registry->closing++;
  uv_close(AsHandle(watch->poll), OnClosed);
}

// Calls a resolving function from the loop the way Node.js calls into JavaScript from its own
// handles (MakeCallback): the promise reactions, i.e. whoever awaits exited, and the
// process.nextTick callbacks they queue run before this returns, and an exception thrown among
// them is reported like any uncaught exception. No async context: the reactions run in the
// context in which they were attached.
void CallFromLoop(napi_env env, napi_value fn, size_t argc, const napi_value* argv) {
  // MakeCallback insists on an object as the receiver; resolving functions ignore it.
  napi_value recv;
  napi_get_global(env, &recv);
  if (napi_make_callback(env, nullptr, recv, fn, argc, argv, nullptr) == napi_ok) return;
  // Also fails without an exception while the environment is shutting down: nothing to report.
  bool pending = false;
  napi_value error;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
      napi_get_and_clear_last_exception(env, &error) == napi_ok) {
    napi_fatal_exception(env, error);
  }
}

// The process exited (status 0): a pidfd never reports anything else, and libuv reports an error
// only for POLLERR, which it does not set. Should that happen anyway, the promise rejects.
void OnReadable(uv_poll_t* poll, int status, int /*events*/) {
  Watch* watch = static_cast<Watch*>(uv_handle_get_data(AsHandle(poll)));
  Registry* registry = watch->registry;
  registry->live.erase(watch->id);
  const napi_env env = registry->env;
  const pid_t pid = watch->pid;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    Retire(env, watch);
    return;
  }
  napi_value settle = nullptr;
  napi_get_reference_value(env, status == 0 ? watch->resolve : watch->reject, &settle);
  Retire(env, watch);  // watch is not to be used from here on
  napi_value error = nullptr;
  if (status != 0) {
    try {
      const SysFailure failure{-status, "uv_poll", std::to_string(pid), "epoll_wait"};
      error = SysError(Napi::Env(env), failure).Value();
    } catch (const Napi::Error&) {
      // left undefined: the environment cannot build an error now
    }
  }
  if (settle != nullptr) CallFromLoop(env, settle, error != nullptr ? 1 : 0, &error);
  napi_close_handle_scope(env, scope);
}

// The environment is going away: no JavaScript runs any more, so the pending promises can only be
// dropped. Runs before Node-API's own teardown of this env, which the hook keeps alive until done.
void Teardown(napi_async_cleanup_hook_handle handle, void* arg) {
  auto* registry = static_cast<Registry*>(arg);
  registry->teardown = handle;
  for (auto& [id, watch] : registry->live) Retire(registry->env, watch);
  registry->live.clear();
  if (registry->closing == 0) FinishTeardown(registry);
}

void Cancel(Registry* registry, uint64_t id) {
  auto it = registry->live.find(id);
  if (it == registry->live.end()) return;  // exited, or cancelled before
  Watch* watch = it->second;
  registry->live.erase(it);
  Retire(registry->env, watch);
}

// A pid as pidfd_open takes it. 0 and negative numbers name groups of processes to kill(2) and
// are refused by pidfd_open with EINVAL; a caller passing one has a bug, so say so.
pid_t PidArg(const Napi::CallbackInfo& info) {
  double number = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : NAN;
  if (!(number >= 1 && number <= kMaxPid) || std::floor(number) != number) {
    ThrowTypeError(info.Env(), std::string(kFn) + ": pid must be an integer from 1 to " +
                                   std::to_string(kMaxPid));
  }
  return static_cast<pid_t>(number);
}

// Holds the references to the resolving functions until a Watch takes them.
struct ResolvingFunctions {
  napi_env env;
  napi_ref resolve = nullptr;
  napi_ref reject = nullptr;

  ~ResolvingFunctions() {
    if (resolve != nullptr) napi_delete_reference(env, resolve);
    if (reject != nullptr) napi_delete_reference(env, reject);
  }
};

Napi::Object Result(Napi::Env env, Napi::Value exited, Napi::Function cancel) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("exited", exited);
  result.Set("cancel", cancel);
  return result;
}

Napi::Value NoOp(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

// { exited: a promise rejected with error, cancel: a no-op }
Napi::Object Refused(Napi::Env env, const Napi::Error& error) {
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(error.Value());
  return Result(env, deferred.Promise(), Napi::Function::New(env, NoOp, "cancel"));
}

// watchExit(pid): { exited: Promise<void>, cancel(): void }. Throws a TypeError for an invalid pid;
// a failing system call rejects exited instead (pidfd_open ESRCH: no such process).
Napi::Value WatchExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* registry = static_cast<Registry*>(info.Data());
  const pid_t pid = PidArg(info);
  const std::string subject = std::to_string(pid);

  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));  // always O_CLOEXEC
  if (!pidfd.valid()) return Refused(env, SysError(env, SysFailure{errno, "pidfd_open", subject}));

  ResolvingFunctions fns{env};
  // The executor runs synchronously inside New. Its arguments live only as long as that call, so
  // the references are taken inside it.
  Napi::Function executor = Napi::Function::New(env, [&fns](const Napi::CallbackInfo& e) {
    napi_create_reference(e.Env(), e[0], 1, &fns.resolve);
    napi_create_reference(e.Env(), e[1], 1, &fns.reject);
  });
  Napi::Object promise = env.Global().Get("Promise").As<Napi::Function>().New({executor});
  if (fns.resolve == nullptr || fns.reject == nullptr) {
    ThrowError(env, std::string(kFn) + ": the Promise constructor did not run its executor");
  }
  const uint64_t id = registry->next_id++;
  Napi::Function cancel = Napi::Function::New(
      env, [registry, id](const Napi::CallbackInfo&) { Cancel(registry, id); }, "cancel");
  Napi::Object result = Result(env, promise, cancel);

  auto* poll = static_cast<uv_poll_t*>(::operator new(uv_handle_size(UV_POLL)));
  int err = uv_poll_init(registry->loop, poll, pidfd.get());
  if (err != 0) {
    ::operator delete(poll);  // fns releases the first promise, never settled nor handed out
    return Refused(env, SysError(env, SysFailure{-err, "uv_poll_init", subject}));
  }
  // From here the handle is initialised and goes only through uv_close; the watch owns the pidfd.
  auto* watch = new Watch{registry, id, pid, pidfd.release(), poll};
  uv_handle_set_data(AsHandle(poll), watch);
  std::swap(watch->resolve, fns.resolve);
  std::swap(watch->reject, fns.reject);
  err = uv_poll_start(poll, UV_READABLE, OnReadable);
  if (err != 0) {
    Retire(env, watch);  // releases the first promise, never settled: the caller never sees it
    return Refused(env, SysError(env, SysFailure{-err, "uv_poll_start", subject}));
  }
  // The daemon's lifetime is governed by its servers, not by the processes it watches.
  uv_unref(AsHandle(poll));
  registry->live.emplace(id, watch);
  return result;
}

}  // namespace

void RegisterProcesses(Napi::Env env, Napi::Object exports) {
  const unsigned int uv = uv_version();
  if ((uv >> 16) != 1) {
    ThrowError(env, "ovnode_native: built for libuv 1.x, Node.js runs libuv " +
                        std::to_string(uv >> 16) + "." + std::to_string((uv >> 8) & 0xff));
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    ThrowError(env, "ovnode_native: no libuv event loop for this environment");
  }
  auto* registry = new Registry{env, loop};
  if (napi_add_async_cleanup_hook(env, Teardown, registry, nullptr) != napi_ok) {
    delete registry;
    ThrowError(env, "ovnode_native: cannot register the environment cleanup hook");
  }
  exports.Set(kFn, Napi::Function::New(env, WatchExit, kFn, registry));
}

}  // namespace ovnode
