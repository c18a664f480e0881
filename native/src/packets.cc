// Announcement frames, built byte by byte and sent on an AF_PACKET socket. A packet socket
// rather than an IPv4/ICMPv6 socket because the address being announced may not be usable as a
// source yet (IPv6 DAD still running, or the address not assigned in this netns at all), and
// because the Ethernet source must be the pod's MAC whatever the interface's own address is.
//
// Two ways in, one sender (SendAnnouncements): sendGratuitousArp / sendUnsolicitedNa send from the
// JavaScript thread's current netns (inside runIn), and announce(netnsPath, list) does the whole
// job on a libuv worker thread. The latter exists because closing an AF_PACKET socket waits for
// an RCU grace period (packet_release -> synchronize_net), ~15 ms on a busy node, which the
// synchronous calls spend blocking the event loop.
#include "packets.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "errors.h"
#include "fd.h"
#include "netns.h"

namespace ovnode {
namespace {

using Mac = std::array<uint8_t, ETH_ALEN>;

constexpr Mac kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
// ff02::1 mapped to Ethernet per RFC 2464 section 7: 33:33 + low 32 bits of the group.
constexpr Mac kAllNodesMac = {0x33, 0x33, 0x00, 0x00, 0x00, 0x01};
// A burst is sent back to back (on the JavaScript thread for the synchronous calls); the cap keeps
// a bad count from blocking it or flooding the link. Spacing repeated announcements over time is
// the caller's job.
constexpr uint32_t kMaxCount = 100;

// Appends big-endian fields to a frame.
class FrameWriter {
 public:
  void U8(uint8_t v) { bytes_.push_back(v); }
  void U16(uint16_t v) {
    U8(static_cast<uint8_t>(v >> 8));
    U8(static_cast<uint8_t>(v));
  }
  void U32(uint32_t v) {
    U16(static_cast<uint16_t>(v >> 16));
    U16(static_cast<uint16_t>(v));
  }
  void Bytes(const uint8_t* p, size_t n) { bytes_.insert(bytes_.end(), p, p + n); }
  void Zeros(size_t n) { bytes_.insert(bytes_.end(), n, 0); }
  void Ethernet(const Mac& dst, const Mac& src, uint16_t ethertype) {
    Bytes(dst.data(), dst.size());
    Bytes(src.data(), src.size());
    U16(ethertype);
  }
  size_t size() const { return bytes_.size(); }
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

enum class Kind { kGarp, kNa };

// One validated announcement, plain data that can cross to a worker thread. ip is in network
// byte order: 4 bytes for kGarp, 16 for kNa.
struct Announcement {
  Kind kind;
  std::string if_name;
  Mac mac;
  std::vector<uint8_t> ip;
  uint32_t count;
};

// Validates one request object on the JavaScript thread. label starts every TypeError message:
// the function name for the synchronous calls, e.g. "announce: announcements[2]" for announce.
Announcement DecodeAnnouncement(const Napi::Object& req, Kind kind, const std::string& label) {
  Napi::Env env = req.Env();
  const char* fn = label.c_str();
  const int family = kind == Kind::kGarp ? AF_INET : AF_INET6;
  Announcement a;
  a.kind = kind;
  a.if_name = StringProp(req, "ifName", fn);
  CheckInterfaceName(env, a.if_name, fn);
  std::string mac = StringProp(req, "mac", fn);
  if (!ParseMac(mac, a.mac)) ThrowTypeError(env, std::string(fn) + ": invalid MAC \"" + mac + "\"");
  // A multicast source MAC is invalid on Ethernet (IEEE 802.3) and receivers drop it.
  if (a.mac[0] & 0x01) {
    ThrowTypeError(env, std::string(fn) + ": MAC \"" + mac + "\" is not a unicast address");
  }
  std::string ip = StringProp(req, "ip", fn);
  a.ip.resize(family == AF_INET ? 4 : 16);
  if (inet_pton(family, ip.c_str(), a.ip.data()) != 1) {
    ThrowTypeError(env, std::string(fn) + ": \"" + ip + "\" is not an " +
                            (family == AF_INET ? "IPv4" : "IPv6") + " address");
  }
  a.count = OptionalUintProp(req, "count", fn, 1, 1, kMaxCount);
  return a;
}

// ARP Announcement as RFC 5227 section 2.3 defines it: an ARP request broadcast with sender and
// target protocol address both set to the announced IP and a zero target hardware address.
// Receivers that already cache the IP update the MAC; Linux creates no new entry unless
// arp_accept is set, which is what we want from an announcement.
std::vector<uint8_t> BuildGratuitousArp(const Announcement& a) {
  FrameWriter w;
  w.Ethernet(kBroadcastMac, a.mac, ETHERTYPE_ARP);
  w.U16(1);             // hardware type: Ethernet
  w.U16(ETHERTYPE_IP);  // protocol type: IPv4
  w.U8(ETH_ALEN);
  w.U8(4);
  w.U16(1);  // opcode: request
  w.Bytes(a.mac.data(), a.mac.size());
  w.Bytes(a.ip.data(), a.ip.size());
  w.Zeros(ETH_ALEN);
  w.Bytes(a.ip.data(), a.ip.size());
  // Pad to the Ethernet minimum ourselves: a virtual device would otherwise send a runt.
  if (w.size() < ETH_ZLEN) w.Zeros(ETH_ZLEN - w.size());
  return std::move(w.bytes());
}

// Internet checksum (RFC 1071) over the IPv6 pseudo-header (RFC 8200 section 8.1) and the ICMPv6
// message, which must hold a zero checksum field while this runs.
uint16_t Icmpv6Checksum(const uint8_t* src, const uint8_t* dst, const uint8_t* msg, size_t len) {
  uint32_t sum = 0;
  auto add = [&sum](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; i += 2) {
      sum += static_cast<uint32_t>(p[i] << 8) | (i + 1 < n ? p[i + 1] : 0);
    }
  };
  add(src, 16);
  add(dst, 16);
  sum += static_cast<uint32_t>(len >> 16) + static_cast<uint32_t>(len & 0xffff);
  sum += IPPROTO_ICMPV6;
  add(msg, len);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// RFC 4861 section 7.2.6 unsolicited neighbour advertisement: to all-nodes, Solicited flag clear
// (it answers nobody), Override set so receivers replace a cached MAC, with the target link-layer
// address option. Hop limit 255 is mandatory: receivers drop NAs that crossed a router (7.1.2).
std::vector<uint8_t> BuildUnsolicitedNa(const Announcement& a) {
  constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
  constexpr size_t kIcmpLen = 4 + 4 + 16 + 8;  // header, flags, target, one 8-byte option
  constexpr uint32_t kOverrideFlag = 0x20000000;

  FrameWriter w;
  w.Ethernet(kAllNodesMac, a.mac, ETHERTYPE_IPV6);
  w.U32(0x60000000);  // version 6, traffic class 0, flow label 0
  w.U16(kIcmpLen);
  w.U8(IPPROTO_ICMPV6);
  w.U8(255);
  // Source is the announced address itself, as Linux does for its own unsolicited NAs: the link
  // local address may not exist (or not be ours to use) in this netns.
  w.Bytes(a.ip.data(), a.ip.size());
  w.Bytes(kAllNodes, sizeof(kAllNodes));

  const size_t icmp_at = w.size();
  w.U8(136);  // type: neighbour advertisement
  w.U8(0);    // code
  w.U16(0);   // checksum, filled below
  w.U32(kOverrideFlag);
  w.Bytes(a.ip.data(), a.ip.size());
  w.U8(2);  // option: target link-layer address
  w.U8(1);  // option length in units of 8 bytes
  w.Bytes(a.mac.data(), a.mac.size());

  std::vector<uint8_t>& frame = w.bytes();
  uint16_t checksum = Icmpv6Checksum(a.ip.data(), kAllNodes, frame.data() + icmp_at, kIcmpLen);
  frame[icmp_at + 2] = static_cast<uint8_t>(checksum >> 8);
  frame[icmp_at + 3] = static_cast<uint8_t>(checksum);
  return std::move(frame);
}

// A send-only packet socket, not bound to any interface: every sendto names the interface and
// the frame's protocol in its sockaddr_ll, so one socket sends ARP and IPv6 frames on any link of
// the netns it was created in. Protocol 0 means the kernel queues no received frames to it, so
// nothing accumulates while it is open. Throws NativeFailure only: runs on worker threads too.
class PacketSocket {
 public:
  // subject names the failure of socket() (an interface the socket was opened for).
  explicit PacketSocket(const std::string& subject)
      : fd_(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0)) {
    if (!fd_.valid()) throw NativeFailure(SysFailure{errno, "socket(AF_PACKET)", subject, "socket"});
  }

  void Send(unsigned int ifindex, const std::string& if_name, const std::vector<uint8_t>& frame,
            const Mac& dst, uint16_t ethertype) {
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_protocol = htons(ethertype);
    to.sll_ifindex = static_cast<int>(ifindex);
    to.sll_halen = ETH_ALEN;
    std::copy(dst.begin(), dst.end(), to.sll_addr);
    ssize_t sent = sendto(fd_.get(), frame.data(), frame.size(), 0,
                          reinterpret_cast<const sockaddr*>(&to), sizeof(to));
    if (sent < 0) throw NativeFailure(SysFailure{errno, "sendto", if_name});
    if (static_cast<size_t>(sent) != frame.size()) {
      throw NativeFailure("sendto(" + if_name + "): short write");
    }
  }

 private:
  UniqueFd fd_;
};

// Sends every announcement, in order, from the calling thread's current netns: the one sender
// behind both the synchronous calls and announce. All interface names are resolved before the
// socket is opened, so a missing link fails without paying for a socket close (see the top of
// this file); one socket then serves the whole list. Stops at the first failure, so earlier
// announcements of the list have been sent when it throws. Throws NativeFailure only and uses no
// Node-API: safe on a libuv worker thread.
void SendAnnouncements(std::span<const Announcement> list) {
  if (list.empty()) return;
  std::vector<unsigned int> ifindexes;
  ifindexes.reserve(list.size());
  for (const Announcement& a : list) {
    unsigned int ifindex = if_nametoindex(a.if_name.c_str());
    if (ifindex == 0) throw NativeFailure(SysFailure{errno, "if_nametoindex", a.if_name});
    ifindexes.push_back(ifindex);
  }
  PacketSocket sock(list.front().if_name);
  for (size_t i = 0; i < list.size(); i++) {
    const Announcement& a = list[i];
    const bool arp = a.kind == Kind::kGarp;
    const std::vector<uint8_t> frame = arp ? BuildGratuitousArp(a) : BuildUnsolicitedNa(a);
    const Mac& dst = arp ? kBroadcastMac : kAllNodesMac;
    const uint16_t ethertype = arp ? ETHERTYPE_ARP : ETHERTYPE_IPV6;
    for (uint32_t n = 0; n < a.count; n++) sock.Send(ifindexes[i], a.if_name, frame, dst, ethertype);
  }
  // ~PacketSocket: close() waits for an RCU grace period (packet_release -> synchronize_net).
}

Napi::Value SendOne(const Napi::CallbackInfo& info, Kind kind, const char* fn) {
  Announcement a = DecodeAnnouncement(ObjectArg(info, 0, fn), kind, fn);
  RethrowAsJs(info.Env(), [&] { SendAnnouncements({&a, 1}); });
  return info.Env().Undefined();
}

Napi::Value SendGratuitousArp(const Napi::CallbackInfo& info) {
  return SendOne(info, Kind::kGarp, "sendGratuitousArp");
}

Napi::Value SendUnsolicitedNa(const Napi::CallbackInfo& info) {
  return SendOne(info, Kind::kNa, "sendUnsolicitedNa");
}

// announce's work on a libuv pool thread, inside the netns (see NetnsWorker): the same sender as
// the synchronous calls, so the same errors.
class AnnounceWorker : public NetnsWorker {
 public:
  AnnounceWorker(Napi::Env env, std::string netns_path, std::vector<Announcement> list)
      : NetnsWorker(env, "announce", std::move(netns_path)), list_(std::move(list)) {}

 protected:
  // The packet socket is closed inside SendAnnouncements, before the thread leaves the netns.
  void RunInside() override { SendAnnouncements(list_); }

 private:
  std::vector<Announcement> list_;
};

// Argument validation for announce, on the JavaScript thread: the same checks as the synchronous
// calls, per element, plus the kind.
std::vector<Announcement> DecodeAnnouncementList(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  if (!info[1].IsArray()) ThrowTypeError(env, std::string(fn) + ": argument 2 must be an array");
  Napi::Array items = info[1].As<Napi::Array>();
  std::vector<Announcement> list;
  list.reserve(items.Length());
  for (uint32_t i = 0; i < items.Length(); i++) {
    const std::string label = std::string(fn) + ": announcements[" + std::to_string(i) + "]";
    Napi::Value item = items.Get(i);
    if (!item.IsObject() || item.IsArray()) ThrowTypeError(env, label + " must be an object");
    Napi::Object req = item.As<Napi::Object>();
    Napi::Value kind = req.Get("kind");
    const std::string kind_text = kind.IsString() ? kind.As<Napi::String>().Utf8Value() : "";
    if (kind_text != "garp" && kind_text != "na") {
      ThrowTypeError(env, label + ": kind must be \"garp\" or \"na\"");
    }
    list.push_back(DecodeAnnouncement(req, kind_text == "garp" ? Kind::kGarp : Kind::kNa, label));
  }
  return list;
}

// announce(netnsPath, announcements): Promise<void>. Never throws: invalid arguments reject the
// returned promise (with the TypeError the synchronous calls would throw) before anything is
// queued; everything else happens on the worker.
Napi::Value Announce(const Napi::CallbackInfo& info) {
  constexpr const char* fn = "announce";
  return QueueInNetns(info.Env(), [&] {
    std::string netns_path = StringArg(info, 0, fn);
    std::vector<Announcement> list = DecodeAnnouncementList(info, fn);
    return new AnnounceWorker(info.Env(), std::move(netns_path), std::move(list));
  });
}
}  // namespace

void RegisterPackets(Napi::Env env, Napi::Object exports) {
  exports.Set("sendGratuitousArp", Napi::Function::New(env, SendGratuitousArp, "sendGratuitousArp"));
  exports.Set("sendUnsolicitedNa", Napi::Function::New(env, SendUnsolicitedNa, "sendUnsolicitedNa"));
  exports.Set("announce", Napi::Function::New(env, Announce, "announce"));
}

}  // namespace ovnode
