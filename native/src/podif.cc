// configurePodInterface(netnsPath, spec): the pod side of a CNI ADD after the veth exists, all of
// it on a libuv worker thread inside the pod's netns (see NetnsWorker): the interface's addresses
// (IPv6 ones without DAD), the link up, a default route via each gateway, and optionally the TX
// checksum offloads off (the same work as disableTxChecksum, ethtool.cc).
//
// The rtnetlink part is one sendmsg carrying every request, each with NLM_F_ACK, then one read of
// each ACK. rtnetlink handles the messages of one send in order and synchronously within the call,
// so each request sees the effect of the ones before it (a route's gateway is on-link through the
// address added first), exactly as sequential round trips would, minus the round trips. Unlike
// sequential requests, a failing one does not stop the later ones: the first failure, in request
// order, is what the promise rejects with, and the caller removes the veth on any failure anyway.
#include "podif.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "errors.h"
#include "ethtool.h"
#include "fd.h"
#include "netns.h"

namespace ovnode {
namespace {

constexpr const char* kFn = "configurePodInterface";
// Far beyond any pod (one address and one route per family); keeps one request a small send.
constexpr uint32_t kMaxEntries = 32;

// An IPv4 or IPv6 address in network byte order, as decoded on the JavaScript thread.
struct IpAddress {
  uint8_t family = 0;  // AF_INET or AF_INET6
  uint8_t bytes[16] = {};
  size_t size() const { return family == AF_INET ? 4 : 16; }
};

struct Cidr {
  IpAddress ip;
  uint8_t prefix = 0;
  std::string text;  // as the caller wrote it, for messages
};

struct Gateway {
  IpAddress ip;
  std::string text;
};

struct PodInterfaceSpec {
  std::string if_name;
  std::vector<Cidr> addresses;
  std::vector<Gateway> gateways;
  bool disable_tx_checksum = false;
};

bool ParseIp(const std::string& text, IpAddress& out) {
  if (text.find('\0') != std::string::npos) return false;
  if (inet_pton(AF_INET, text.c_str(), out.bytes) == 1) {
    out.family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), out.bytes) == 1) {
    out.family = AF_INET6;
    return true;
  }
  return false;
}

// "address/prefix" with a decimal prefix within the family's bits and nothing else around.
bool ParseCidr(const std::string& text, Cidr& out) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return false;
  if (!ParseIp(text.substr(0, slash), out.ip)) return false;
  const std::string digits = text.substr(slash + 1);
  if (digits.empty() || digits.size() > 3) return false;
  unsigned prefix = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    prefix = prefix * 10 + static_cast<unsigned>(c - '0');
  }
  if (prefix > out.ip.size() * 8) return false;
  out.prefix = static_cast<uint8_t>(prefix);
  out.text = text;
  return true;
}

// The strings of array property key, each checked by parse; TypeErrors name the entry.
template <class T, class Parse>
std::vector<T> DecodeList(const Napi::Object& spec, const char* key, const char* what,
                          Parse parse) {
  Napi::Env env = spec.Env();
  Napi::Value value = spec.Get(key);
  if (!value.IsArray()) ThrowTypeError(env, std::string(kFn) + ": " + key + " must be an array");
  Napi::Array list = value.As<Napi::Array>();
  if (list.Length() > kMaxEntries) {
    ThrowTypeError(env, std::string(kFn) + ": " + key + " must have at most " +
                            std::to_string(kMaxEntries) + " entries");
  }
  std::vector<T> out(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) {
    const std::string label = std::string(kFn) + ": " + key + "[" + std::to_string(i) + "]";
    Napi::Value entry = list.Get(i);
    if (!entry.IsString()) ThrowTypeError(env, label + " must be a string");
    std::string text = entry.As<Napi::String>().Utf8Value();
    if (!parse(text, out[i])) ThrowTypeError(env, label + ": \"" + text + "\" is not " + what);
  }
  return out;
}

PodInterfaceSpec DecodeSpec(const Napi::Object& spec) {
  Napi::Env env = spec.Env();
  PodInterfaceSpec out;
  out.if_name = StringProp(spec, "ifName", kFn);
  CheckDeviceName(env, out.if_name, kFn);
  out.addresses = DecodeList<Cidr>(spec, "addresses", "an address in CIDR notation", ParseCidr);
  out.gateways = DecodeList<Gateway>(spec, "gateways", "an IP address",
                                     [](const std::string& text, Gateway& gw) {
                                       gw.text = text;
                                       return ParseIp(text, gw.ip);
                                     });
  Napi::Value tx = spec.Get("disableTxChecksum");
  if (!tx.IsBoolean()) {
    ThrowTypeError(env, std::string(kFn) + ": disableTxChecksum must be a boolean");
  }
  out.disable_tx_checksum = tx.As<Napi::Boolean>().Value();
  return out;
}

// Appends netlink messages to one buffer, 4-byte aligned as the kernel wants them.
class NetlinkBatch {
 public:
  // Starts a message whose fixed header (ifaddrmsg, ifinfomsg, rtmsg) is body; returns its seq.
  template <class Body>
  uint32_t Begin(uint16_t type, uint16_t flags, const Body& body) {
    start_ = bytes_.size();
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    h.nlmsg_seq = ++seq_;
    Append(&h, sizeof(h));
    Append(&body, sizeof(body));
    return seq_;
  }

  void Attr(uint16_t type, const void* data, size_t len) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    Append(&a, sizeof(a));
    Append(data, len);
  }

  // Ends the message started last: fills in its length.
  void End() {
    const auto len = static_cast<uint32_t>(bytes_.size() - start_);
    std::memcpy(bytes_.data() + start_ + offsetof(nlmsghdr, nlmsg_len), &len, sizeof(len));
  }

  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  void Append(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
    bytes_.resize(NLMSG_ALIGN(bytes_.size()), 0);
  }

  std::vector<uint8_t> bytes_;
  size_t start_ = 0;
  uint32_t seq_ = 0;
};

// What one request is, for the error naming it: `op(subject): errno text`.
struct Step {
  const char* op;  // a string literal
  std::string subject;
};

// Sends the whole batch in one sendmsg and reads one ACK per request; throws NativeFailure for the
// first request (in order) that failed. No Node-API: runs on a worker thread.
void Exchange(const NetlinkBatch& batch, const std::vector<Step>& steps,
              const std::string& if_name) {
  UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd.valid()) throw NativeFailure(SysFailure{errno, "socket(AF_NETLINK)", if_name, "socket"});

  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;  // nl_pid 0: the kernel
  iovec iov{const_cast<uint8_t*>(batch.bytes().data()), batch.bytes().size()};
  msghdr msg{};
  msg.msg_name = &kernel;
  msg.msg_namelen = sizeof(kernel);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // rtnetlink runs every request within this call; the ACKs are queued before it returns.
  const ssize_t sent = sendmsg(fd.get(), &msg, 0);
  if (sent < 0) throw NativeFailure(SysFailure{errno, "rtnetlink", if_name, "sendmsg"});
  if (static_cast<size_t>(sent) != batch.bytes().size()) {
    throw NativeFailure(std::string(kFn) + "(" + if_name + "): short netlink write");
  }

  // Seqs are 1..steps.size(); errs[seq - 1] is the request's errno (0: done).
  std::vector<int> errs(steps.size(), -1);
  size_t acked = 0;
  // Big enough for an error ACK echoing a request; 4-byte aligned for the headers inside.
  alignas(NLMSG_ALIGNTO) char buf[8192];
  while (acked < steps.size()) {
    sockaddr_nl from{};
    iovec riov{buf, sizeof(buf)};
    msghdr rmsg{};
    rmsg.msg_name = &from;
    rmsg.msg_namelen = sizeof(from);
    rmsg.msg_iov = &riov;
    rmsg.msg_iovlen = 1;
    const ssize_t n = recvmsg(fd.get(), &rmsg, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw NativeFailure(SysFailure{errno, "rtnetlink", if_name, "recvmsg"});
    }
    if (rmsg.msg_flags & MSG_TRUNC) {
      throw NativeFailure(std::string(kFn) + "(" + if_name + "): truncated netlink reply");
    }
    if (from.nl_pid != 0) continue;  // not from the kernel
    int left = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) continue;
      const uint32_t seq = h->nlmsg_seq;
      if (seq == 0 || seq > steps.size() || errs[seq - 1] != -1) continue;
      // error is 0 for the ACK of a success, else a negative errno.
      errs[seq - 1] = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
      acked++;
    }
  }
  for (size_t i = 0; i < steps.size(); i++) {
    if (errs[i] != 0) throw NativeFailure(SysFailure{errs[i], steps[i].op, steps[i].subject});
  }
}

void ConfigureHere(const PodInterfaceSpec& spec) {
  const std::string& name = spec.if_name;
  const unsigned index = if_nametoindex(name.c_str());
  if (index == 0) throw NativeFailure(SysFailure{errno, "if_nametoindex", name});

  NetlinkBatch batch;
  std::vector<Step> steps;

  for (const Cidr& a : spec.addresses) {
    ifaddrmsg ifa{};
    ifa.ifa_family = a.ip.family;
    ifa.ifa_prefixlen = a.prefix;
    // The address is ours by IPAM: a tentative (DAD) address would keep the pod waiting ~1 s.
    ifa.ifa_flags = a.ip.family == AF_INET6 ? IFA_F_NODAD : 0;
    ifa.ifa_scope = RT_SCOPE_UNIVERSE;
    ifa.ifa_index = index;
    batch.Begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifa);
    batch.Attr(IFA_LOCAL, a.ip.bytes, a.ip.size());
    batch.Attr(IFA_ADDRESS, a.ip.bytes, a.ip.size());
    batch.End();
    steps.push_back({"RTM_NEWADDR", name + " " + a.text});
  }

  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = static_cast<int>(index);
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  batch.Begin(RTM_NEWLINK, 0, ifi);
  batch.End();
  steps.push_back({"RTM_NEWLINK", name + " up"});

  for (const Gateway& gw : spec.gateways) {
    rtmsg rtm{};
    rtm.rtm_family = gw.ip.family;
    rtm.rtm_dst_len = 0;  // default route
    rtm.rtm_table = RT_TABLE_MAIN;
    rtm.rtm_protocol = RTPROT_BOOT;
    rtm.rtm_scope = RT_SCOPE_UNIVERSE;
    rtm.rtm_type = RTN_UNICAST;
    batch.Begin(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, rtm);
    const uint32_t oif = index;
    batch.Attr(RTA_OIF, &oif, sizeof(oif));
    batch.Attr(RTA_GATEWAY, gw.ip.bytes, gw.ip.size());
    batch.End();
    steps.push_back({"RTM_NEWROUTE", name + " default via " + gw.text});
  }

  Exchange(batch, steps, name);
  if (spec.disable_tx_checksum) DisableTxChecksumHere(name);
}

class ConfigurePodInterfaceWorker : public NetnsWorker {
 public:
  ConfigurePodInterfaceWorker(Napi::Env env, std::string netns_path, PodInterfaceSpec spec)
      : NetnsWorker(env, kFn, std::move(netns_path)), spec_(std::move(spec)) {}

 protected:
  void RunInside() override { ConfigureHere(spec_); }

 private:
  PodInterfaceSpec spec_;
};

// configurePodInterface(netnsPath, spec): Promise<void>. Never throws: invalid arguments reject
// with a TypeError before anything is queued.
Napi::Value ConfigurePodInterface(const Napi::CallbackInfo& info) {
  return QueueInNetns(info.Env(), [&] {
    std::string netns_path = StringArg(info, 0, kFn);
    PodInterfaceSpec spec = DecodeSpec(ObjectArg(info, 1, kFn));
    return new ConfigurePodInterfaceWorker(info.Env(), std::move(netns_path), std::move(spec));
  });
}

}  // namespace

void RegisterPodInterface(Napi::Env env, Napi::Object exports) {
  exports.Set(kFn, Napi::Function::New(env, ConfigurePodInterface, kFn));
}

}  // namespace ovnode
