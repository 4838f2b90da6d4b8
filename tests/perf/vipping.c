// SPDX-License-Identifier: Apache-2.0
// ICMP echo prober for tests/perf/run.sh (the image has no ping): sends one echo request to
// ADDR every INTERVAL_US microseconds until SIGINT/SIGTERM or SECONDS pass, matches replies
// by sequence number and prints what a stall would show: replies, lost, RTT p50/p99/max (ms).
//   vipping ADDR INTERVAL_US SECONDS
// Built by run.sh with `cc -O2`; not part of the CMake build.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kMaxProbes = 1 << 20 };

static volatile sig_atomic_t g_stop = 0;

static void onSignal(int sig) {
  (void)sig;
  g_stop = 1;
}

static int64_t nowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint16_t csum(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    s += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1)
    s += (uint32_t)(p[n - 1] << 8);
  while (s >> 16)
    s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

static int cmpDouble(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

// Reads one datagram; an echo reply to one of our `seq` probes not yet answered records its
// RTT (ms) in rtt[*replies].
static void readReply(
    int fd, uint16_t id, uint32_t seq, int64_t* sent_at, double* rtt, uint32_t* replies) {
  uint8_t buf[1500];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  const int64_t t = nowNs();
  if (n < 28)
    return;
  size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
  if ((size_t)n < ihl + 8 + 4)
    return;
  const uint8_t* icmp = buf + ihl;
  if (icmp[0] != ICMP_ECHOREPLY || (uint16_t)(icmp[4] << 8 | icmp[5]) != id)
    return;
  uint32_t s;
  memcpy(&s, icmp + 8, sizeof(s));
  if (s >= seq || sent_at[s] == 0)
    return;
  rtt[(*replies)++] = (double)(t - sent_at[s]) / 1e6;
  sent_at[s] = 0;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s ADDR INTERVAL_US SECONDS\n", argv[0]);
    return 2;
  }
  struct sockaddr_in dst = {.sin_family = AF_INET};
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1)
    return 2;
  const int64_t interval = atol(argv[2]) * 1000;
  const int64_t end = nowNs() + (int64_t)(atof(argv[3]) * 1e9);
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (fd < 0) {
    perror("socket(SOCK_RAW, ICMP)");
    return 1;
  }
  signal(SIGINT, onSignal);
  signal(SIGTERM, onSignal);
  int64_t* sent_at = calloc(kMaxProbes, sizeof(int64_t));
  double* rtt = calloc(kMaxProbes, sizeof(double));
  const uint16_t id = (uint16_t)getpid();
  uint32_t seq = 0, replies = 0;
  int64_t next = nowNs();
  while (!g_stop && seq < kMaxProbes) {
    int64_t now = nowNs();
    if (now >= end)
      break;
    if (now >= next) {
      uint8_t pkt[64] = {0};
      pkt[0] = ICMP_ECHO;
      pkt[4] = (uint8_t)(id >> 8);
      pkt[5] = (uint8_t)id;
      pkt[6] = (uint8_t)(seq >> 8);
      pkt[7] = (uint8_t)seq;
      memcpy(pkt + 8, &seq, sizeof(seq));
      uint16_t c = csum(pkt, sizeof(pkt));
      pkt[2] = (uint8_t)(c >> 8);
      pkt[3] = (uint8_t)c;
      sent_at[seq] = nowNs();
      sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr*)&dst, sizeof(dst));
      ++seq;
      next += interval;
      continue;
    }
    struct pollfd p = {fd, POLLIN, 0};
    int wait_ms = (int)((next - now) / 1000000);
    if (poll(&p, 1, wait_ms) <= 0)
      continue;
    readReply(fd, id, seq, sent_at, rtt, &replies);
  }
  // Late replies: wait up to 200 ms more.
  const int64_t drain_end = nowNs() + 200000000;
  while (nowNs() < drain_end) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0)
      continue;
    readReply(fd, id, seq, sent_at, rtt, &replies);
  }
  qsort(rtt, replies, sizeof(double), cmpDouble);
  if (replies == 0) {
    printf("%u/%u replies\n", replies, seq);
    return 1;
  }
  printf("%u/%u replies, p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", replies, seq, rtt[replies / 2],
         rtt[(size_t)(replies * 0.99)], rtt[replies - 1]);
  return 0;
}
