// Module entry of ovnode_native.node: gathers the functions of each concern into one exports
// object. native/index.ts is the only loader and gives them their TypeScript types.
#include <napi.h>

#include "ethtool.h"
#include "links.h"
#include "movelink.h"
#include "netns.h"
#include "packets.h"
#include "podif.h"
#include "processes.h"

// File scope and unqualified: NODE_API_MODULE pastes the name into an identifier.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  ovnode::RegisterNetns(env, exports);
  ovnode::RegisterPackets(env, exports);
  ovnode::RegisterEthtool(env, exports);
  ovnode::RegisterLinks(env, exports);
  ovnode::RegisterMoveLink(env, exports);
  ovnode::RegisterPodInterface(env, exports);
  ovnode::RegisterProcesses(env, exports);
  return exports;
}

NODE_API_MODULE(ovnode_native, InitAddon)
