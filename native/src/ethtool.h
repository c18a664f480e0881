// ethtool feature flags (`ethtool -k` / `ethtool -K`) of an interface in the calling thread's
// netns: getFeatures, setFeatures and disableTxChecksum.
#pragma once

#include <napi.h>

namespace ovnode {

void RegisterEthtool(Napi::Env env, Napi::Object exports);

}  // namespace ovnode
