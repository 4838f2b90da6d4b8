// SPDX-License-Identifier: Apache-2.0
// Which ways of handing the kernel an *encapsulated* TCP super-packet whole does the running
// kernel accept, and what does each cost? (issue 19 item 3; docs/tunnel-speed.md). Not a
// pass/fail test: tests/perf/tunnel_gso_probe.sh runs it in two namespaces and prints what it saw.
//
//   tunnel_gso_probe recv <seconds>             in the server namespace: counts GUE datagrams on
//                                               UDP 5555 and IPIP packets on a raw socket, checks
//                                               every inner TCP checksum, prints the sizes seen
//   tunnel_gso_probe send <mode> <count> <dmac> in the balancer namespace: builds a 64 KB inner
//                                               IPv4/TCP super-packet, encapsulates it and sends it
//                                               <count> times by <mode>; prints the errors and the
//                                               time taken
// Modes:
//   tun-gue       L3 TUN, 24-byte virtio_net_hdr_v1_hash_tunnel, GSO_UDP_TUNNEL_IPV4|TCPV4
//   tun-gue-opts  the same with 16 bytes of IPv4 NOP options in the outer header
//   tap-gue       TAP (Ethernet), 24-byte header, GSO_UDP_TUNNEL_IPV4|TCPV4
//   tun-ipip      L3 TUN, 12-byte header, IPIP with GSO_TCPV4 (csum_start at the inner TCP)
//   tun-gre       the same for GRE (4-byte header, protocol IPv4)
//   pkt-gue       AF_PACKET PACKET_VNET_HDR on the veth with the tunnel GSO type
//   probe-down    no traffic: a tunnel-GSO write to a TAP device that is down (EIO = accepted)
//   pkt-seg       AF_PACKET, the super-packet cut into wire packets in userspace (what lbd does
//                 today), one sendmsg each
// The devices are created here and configured with ip(8) (a probe, not lbd code).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

namespace {

constexpr uint16_t kGuePort = 5555;
constexpr size_t kPayload = 62000;  // inner TCP payload per super-packet
constexpr uint16_t kMss = 1400;     // wire packet: 20 + 8 + 4 + 20 + 20 + 1400 = 1472
// include/uapi/linux/virtio_net.h (6.17+)
constexpr uint8_t kGsoTcpv4 = 1;
constexpr uint8_t kGsoUdpTunnelIpv4 = 0x20;
constexpr uint8_t kNeedsCsum = 1;

double now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc) {
  for (size_t i = 0; i + 1 < n; i += 2)
    acc += (uint32_t(p[i]) << 8) | p[i + 1];
  if (n & 1)
    acc += uint32_t(p[n - 1]) << 8;
  return acc;
}

uint16_t fold(uint32_t acc) {
  while (acc >> 16)
    acc = (acc & 0xffff) + (acc >> 16);
  return uint16_t(acc);
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

void put32(uint8_t* p, uint32_t v) {
  put16(p, uint16_t(v >> 16));
  put16(p + 2, uint16_t(v));
}

void ipv4(uint8_t* h, size_t ihl_bytes, uint16_t tot, uint8_t proto, const char* s, const char* d) {
  memset(h, 0, ihl_bytes);
  h[0] = uint8_t(0x40 | (ihl_bytes / 4));
  put16(h + 2, tot);
  put16(h + 4, 1);
  h[6] = 0x40;  // DF
  h[8] = 64;
  h[9] = proto;
  inet_pton(AF_INET, s, h + 12);
  inet_pton(AF_INET, d, h + 16);
  for (size_t i = 20; i < ihl_bytes; ++i)
    h[i] = 1;  // NOP
  put16(h + 10, uint16_t(~fold(sum16(h, ihl_bytes, 0))));
}

// Inner IPv4/TCP of `payload` bytes at `p`; TCP checksum = the pseudo-header sum (partial), or
// the full checksum when `full`.
size_t innerPacket(uint8_t* p, size_t payload, uint32_t seq, bool full) {
  const size_t tcp_len = 20 + payload;
  ipv4(p, 20, uint16_t(20 + tcp_len), 6, "198.18.70.1", "198.19.70.1");
  uint8_t* t = p + 20;
  memset(t, 0, 20);
  put16(t, 40000);
  put16(t + 2, 80);
  put32(t + 4, seq);
  put32(t + 8, 1);
  t[12] = 5 << 4;
  t[13] = 0x10;  // ACK
  put16(t + 14, 512);
  for (size_t i = 0; i < payload; ++i)
    t[20 + i] = uint8_t(seq + i);
  uint32_t ph = sum16(p + 12, 8, 0) + 6 + uint32_t(tcp_len);
  if (full)
    put16(t + 16, uint16_t(~fold(sum16(t, tcp_len, ph))));
  else
    put16(t + 16, fold(ph));
  return 20 + tcp_len;
}

// Outer IPv4 (ihl bytes) + UDP 5555 + GUE v0 (proto 4) + inner. Returns the length.
size_t gueWrap(uint8_t* p, size_t ihl, size_t inner_len) {
  const size_t tot = ihl + 8 + 4 + inner_len;
  ipv4(p, ihl, uint16_t(tot), 17, "198.18.71.1", "198.18.72.2");
  uint8_t* u = p + ihl;
  put16(u, 40001);
  put16(u + 2, kGuePort);
  put16(u + 4, uint16_t(8 + 4 + inner_len));
  put16(u + 6, 0);
  u[8] = 0;
  u[9] = 4;  // IPIP
  u[10] = 0;
  u[11] = 0;
  return tot;
}

// virtio_net_hdr_v1_hash_tunnel: hdr(10) num_buffers(2) hash(8) outer_th(2) inner_nh(2)
void tunnelHdr(uint8_t* h, uint16_t l2, uint16_t ihl, uint16_t inner_nh) {
  memset(h, 0, 24);
  h[0] = kNeedsCsum;
  h[1] = kGsoTcpv4 | kGsoUdpTunnelIpv4;
  const uint16_t inner_th = inner_nh + 20;
  const uint16_t hdr_len = inner_th + 20;
  memcpy(h + 2, &hdr_len, 2);  // little endian, as the host
  memcpy(h + 4, &kMss, 2);
  memcpy(h + 6, &inner_th, 2);
  const uint16_t off = 16;
  memcpy(h + 8, &off, 2);
  const uint16_t outer_th = l2 + ihl;
  memcpy(h + 20, &outer_th, 2);
  memcpy(h + 22, &inner_nh, 2);
}

int sys(const std::string& c) {
  int rc = system(c.c_str());
  if (rc != 0)
    fprintf(stderr, "probe: '%s' rc %d\n", c.c_str(), rc);
  return rc;
}

int openTun(bool tap, int hdr_sz) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    perror("open /dev/net/tun");
    exit(1);
  }
  ifreq ifr{};
  snprintf(ifr.ifr_name, IFNAMSIZ, "gt0");
  ifr.ifr_flags = short((tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI | IFF_VNET_HDR);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    perror("TUNSETIFF");
    exit(1);
  }
  if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_sz) != 0) {
    perror("TUNSETVNETHDRSZ");
    exit(1);
  }
  // TUN_F_CSUM|TSO4|TSO6 (the direction to userspace; writes depend on the header size only)
  if (ioctl(fd, TUNSETOFFLOAD, 0x7UL) != 0)
    perror("TUNSETOFFLOAD");
  sys("ip link set gt0 up");
  sys("ip route add 198.18.71.0/24 dev gt0");
  sys("sysctl -qw net.ipv4.conf.gt0.rp_filter=0");
  return fd;
}

std::string devMac(const char* dev) {
  std::string path = std::string("/sys/class/net/") + dev + "/address";
  FILE* f = fopen(path.c_str(), "r");
  char buf[32] = {0};
  if (f == nullptr || fgets(buf, sizeof(buf), f) == nullptr) {
    fprintf(stderr, "probe: no %s\n", path.c_str());
    exit(1);
  }
  fclose(f);
  buf[17] = 0;
  return buf;
}

void parseMac(const std::string& s, uint8_t* out) {
  unsigned v[6];
  sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
  for (int i = 0; i < 6; ++i)
    out[i] = uint8_t(v[i]);
}

// The start-up probe a daemon could run without sending anything: a tunnel-GSO write to a TAP
// device that is down. tun_get_user parses the virtio header (tun_vnet_hdr_tnl_to_skb) before
// it checks IFF_UP, so EIO = the header was accepted, EINVAL = this kernel cannot take it.
int probeDown() {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  ifreq ifr{};
  snprintf(ifr.ifr_name, IFNAMSIZ, "gt1");
  ifr.ifr_flags = short(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
  int sz = 24;
  if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) != 0 || ioctl(fd, TUNSETVNETHDRSZ, &sz) != 0) {
    perror("probe TAP");
    return 1;
  }
  static uint8_t b[24 + 14 + 32 + 40 + 2 * kMss];
  uint8_t* pkt = b + 24;
  memset(pkt, 0xff, 6);
  put16(pkt + 12, ETH_P_IP);
  size_t inner = innerPacket(pkt + 14 + 32, 2 * kMss, 1, false);
  size_t len = 14 + gueWrap(pkt + 14, 20, inner);
  tunnelHdr(b, 14, 20, 14 + 32);
  ssize_t w = write(fd, b, 24 + len);
  int e = errno;
  printf("probe-down: write %zd, errno %s -> %s\n", w, w < 0 ? strerror(e) : "none",
         w < 0 && e == EIO ? "UDP tunnel GSO accepted" : "not accepted");
  close(fd);
  return 0;
}

int send(const std::string& mode, long count, const std::string& dmac_s) {
  if (mode == "probe-down")
    return probeDown();
  static uint8_t buf[80 + 65536];
  uint8_t* const base = buf + 40;  // room for a virtio header and Ethernet in front
  const bool opts = mode == "tun-gue-opts";
  const size_t ihl = opts ? 36 : 20;
  long errors = 0;
  int first_errno = 0;
  double t0 = 0, t1 = 0;
  size_t wire = 0;
  if (mode == "tun-gue" || mode == "tun-gue-opts" || mode == "tap-gue") {
    const bool tap = mode == "tap-gue";
    int fd = openTun(tap, 24);
    const size_t l2 = tap ? 14 : 0;
    uint8_t* pkt = base;
    if (tap) {
      parseMac(devMac("gt0"), pkt);
      memcpy(pkt + 6, "\x02\x00\x00\x00\x00\x01", 6);
      put16(pkt + 12, ETH_P_IP);
    }
    size_t inner = innerPacket(pkt + l2 + ihl + 12, kPayload, 1000, false);
    size_t len = l2 + gueWrap(pkt + l2, ihl, inner);
    uint8_t* h = pkt - 24;
    tunnelHdr(h, uint16_t(l2), uint16_t(ihl), uint16_t(l2 + ihl + 12));
    wire = 24 + len;
    t0 = now();
    for (long i = 0; i < count; ++i) {
      if (write(fd, h, wire) < 0) {
        if (first_errno == 0)
          first_errno = errno;
        ++errors;
      }
    }
    t1 = now();
  } else if (mode == "tun-ipip" || mode == "tun-gre") {
    const bool gre = mode == "tun-gre";
    const uint16_t encap = gre ? 4 : 0;
    int fd = openTun(false, 12);
    uint8_t* pkt = base;
    size_t inner = innerPacket(pkt + 20 + encap, kPayload, 1000, false);
    ipv4(pkt, 20, uint16_t(20 + encap + inner), gre ? 47 : 4, "198.18.71.1", "198.18.72.2");
    if (gre) {  // GRE without key, sequence or checksum, protocol IPv4
      put16(pkt + 20, 0);
      put16(pkt + 22, ETH_P_IP);
    }
    inner += encap;
    uint8_t* h = pkt - 12;
    memset(h, 0, 12);
    h[0] = kNeedsCsum;
    h[1] = kGsoTcpv4;
    const uint16_t start = uint16_t(40 + encap), off = 16, hdr_len = uint16_t(60 + encap);
    memcpy(h + 2, &hdr_len, 2);
    memcpy(h + 4, &kMss, 2);
    memcpy(h + 6, &start, 2);
    memcpy(h + 8, &off, 2);
    wire = 12 + 20 + inner;
    t0 = now();
    for (long i = 0; i < count; ++i) {
      if (write(fd, h, wire) < 0) {
        if (first_errno == 0)
          first_errno = errno;
        ++errors;
      }
    }
    t1 = now();
  } else if (mode == "pkt-gue" || mode == "pkt-seg") {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) != 0) {
      perror("AF_PACKET");
      return 1;
    }
    setsockopt(fd, SOL_PACKET, 20 /* PACKET_QDISC_BYPASS */, &one, sizeof(one));
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = int(if_nametoindex("va"));
    sll.sll_protocol = htons(ETH_P_IP);
    sll.sll_halen = 6;
    uint8_t dmac[6];
    parseMac(dmac_s, dmac);
    memcpy(sll.sll_addr, dmac, 6);
    auto eth = [&](uint8_t* e) {
      memcpy(e, dmac, 6);
      parseMac(devMac("va"), e + 6);
      put16(e + 12, ETH_P_IP);
    };
    if (mode == "pkt-gue") {
      uint8_t* e = base;
      eth(e);
      size_t inner = innerPacket(e + 14 + 32, kPayload, 1000, false);
      size_t len = 14 + gueWrap(e + 14, 20, inner);
      // AF_PACKET reads the legacy 10-byte virtio_net_hdr (packet_snd_vnet_parse)
      uint8_t h[24];
      tunnelHdr(h, 14, 20, 14 + 20 + 12);
      iovec iov[2] = {{h, 10}, {e, len}};
      msghdr m{};
      m.msg_name = &sll;
      m.msg_namelen = sizeof(sll);
      m.msg_iov = iov;
      m.msg_iovlen = 2;
      wire = len;
      t0 = now();
      for (long i = 0; i < count; ++i) {
        if (sendmsg(fd, &m, 0) < 0) {
          if (first_errno == 0)
            first_errno = errno;
          ++errors;
        }
      }
      t1 = now();
    } else {
      // The wire packets, built once (lbd cuts each super-packet anew: this is its lower bound).
      const size_t nseg = (kPayload + kMss - 1) / kMss;
      std::vector<std::vector<uint8_t>> segs;
      for (size_t s = 0; s < nseg; ++s) {
        const size_t pl = s + 1 < nseg ? kMss : kPayload - s * kMss;
        std::vector<uint8_t> f(14 + 32 + 40 + pl);
        eth(f.data());
        size_t inner = innerPacket(f.data() + 14 + 32, pl, uint32_t(1000 + s * kMss), true);
        gueWrap(f.data() + 14, 20, inner);
        segs.push_back(std::move(f));
      }
      uint8_t h[10] = {0};
      t0 = now();
      for (long i = 0; i < count; ++i) {
        for (auto& f : segs) {
          iovec iov[2] = {{h, 10}, {f.data(), f.size()}};
          msghdr m{};
          m.msg_name = &sll;
          m.msg_namelen = sizeof(sll);
          m.msg_iov = iov;
          m.msg_iovlen = 2;
          if (sendmsg(fd, &m, 0) < 0) {
            if (first_errno == 0)
              first_errno = errno;
            ++errors;
          }
        }
      }
      t1 = now();
      wire = segs.size();
    }
  } else {
    fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  const double secs = t1 - t0;
  printf(
      "send %s: %ld super-packets of %zu payload bytes, %ld errors (first: %s), %.3f s, "
      "%.2f Gbit/s of inner payload offered\n",
      mode.c_str(), count, kPayload, errors, first_errno ? strerror(first_errno) : "none", secs,
      secs > 0 ? (count - errors) * kPayload * 8 / secs / 1e9 : 0.0);
  fflush(stdout);
  sleep(1);  // let the receiver drain before the device goes away
  return 0;
}

// Checks an inner IPv4/TCP packet: 2 = its TCP checksum is valid, 1 = it is a partial checksum
// (CHECKSUM_PARTIAL crossed veth uncomputed: the field holds the pseudo-header sum for this
// packet's own length, which is right for a segment), 0 = bad length or checksum.
int innerCheck(const uint8_t* ip, size_t n) {
  if (n < 40 || (ip[0] >> 4) != 4)
    return 0;
  const size_t ihl = size_t(ip[0] & 15) * 4;
  const size_t tot = (size_t(ip[2]) << 8) | ip[3];
  if (tot != n || ip[9] != 6)
    return 0;
  uint32_t ph = sum16(ip + 12, 8, 0) + 6 + uint32_t(tot - ihl);
  if (fold(sum16(ip + ihl, tot - ihl, ph)) == 0xffff)
    return 2;
  const uint16_t field = uint16_t((ip[ihl + 16] << 8) | ip[ihl + 17]);
  return field == fold(ph) ? 1 : 0;
}

int recv(double seconds) {
  int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int r = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_IPIP);
  int big = 64 << 20;
  setsockopt(u, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  setsockopt(r, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(kGuePort);
  if (bind(u, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    perror("bind");
    return 1;
  }
  // An AF_PACKET socket with PACKET_VNET_HDR on vb: what it reports for a frame that crossed
  // veth whole (what a userspace decap could learn about a super-packet from the kernel).
  int pk = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_IP));
  int one = 1;
  setsockopt(pk, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one));
  setsockopt(pk, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_IP);
  sll.sll_ifindex = int(if_nametoindex("vb"));
  bind(pk, reinterpret_cast<sockaddr*>(&sll), sizeof(sll));
  long pk_frames = 0, pk_gso = 0;
  uint8_t vh[10] = {0};
  size_t vh_len = 0;
  static uint8_t buf[1 << 17];
  long n[2] = {0, 0}, bad[2] = {0, 0}, partial[2] = {0, 0};
  size_t bytes[2] = {0, 0}, maxsz[2] = {0, 0}, minsz[2] = {SIZE_MAX, SIZE_MAX};
  const double end = now() + seconds;
  printf("recv: ready\n");
  fflush(stdout);
  double last = 0;
  // Ends at the deadline, or once nothing came for a second after the first packet.
  while (now() < end && (last == 0 || now() - last < 1.0)) {
    pollfd p[2] = {{u, POLLIN, 0}, {r, POLLIN, 0}};
    if (poll(p, 2, 100) <= 0)
      continue;
    last = now();
    for (;;) {  // drain the AF_PACKET copy
      static uint8_t f[1 << 17];
      ssize_t got = ::recv(pk, f, sizeof(f), MSG_DONTWAIT | MSG_TRUNC);
      if (got <= 0)
        break;
      ++pk_frames;
      if (f[1] != 0) {
        ++pk_gso;
        if (vh_len == 0) {  // virtio_net_hdr_from_skb's view of the skb
          memcpy(vh, f, 10);
          vh_len = size_t(got) - 10;
        }
      }
    }
    for (int k = 0; k < 2; ++k) {
      if (!(p[k].revents & POLLIN))
        continue;
      ssize_t got = ::recv(p[k].fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
      if (got <= 0)
        continue;
      size_t g = size_t(got);
      ++n[k];
      maxsz[k] = g > maxsz[k] ? g : maxsz[k];
      minsz[k] = g < minsz[k] ? g : minsz[k];
      // GUE: 4-byte header then the inner packet; IPIP raw: outer IPv4 then the inner packet.
      const uint8_t* inner = k == 0 ? buf + 4 : buf + size_t(buf[0] & 15) * 4;
      const size_t inner_len = g - size_t(inner - buf);
      const int c = g > sizeof(buf) ? 0 : innerCheck(inner, inner_len);
      if (c == 0)
        ++bad[k];
      else
        bytes[k] += inner_len - 40;
      if (c == 1)
        ++partial[k];
    }
  }
  const char* names[2] = {"GUE datagrams (UDP 5555)", "IPIP packets (raw socket)"};
  for (int k = 0; k < 2; ++k) {
    printf(
        "recv %s: %ld, %ld bad (inner length or TCP checksum), %ld of the good ones with a "
        "partial checksum (pseudo-header sum of their own length), %zu inner payload bytes, "
        "sizes %zu..%zu\n",
        names[k], n[k], bad[k], partial[k], bytes[k], n[k] ? minsz[k] : 0, maxsz[k]);
  }
  uint16_t hl, gs, cs, co;
  memcpy(&hl, vh + 2, 2);
  memcpy(&gs, vh + 4, 2);
  memcpy(&cs, vh + 6, 2);
  memcpy(&co, vh + 8, 2);
  printf(
      "recv AF_PACKET+PACKET_VNET_HDR on vb: %ld frames, %ld with a GSO type; first: flags %u "
      "gso_type 0x%x hdr_len %u gso_size %u csum_start %u csum_offset %u, frame %zu bytes\n",
      pk_frames, pk_gso, vh[0], vh[1], hl, gs, cs, co, vh_len);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "recv")
    return recv(atof(argv[2]));
  if (argc >= 5 && std::string(argv[1]) == "send")
    return send(argv[2], atol(argv[3]), argv[4]);
  fprintf(stderr, "usage: %s recv <seconds> | send <mode> <count> <dst mac>\n", argv[0]);
  return 2;
}
