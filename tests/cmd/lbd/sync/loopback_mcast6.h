// SPDX-License-Identifier: Apache-2.0
// IPv6 multicast on the loopback device of a private network namespace, for the sync tests.
// addrconf gives lo no ff00::/8 route, and the kernel turns any route through lo that is not
// local into a reject route (fib6_is_reject), so a datagram to ff02::81 on lo is dropped at
// output (Ip6OutNoRoutes). A *local* ff00::/8 route on lo lets it out through lo and back in,
// once, to the sockets that joined the group on lo (IPv6 loops nothing back on a loopback
// device itself, so the master's IPV6_MULTICAST_LOOP off changes nothing there).
#pragma once

#include <linux/rtnetlink.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace lb::lbd::sync {

// `ip -6 route add local ff00::/8 dev lo` in the calling thread's network namespace. False
// when the route cannot be added.
inline bool addLocalMulticastRouteV6OnLo() {
  const int s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return false;
  in6_rtmsg rt{};
  rt.rtmsg_dst.s6_addr[0] = 0xff;
  rt.rtmsg_dst_len = 8;
  rt.rtmsg_type = RTN_LOCAL;
  rt.rtmsg_flags = RTF_UP | RTF_LOCAL;
  rt.rtmsg_ifindex = static_cast<int>(if_nametoindex("lo"));
  const bool ok = rt.rtmsg_ifindex != 0 && ioctl(s, SIOCADDRT, &rt) == 0;
  close(s);
  return ok;
}

}  // namespace lb::lbd::sync
