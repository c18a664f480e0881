// Processes: watchExit(pid) watches any process, not only a child, for its exit through a Linux
// pidfd polled by libuv on the JavaScript thread's event loop.
#pragma once

#include <napi.h>

namespace ovnode {

void RegisterProcesses(Napi::Env env, Napi::Object exports);

}  // namespace ovnode
