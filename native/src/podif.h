// configurePodInterface: addresses, link up, default routes and TX checksum offloads of a pod's
// interface, on a libuv worker thread inside the pod's netns.
#pragma once

#include <napi.h>

namespace ovnode {

void RegisterPodInterface(Napi::Env env, Napi::Object exports);

}  // namespace ovnode
