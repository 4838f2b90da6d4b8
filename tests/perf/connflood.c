// SPDX-License-Identifier: Apache-2.0
// Connection-table filler for the memory row of tests/perf/run.sh: sends N UDP datagrams to
// VIP:PORT, each from a different (source address, source port), through a raw socket with
// IP_HDRINCL, paced at RATE packets/s. Every datagram is a new connection for a balancer
// (IPVS keeps an idle UDP conn 300 s); the real server drops them, so nothing answers.
//   connflood VIP PORT N RATE SRC_BASE SRC_COUNT
// Sources are SRC_BASE, SRC_BASE+1, ... SRC_BASE+SRC_COUNT-1 (IPv4), ports 1024..65535:
// packet i uses address i % SRC_COUNT and port 1024 + i / SRC_COUNT.
// Built by run.sh with `cc -O2`; not part of the CMake build (a throw-away load generator).
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

enum { kBatch = 64, kPktLen = 20 + 8 + 18 };

static uint16_t ipCsum(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    s += (uint32_t)(p[i] << 8 | p[i + 1]);
  while (s >> 16)
    s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

static double nowSec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s VIP PORT N RATE SRC_BASE SRC_COUNT\n", argv[0]);
    return 2;
  }
  struct in_addr vip, base;
  if (inet_pton(AF_INET, argv[1], &vip) != 1 || inet_pton(AF_INET, argv[5], &base) != 1) {
    fprintf(stderr, "bad address\n");
    return 2;
  }
  const uint16_t dport = (uint16_t)atoi(argv[2]);
  const long n = atol(argv[3]);
  const double rate = atof(argv[4]);
  const long nsrc = atol(argv[6]);
  if (nsrc <= 0 || n > nsrc * 64512L) {
    fprintf(stderr, "N > SRC_COUNT * 64512 distinct sources\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) {
    perror("socket(SOCK_RAW)");
    return 1;
  }
  int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  static uint8_t pkts[kBatch][kPktLen];
  struct iovec iov[kBatch];
  struct mmsghdr msgs[kBatch];
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_addr = vip};
  const uint32_t b = ntohl(base.s_addr);
  const double t0 = nowSec();
  long sent = 0, errors = 0;
  while (sent < n) {
    int k = 0;
    for (; k < kBatch && sent + k < n; ++k) {
      const long i = sent + k;
      uint8_t* p = pkts[k];
      memset(p, 0, kPktLen);
      p[0] = 0x45;
      p[2] = kPktLen >> 8;
      p[3] = kPktLen & 0xff;
      p[8] = 64;
      p[9] = IPPROTO_UDP;
      const uint32_t src = htonl(b + (uint32_t)(i % nsrc));
      memcpy(p + 12, &src, 4);
      memcpy(p + 16, &vip.s_addr, 4);
      const uint16_t c = ipCsum(p, 20);
      p[10] = (uint8_t)(c >> 8);
      p[11] = (uint8_t)c;
      const uint16_t sport = (uint16_t)(1024 + i / nsrc);
      p[20] = (uint8_t)(sport >> 8);
      p[21] = (uint8_t)sport;
      p[22] = (uint8_t)(dport >> 8);
      p[23] = (uint8_t)dport;
      p[24] = 0;
      p[25] = kPktLen - 20;  // UDP length; checksum 0 = none (IPv4)
      iov[k].iov_base = p;
      iov[k].iov_len = kPktLen;
      memset(&msgs[k], 0, sizeof(msgs[k]));
      msgs[k].msg_hdr.msg_name = &dst;
      msgs[k].msg_hdr.msg_namelen = sizeof(dst);
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(fd, msgs, (unsigned)k, 0);
    if (r < 0) {
      if (errno == ENOBUFS || errno == EAGAIN) {
        ++errors;
        usleep(100);
        continue;
      }
      perror("sendmmsg");
      return 1;
    }
    sent += r;
    // Pace: sleep until the schedule of `rate` packets per second catches up.
    const double ahead = (double)sent / rate - (nowSec() - t0);
    if (ahead > 0.0005)
      usleep((useconds_t)(ahead * 1e6));
  }
  const double dt = nowSec() - t0;
  printf("sent %ld packets in %.2f s (%.0f pkt/s, %ld ENOBUFS retries)\n", sent, dt,
         (double)sent / dt, errors);
  return 0;
}
