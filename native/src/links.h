// Links: deleteLink(netnsPath, ifName) removes a link with rtnetlink RTM_DELLINK from inside the
// netns, on a libuv worker thread, and returns a promise.
#pragma once

#include <napi.h>

namespace ovnode {

void RegisterLinks(Napi::Env env, Napi::Object exports);

}  // namespace ovnode
