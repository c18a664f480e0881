// moveLink(spec): moves a netdev (an SR-IOV VF's above all) from one network namespace into
// another over rtnetlink, renaming it on the way, on a libuv worker thread; returns a promise.
#pragma once

#include <napi.h>

namespace ovnode {

void RegisterMoveLink(Napi::Env env, Napi::Object exports);

}  // namespace ovnode
