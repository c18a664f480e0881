// ethtool features through the SIOCETHTOOL ioctl. Features are addressed by the kernel's own
// names (string set ETH_SS_FEATURES) and bit positions are looked up per call rather than
// hard-coded, because the numbering of netdev features changes between kernel versions.
//
// Setting is a request: the kernel keeps fixed features as they are and drops features whose
// prerequisites are gone (no TSO without a TX checksum). So every write is followed by a read,
// and a feature that did not end up in the requested state is reported as an error.
#include "ethtool.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "errors.h"
#include "fd.h"

namespace ovnode {
namespace {

constexpr uint32_t kWordBits = 32;
// ethtool(8) groups these under "tx-checksumming"; `ethtool -K IF tx off` clears exactly them.
constexpr const char* kTxChecksumPrefix = "tx-checksum-";

// Zeroed, 8-byte aligned storage for an ethtool command header and its variable-length tail.
class CommandBuffer {
 public:
  explicit CommandBuffer(size_t bytes) : words_((bytes + 7) / 8, 0) {}
  template <class T>
  T* As() {
    return reinterpret_cast<T*>(words_.data());
  }

 private:
  std::vector<uint64_t> words_;
};

// Feature state of one device, indexed like the ETH_SS_FEATURES string set.
struct FeatureTable {
  std::vector<std::string> names;
  std::vector<ethtool_get_features_block> words;

  bool Active(size_t i) const { return words[i / kWordBits].active & Bit(i); }
  bool Changeable(size_t i) const { return words[i / kWordBits].available & Bit(i); }
  static uint32_t Bit(size_t i) { return 1u << (i % kWordBits); }
};

// (feature index, wanted on) pairs.
using FeatureRequest = std::vector<std::pair<size_t, bool>>;

class EthtoolDevice {
 public:
  // Throws NativeFailure, as every method does: no Node-API, so configurePodInterface can use it
  // on a libuv worker thread; the synchronous calls rethrow with RethrowAsJs.
  explicit EthtoolDevice(const std::string& if_name) : if_name_(if_name) {
    // Checked up front so that a missing interface reads the same for every operation.
    if (if_nametoindex(if_name.c_str()) == 0) {
      throw NativeFailure(SysFailure{errno, "if_nametoindex", if_name});
    }
    // SIOCETHTOOL is served for any socket family; AF_INET/SOCK_DGRAM is what ethtool(8) uses.
    fd_ = UniqueFd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd_.valid()) throw NativeFailure(SysFailure{errno, "socket(AF_INET)", if_name, "socket"});
  }

  const std::string& name() const { return if_name_; }

  FeatureTable ReadFeatures() {
    uint32_t count = FeatureCount();
    return FeatureTable{FeatureNames(count), FeatureWords(count)};
  }

  void Request(const FeatureTable& table, const FeatureRequest& request) {
    const size_t words = table.words.size();
    CommandBuffer buf(sizeof(ethtool_sfeatures) + words * sizeof(ethtool_set_features_block));
    auto* cmd = buf.As<ethtool_sfeatures>();
    cmd->cmd = ETHTOOL_SFEATURES;
    cmd->size = static_cast<uint32_t>(words);
    for (const auto& [index, on] : request) {
      ethtool_set_features_block& word = cmd->features[index / kWordBits];
      word.valid |= FeatureTable::Bit(index);
      if (on) word.requested |= FeatureTable::Bit(index);
    }
    // A non-negative result may carry ETHTOOL_F_UNSUPPORTED / ETHTOOL_F_WISH; the read-back
    // in ApplyFeatures judges the outcome, so those flags are not needed here.
    Ioctl(cmd, "ETHTOOL_SFEATURES");
  }

 private:
  void Ioctl(void* cmd, const char* op) {
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, if_name_.data(), if_name_.size());  // length checked by caller
    ifr.ifr_data = static_cast<char*>(cmd);
    if (ioctl(fd_.get(), SIOCETHTOOL, &ifr) < 0) {
      throw NativeFailure(SysFailure{errno, op, if_name_, "ioctl"});
    }
  }

  uint32_t FeatureCount() {
    CommandBuffer buf(sizeof(ethtool_sset_info) + sizeof(uint32_t));
    auto* cmd = buf.As<ethtool_sset_info>();
    cmd->cmd = ETHTOOL_GSSET_INFO;
    cmd->sset_mask = 1ULL << ETH_SS_FEATURES;
    Ioctl(cmd, "ETHTOOL_GSSET_INFO");
    // The kernel clears the bits of string sets it does not have.
    if (!(cmd->sset_mask & (1ULL << ETH_SS_FEATURES))) {
      throw NativeFailure("ETHTOOL_GSSET_INFO(" + if_name_ + "): no feature names reported");
    }
    return cmd->data[0];
  }

  std::vector<std::string> FeatureNames(uint32_t count) {
    CommandBuffer buf(sizeof(ethtool_gstrings) + size_t{count} * ETH_GSTRING_LEN);
    auto* cmd = buf.As<ethtool_gstrings>();
    cmd->cmd = ETHTOOL_GSTRINGS;
    cmd->string_set = ETH_SS_FEATURES;
    cmd->len = count;
    Ioctl(cmd, "ETHTOOL_GSTRINGS");
    std::vector<std::string> names(count);
    for (uint32_t i = 0; i < count && i < cmd->len; i++) {
      const char* s = reinterpret_cast<const char*>(cmd->data) + size_t{i} * ETH_GSTRING_LEN;
      names[i].assign(s, strnlen(s, ETH_GSTRING_LEN));
    }
    return names;
  }

  std::vector<ethtool_get_features_block> FeatureWords(uint32_t count) {
    const uint32_t words = (count + kWordBits - 1) / kWordBits;
    CommandBuffer buf(sizeof(ethtool_gfeatures) + words * sizeof(ethtool_get_features_block));
    auto* cmd = buf.As<ethtool_gfeatures>();
    cmd->cmd = ETHTOOL_GFEATURES;
    cmd->size = words;
    Ioctl(cmd, "ETHTOOL_GFEATURES");
    // ETHTOOL_SFEATURES insists on the kernel's word count, so a mismatch would only fail later.
    if (cmd->size != words) {
      throw NativeFailure("ETHTOOL_GFEATURES(" + if_name_ + "): kernel reports " +
                          std::to_string(cmd->size) + " feature words for " +
                          std::to_string(count) + " names");
    }
    return {cmd->features, cmd->features + words};
  }

  std::string if_name_;
  UniqueFd fd_;
};

// Requests the features, reads them back and throws NativeFailure if any did not reach the wanted
// state.
void ApplyFeatures(EthtoolDevice& dev, const FeatureTable& table, const FeatureRequest& request,
                   const char* fn) {
  if (request.empty()) return;
  dev.Request(table, request);
  FeatureTable after = dev.ReadFeatures();
  std::string refused;
  for (const auto& [index, on] : request) {
    if (after.Active(index) == on) continue;
    refused += refused.empty() ? "" : ", ";
    refused += table.names[index] + (on ? " stays off" : " stays on");
    if (!after.Changeable(index)) refused += " [fixed]";
  }
  if (!refused.empty()) throw NativeFailure(std::string(fn) + "(" + dev.name() + "): " + refused);
}

Napi::Value GetFeatures(const Napi::CallbackInfo& info) {
  std::string if_name = InterfaceNameArg(info, 0, "getFeatures");
  FeatureTable table =
      RethrowAsJs(info.Env(), [&] { return EthtoolDevice(if_name).ReadFeatures(); });
  Napi::Object result = Napi::Object::New(info.Env());
  for (size_t i = 0; i < table.names.size(); i++) {
    if (!table.names[i].empty()) result.Set(table.names[i], table.Active(i));
  }
  return result;
}

Napi::Value SetFeatures(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "setFeatures";
  Napi::Env env = info.Env();
  std::string if_name = InterfaceNameArg(info, 0, fn);
  Napi::Object wanted = ObjectArg(info, 1, fn);
  RethrowAsJs(env, [&] {
    EthtoolDevice dev(if_name);
    FeatureTable table = dev.ReadFeatures();

    FeatureRequest request;
    Napi::Array keys = wanted.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); k++) {
      std::string name = keys.Get(k).ToString().Utf8Value();
      Napi::Value value = wanted.Get(name);
      if (!value.IsBoolean()) {
        ThrowTypeError(env, std::string(fn) + "(" + if_name + "): " + name + " must be a boolean");
      }
      size_t index = 0;
      while (index < table.names.size() && table.names[index] != name) index++;
      if (name.empty() || index == table.names.size()) {
        ThrowError(env, std::string(fn) + "(" + if_name + "): unknown feature \"" + name + "\"");
      }
      request.emplace_back(index, value.As<Napi::Boolean>().Value());
    }
    ApplyFeatures(dev, table, request, fn);
  });
  return env.Undefined();
}

Napi::Value DisableTxChecksum(const Napi::CallbackInfo& info) {
  std::string if_name = InterfaceNameArg(info, 0, "disableTxChecksum");
  RethrowAsJs(info.Env(), [&] { DisableTxChecksumHere(if_name); });
  return info.Env().Undefined();
}

}  // namespace

void DisableTxChecksumHere(const std::string& if_name) {
  EthtoolDevice dev(if_name);
  FeatureTable table = dev.ReadFeatures();
  FeatureRequest request;
  for (size_t i = 0; i < table.names.size(); i++) {
    // Fixed ones are requested too: the kernel skips them, and the read-back then reports one
    // that is fixed on instead of letting the caller believe checksums are now done in software.
    if (table.names[i].rfind(kTxChecksumPrefix, 0) == 0) request.emplace_back(i, false);
  }
  ApplyFeatures(dev, table, request, "disableTxChecksum");
}

void RegisterEthtool(Napi::Env env, Napi::Object exports) {
  exports.Set("getFeatures", Napi::Function::New(env, GetFeatures, "getFeatures"));
  exports.Set("setFeatures", Napi::Function::New(env, SetFeatures, "setFeatures"));
  exports.Set("disableTxChecksum", Napi::Function::New(env, DisableTxChecksum, "disableTxChecksum"));
}

}  // namespace ovnode
