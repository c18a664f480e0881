// ethtool feature flags (`ethtool -k` / `ethtool -K`) of an interface in the calling thread's
// netns: getFeatures, setFeatures and disableTxChecksum.
#pragma once

#include <napi.h>

#include <string>

namespace ovnode {

void RegisterEthtool(Napi::Env env, Napi::Object exports);

// disableTxChecksum's work in the calling thread's netns: turns off every tx-checksum-* feature of
// if_name and checks it took. Throws NativeFailure (`if_nametoindex(if): No such device`,
// `ETHTOOL_SFEATURES(if): ...`, `disableTxChecksum(if): tx-checksum-x stays on`); no Node-API:
// safe on a libuv worker thread (configurePodInterface).
void DisableTxChecksumHere(const std::string& if_name);

}  // namespace ovnode
