// Link removal over rtnetlink, on a libuv worker thread. Deleting a veth makes the kernel wait for
// an RCU grace period inside the sendmsg that carries RTM_DELLINK (unregister_netdevice ->
// synchronize_net, ~15-20 ms on a busy node). The daemon's own netlink socket lives on the
// JavaScript thread, where that wait blocks the event loop; deleteLink(netnsPath, ifName) pays it
// on a pool thread instead (see NetnsWorker), with a socket of its own opened inside the netns.
#include "links.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "args.h"
#include "errors.h"
#include "fd.h"
#include "netns.h"

namespace ovnode {
namespace {

constexpr const char* kOp = "RTM_DELLINK";

// RTM_DELLINK naming the link by IFLA_IFNAME (ifi_index 0): a header, struct ifinfomsg, then one
// attribute holding the name with its NUL, padded to the netlink alignment.
struct DelLinkRequest {
  nlmsghdr header;
  ifinfomsg link;
  alignas(NLMSG_ALIGNTO) char attrs[RTA_SPACE(IFNAMSIZ)];
};
static_assert(offsetof(DelLinkRequest, attrs) == NLMSG_LENGTH(sizeof(ifinfomsg)),
              "the attribute must follow the padded ifinfomsg");

DelLinkRequest BuildDelLink(const std::string& if_name, uint32_t seq) {
  DelLinkRequest req;
  std::memset(&req, 0, sizeof(req));
  req.header.nlmsg_type = RTM_DELLINK;
  req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.header.nlmsg_seq = seq;
  req.link.ifi_family = AF_UNSPEC;
  auto* attr = reinterpret_cast<rtattr*>(req.attrs);
  attr->rta_type = IFLA_IFNAME;
  attr->rta_len = RTA_LENGTH(if_name.size() + 1);  // the name was checked: < IFNAMSIZ bytes
  std::memcpy(RTA_DATA(attr), if_name.c_str(), if_name.size() + 1);
  req.header.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg)) + RTA_ALIGN(attr->rta_len);
  return req;
}

// Deletes the link named if_name in the calling thread's netns: true when deleted, false when the
// netns has no such link (ENODEV). One request on a fresh NETLINK_ROUTE socket, then its ACK.
// Throws NativeFailure "RTM_DELLINK(if_name): ..." otherwise; no Node-API: runs on a worker thread.
bool DeleteLinkHere(const std::string& if_name) {
  UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd.valid()) throw NativeFailure(SysFailure{errno, kOp, if_name, "socket"});

  // A fresh socket carries nothing but this exchange, so any sequence number will do.
  constexpr uint32_t kSeq = 1;
  const DelLinkRequest req = BuildDelLink(if_name, kSeq);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;  // nl_pid 0: the kernel
  // rtnetlink handles the request synchronously within this call: this is where the deletion,
  // and its RCU grace period, happens, and the ACK is queued on the socket before it returns.
  ssize_t sent = sendto(fd.get(), &req, req.header.nlmsg_len, 0,
                        reinterpret_cast<const sockaddr*>(&kernel), sizeof(kernel));
  if (sent < 0) throw NativeFailure(SysFailure{errno, kOp, if_name, "sendto"});
  if (static_cast<size_t>(sent) != req.header.nlmsg_len) {
    throw NativeFailure(std::string(kOp) + "(" + if_name + "): short write");
  }

  // Big enough for an nlmsgerr echoing the request; 4-byte aligned for the headers inside.
  alignas(NLMSG_ALIGNTO) char buf[1024];
  for (;;) {
    sockaddr_nl from{};
    socklen_t from_len = sizeof(from);
    ssize_t n =
        recvfrom(fd.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw NativeFailure(SysFailure{errno, kOp, if_name, "recvfrom"});
    }
    if (from.nl_pid != 0) continue;  // not from the kernel
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != kSeq) continue;
      if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
        throw NativeFailure(std::string(kOp) + "(" + if_name + "): unexpected netlink reply type " +
                            std::to_string(h->nlmsg_type));
      }
      // error is 0 for the ACK of a success, else a negative errno.
      const int err = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
      if (err == 0) return true;
      if (err == ENODEV) return false;
      throw NativeFailure(SysFailure{err, kOp, if_name});
    }
  }
}

class DeleteLinkWorker : public NetnsWorker {
 public:
  DeleteLinkWorker(Napi::Env env, std::string netns_path, std::string if_name)
      : NetnsWorker(env, "deleteLink", std::move(netns_path)), if_name_(std::move(if_name)) {}

 protected:
  void RunInside() override { deleted_ = DeleteLinkHere(if_name_); }
  Napi::Value Result(Napi::Env env) override { return Napi::Boolean::New(env, deleted_); }

 private:
  std::string if_name_;
  bool deleted_ = false;
};

// deleteLink(netnsPath, ifName): Promise<boolean>. Never throws: invalid arguments reject with a
// TypeError before anything is queued.
Napi::Value DeleteLink(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "deleteLink";
  return QueueInNetns(info.Env(), [&] {
    std::string netns_path = StringArg(info, 0, fn);
    std::string if_name = StringArg(info, 1, fn);
    CheckDeviceName(info.Env(), if_name, fn);
    return new DeleteLinkWorker(info.Env(), std::move(netns_path), std::move(if_name));
  });
}

}  // namespace

void RegisterLinks(Napi::Env env, Napi::Object exports) {
  exports.Set("deleteLink", Napi::Function::New(env, DeleteLink, "deleteLink"));
}

}  // namespace ovnode
