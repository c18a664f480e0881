// Address announcements after a pod's interface is configured: gratuitous ARP (IPv4) and
// unsolicited neighbour advertisements (IPv6). sendGratuitousArp / sendUnsolicitedNa send from the
// calling thread's netns; announce(netnsPath, list) enters the netns and sends on a libuv worker
// thread and returns a promise.
#pragma once

#include <napi.h>

namespace ovnode {

void RegisterPackets(Napi::Env env, Napi::Object exports);

}  // namespace ovnode
