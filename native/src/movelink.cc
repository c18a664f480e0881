// moveLink(spec): moves a netdev between network namespaces over rtnetlink, on a libuv worker
// thread. Moving a netdev unregisters it from its old netns, which waits for an RCU grace period
// (synchronize_net, ~15 ms) inside the sendmsg carrying the request: on the JavaScript thread that
// would block the event loop, as RTM_DELLINK would (see links.cc). Used for SR-IOV VFs, which
// cannot be created in the pod's netns like a veth end: they exist in the node's and are moved.
//
// The kernel keeps a link's name across netns, and refuses the move (EEXIST) when that name is
// taken in the target; a pod's interface is named eth0 and the node has VFs of any name, so the
// link crosses under a name of the caller's choosing (tempName) and takes its final name on
// arrival. A name change needs the link down, so it is set down first; it stays down.
//
// Unlike NetnsWorker (netns.h), which holds a pool thread in one netns, this visits two in turn,
// each with its own NetnsSwitch and its own NETLINK_ROUTE socket (a socket acts in the netns it
// was created in). Both paths are opened first, from the pool thread's own netns: a wrong path
// fails before the link is touched, and a path such as /proc/thread-self/ns/net means the same
// for either argument.
#include "movelink.h"

#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "args.h"
#include "errors.h"
#include "fd.h"
#include "netns.h"

namespace ovnode {
namespace {

constexpr const char* kFn = "moveLink";
// Names the pool thread in NetnsSwitch's abort message; a literal: NetnsSwitch keeps the pointer.
constexpr const char* kWho = "moveLink (libuv worker thread)";
constexpr const char* kNewLink = "RTM_NEWLINK";
// IPv4's minimum (RFC 791) and IFLA_MTU's largest value any Ethernet driver accepts.
constexpr uint32_t kMinMtu = 68;
constexpr uint32_t kMaxMtu = 65535;

using Mac = std::array<uint8_t, ETH_ALEN>;

struct MoveSpec {
  std::string from_netns;
  std::string if_name;
  std::string to_netns;
  std::string temp_name;
  std::string name;
  std::optional<Mac> mac;
  std::string mac_text;  // as the caller wrote it, for messages
  uint32_t mtu = 0;      // 0: leave the MTU as it is
};

std::string DeviceNameProp(const Napi::Object& spec, const char* key) {
  std::string name = StringProp(spec, key, kFn);
  CheckDeviceName(spec.Env(), name, kFn);
  return name;
}

// Validates the whole request on the JavaScript thread, in the order of the LinkMove fields, so
// that a wrong call fails with a TypeError before anything is queued.
MoveSpec DecodeSpec(const Napi::Object& spec) {
  Napi::Env env = spec.Env();
  MoveSpec out;
  out.from_netns = StringProp(spec, "fromNetns", kFn);
  out.if_name = DeviceNameProp(spec, "ifName");
  out.to_netns = StringProp(spec, "toNetns", kFn);
  out.temp_name = DeviceNameProp(spec, "tempName");
  out.name = DeviceNameProp(spec, "name");
  if (!spec.Get("mac").IsUndefined()) {
    out.mac_text = StringProp(spec, "mac", kFn);
    Mac mac{};
    if (!ParseMac(out.mac_text, mac)) {
      ThrowTypeError(env, std::string(kFn) + ": invalid MAC \"" + out.mac_text + "\"");
    }
    // The kernel refuses both for an Ethernet device (is_valid_ether_addr: EADDRNOTAVAIL), after
    // the move; refused here, the link is never touched.
    if (mac[0] & 0x01) {
      ThrowTypeError(env, std::string(kFn) + ": MAC \"" + out.mac_text +
                              "\" is not a unicast address");
    }
    if (mac == Mac{}) {
      ThrowTypeError(env, std::string(kFn) + ": MAC \"" + out.mac_text +
                              "\" is the all-zero address");
    }
    out.mac = mac;
  }
  out.mtu = OptionalUintProp(spec, "mtu", kFn, 0, kMinMtu, kMaxMtu);
  return out;
}

// One RTM_NEWLINK changing the link with index ifi_index, with at most one attribute: each step is
// its own request so that a failure names exactly that step and stops the later ones.
struct NewLinkRequest {
  nlmsghdr header;
  ifinfomsg link;
  // The largest attribute is a name with its NUL (IFLA_IFNAME); the others are 4 or 6 bytes.
  alignas(NLMSG_ALIGNTO) char attr[RTA_SPACE(IFNAMSIZ)];
};
static_assert(offsetof(NewLinkRequest, attr) == NLMSG_LENGTH(sizeof(ifinfomsg)),
              "the attribute must follow the padded ifinfomsg");

NewLinkRequest BuildNewLink(unsigned index) {
  NewLinkRequest req;
  std::memset(&req, 0, sizeof(req));
  req.header.nlmsg_type = RTM_NEWLINK;
  req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.header.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  req.link.ifi_family = AF_UNSPEC;
  req.link.ifi_index = static_cast<int>(index);
  return req;
}

// Only the callers below add attributes, each at most IFNAMSIZ bytes (names were checked).
void SetAttr(NewLinkRequest& req, uint16_t type, const void* data, size_t len) {
  auto* attr = reinterpret_cast<rtattr*>(req.attr);
  attr->rta_type = type;
  attr->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
  std::memcpy(RTA_DATA(attr), data, len);
  req.header.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg)) + RTA_ALIGN(attr->rta_len);
}

void SetName(NewLinkRequest& req, const std::string& name) {
  SetAttr(req, IFLA_IFNAME, name.c_str(), name.size() + 1);
}

void SetU32(NewLinkRequest& req, uint16_t type, uint32_t value) {
  SetAttr(req, type, &value, sizeof(value));
}

// A NETLINK_ROUTE socket of the calling thread's netns, for one request at a time: each Send
// waits for its ACK, so the next request sees its effect and a failure stops the sequence.
// No Node-API: runs on a worker thread.
class Rtnl {
 public:
  explicit Rtnl(const std::string& if_name)
      : fd_(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) {
    if (!fd_.valid()) {
      throw NativeFailure(SysFailure{errno, "socket(AF_NETLINK)", if_name, "socket"});
    }
  }

  // Throws NativeFailure "RTM_NEWLINK(subject): errno text" when the kernel refuses the request.
  void Send(NewLinkRequest& req, const std::string& subject) {
    req.header.nlmsg_seq = ++seq_;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;  // nl_pid 0: the kernel
    // rtnetlink handles the request within this call (the move's RCU wait included) and queues
    // the ACK before it returns.
    const ssize_t sent = sendto(fd_.get(), &req, req.header.nlmsg_len, 0,
                                reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel));
    if (sent < 0) throw NativeFailure(SysFailure{errno, kNewLink, subject, "sendto"});
    if (static_cast<size_t>(sent) != req.header.nlmsg_len) {
      throw NativeFailure(std::string(kNewLink) + "(" + subject + "): short netlink write");
    }
    // Big enough for an nlmsgerr echoing the request; 4-byte aligned for the headers inside.
    alignas(NLMSG_ALIGNTO) char buf[1024];
    for (;;) {
      sockaddr_nl from{};
      socklen_t from_len = sizeof(from);
      const ssize_t n =
          recvfrom(fd_.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw NativeFailure(SysFailure{errno, kNewLink, subject, "recvfrom"});
      }
      if (from.nl_pid != 0) continue;  // not from the kernel
      int len = static_cast<int>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_seq != seq_) continue;
        if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
          throw NativeFailure(std::string(kNewLink) + "(" + subject +
                              "): unexpected netlink reply type " + std::to_string(h->nlmsg_type));
        }
        // error is 0 for the ACK of a success, else a negative errno.
        const int err = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
        if (err != 0) throw NativeFailure(SysFailure{err, kNewLink, subject});
        return;
      }
    }
  }

 private:
  UniqueFd fd_;
  uint32_t seq_ = 0;
};

// The index of the link named name in the calling thread's netns, or NativeFailure
// "if_nametoindex(name): No such device" (ENODEV).
unsigned IndexOf(const std::string& name) {
  const unsigned index = if_nametoindex(name.c_str());
  if (index == 0) throw NativeFailure(SysFailure{errno, "if_nametoindex", name});
  return index;
}

// The whole move, on a pool thread; returns the link's index in the target netns (the kernel keeps
// the index across the move only when it is free there). Throws NativeFailure.
unsigned MoveLinkNow(const MoveSpec& spec) {
  UniqueFd from = OpenNetns(spec.from_netns);
  UniqueFd to = OpenNetns(spec.to_netns);
  {
    // ~NetnsSwitch returns the thread to its own netns however the block is left, or aborts the
    // process (a pool thread left behind would run later, unrelated work in this netns).
    NetnsSwitch inside(from, spec.from_netns, kWho);
    Rtnl rtnl(spec.if_name);
    const unsigned index = IndexOf(spec.if_name);

    NewLinkRequest down = BuildNewLink(index);
    down.link.ifi_change = IFF_UP;  // ifi_flags 0: clear IFF_UP
    rtnl.Send(down, spec.if_name + " down");

    if (spec.temp_name != spec.if_name) {
      NewLinkRequest rename = BuildNewLink(index);
      SetName(rename, spec.temp_name);
      rtnl.Send(rename, spec.if_name + " name " + spec.temp_name);
    }

    NewLinkRequest move = BuildNewLink(index);
    SetU32(move, IFLA_NET_NS_FD, static_cast<uint32_t>(to.get()));
    rtnl.Send(move, spec.temp_name + " netns " + spec.to_netns);
  }
  // From here on the link is in the target netns: a failure leaves it there, under tempName until
  // the rename succeeded. The caller knows both names and cleans up.
  NetnsSwitch inside(to, spec.to_netns, kWho);
  Rtnl rtnl(spec.temp_name);
  const unsigned index = IndexOf(spec.temp_name);

  if (spec.name != spec.temp_name) {
    NewLinkRequest rename = BuildNewLink(index);
    SetName(rename, spec.name);
    rtnl.Send(rename, spec.temp_name + " name " + spec.name);
  }
  if (spec.mac) {
    NewLinkRequest address = BuildNewLink(index);
    SetAttr(address, IFLA_ADDRESS, spec.mac->data(), spec.mac->size());
    rtnl.Send(address, spec.name + " address " + spec.mac_text);
  }
  if (spec.mtu != 0) {
    NewLinkRequest mtu = BuildNewLink(index);
    SetU32(mtu, IFLA_MTU, spec.mtu);
    rtnl.Send(mtu, spec.name + " mtu " + std::to_string(spec.mtu));
  }
  return index;
}

// Settles the promise of one moveLink call: a NetnsWorker in all but the netns handling (two
// namespaces in turn, see the top of this file), with the same kinds of rejections.
class MoveLinkWorker : public Napi::AsyncWorker {
 public:
  MoveLinkWorker(Napi::Env env, MoveSpec spec)
      : Napi::AsyncWorker(env, "ovnode.moveLink"),
        deferred_(Napi::Promise::Deferred::New(env)),
        spec_(std::move(spec)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 private:
  void Execute() override {
    try {
      index_ = MoveLinkNow(spec_);
    } catch (const NativeFailure& failure) {
      failure_ = failure;
    } catch (const std::exception& e) {  // std::bad_alloc and the like
      failure_ = NativeFailure(std::string(kFn) + "(" + spec_.if_name + "): " + e.what());
    }
  }

  void OnOK() override {
    if (failure_) {
      deferred_.Reject(failure_->ToJs(Env()).Value());
    } else {
      deferred_.Resolve(Napi::Number::New(Env(), index_));
    }
  }

  // Only reached if Execute let an exception escape, which it does not; settle the promise anyway.
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
  MoveSpec spec_;
  unsigned index_ = 0;
  std::optional<NativeFailure> failure_;
};

// moveLink(spec): Promise<number>. Never throws: invalid arguments reject with a TypeError before
// anything is queued.
Napi::Value MoveLink(const Napi::CallbackInfo& info) {
  return QueueInNetns(info.Env(), [&] { return new MoveLinkWorker(info.Env(), DecodeSpec(ObjectArg(info, 0, kFn))); });
}

}  // namespace

void RegisterMoveLink(Napi::Env env, Napi::Object exports) {
  exports.Set(kFn, Napi::Function::New(env, MoveLink, kFn));
}

}  // namespace ovnode
