// Address announcements after a pod's interface is configured: gratuitous ARP (IPv4) and
// unsolicited neighbour advertisements (IPv6), sent from the calling thread's netns.
#pragma once

#include <napi.h>

namespace ovnode {

void RegisterPackets(Napi::Env env, Napi::Object exports);

}  // namespace ovnode
