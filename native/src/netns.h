// Network namespace switching for the calling thread: runIn(path, fn) and exists(path).
#pragma once

#include <napi.h>

namespace ovnode {

void RegisterNetns(Napi::Env env, Napi::Object exports);

}  // namespace ovnode
