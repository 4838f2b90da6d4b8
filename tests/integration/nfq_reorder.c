// SPDX-License-Identifier: Apache-2.0
// A packet reorderer for the fault tests, for kernels without sch_netem: the consumer of an
// NFQUEUE queue (iptables ... -j NFQUEUE --queue-num Q) that accepts every packet in arrival
// order except every k-th one, which it holds back and accepts right after the next packet
// (or after 20 ms if none comes), so that packet leaves after its successor.
//   lb_nfq_reorder QUEUE K STATS_FILE
// Runs until SIGTERM/SIGINT, then releases what it holds and writes
// "packets N reordered M timed_out T" to STATS_FILE (also every 200 ms while it runs).
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t g_stop = 0;

static void onSignal(int sig) {
  (void)sig;
  g_stop = 1;
}

static struct mnl_socket* g_nl;
static unsigned g_queue;

static struct nlmsghdr* putHeader(char* buf, int type) {
  struct nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  struct nfgenmsg* nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
  nfg->nfgen_family = AF_UNSPEC;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = htons((uint16_t)g_queue);
  return nlh;
}

static int sendMsg(struct nlmsghdr* nlh) {
  if (mnl_socket_sendto(g_nl, nlh, nlh->nlmsg_len) < 0) {
    perror("nfq_reorder: sendto");
    return -1;
  }
  return 0;
}

static int verdictAccept(uint32_t id) {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr* nlh = putHeader(buf, NFQNL_MSG_VERDICT);
  struct nfqnl_msg_verdict_hdr vh = {.verdict = htonl(NF_ACCEPT), .id = htonl(id)};
  mnl_attr_put(nlh, NFQA_VERDICT_HDR, sizeof(vh), &vh);
  return sendMsg(nlh);
}

static int configure(void) {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr* nlh = putHeader(buf, NFQNL_MSG_CONFIG);
  struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_BIND, .pf = htons(AF_INET)};
  mnl_attr_put(nlh, NFQA_CFG_CMD, sizeof(cmd), &cmd);
  if (sendMsg(nlh) < 0)
    return -1;
  nlh = putHeader(buf, NFQNL_MSG_CONFIG);
  struct nfqnl_msg_config_params params = {.copy_range = htonl(0), .copy_mode = NFQNL_COPY_META};
  mnl_attr_put(nlh, NFQA_CFG_PARAMS, sizeof(params), &params);
  // A full queue lets packets through rather than dropping them: loss is the nft rule's job.
  mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_FAIL_OPEN));
  mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN));
  return sendMsg(nlh);
}

struct State {
  unsigned k;
  unsigned long packets, reordered, timed_out;
  int holding;
  uint32_t held;
};

static int onAttr(const struct nlattr* attr, void* data) {
  const struct nlattr** tb = data;
  int type = mnl_attr_get_type(attr);
  if (mnl_attr_type_valid(attr, NFQA_MAX) < 0)
    return MNL_CB_OK;
  tb[type] = attr;
  return MNL_CB_OK;
}

static int onPacket(const struct nlmsghdr* nlh, void* data) {
  struct State* st = data;
  struct nlattr* tb[NFQA_MAX + 1] = {0};
  if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), onAttr, tb) < 0 || !tb[NFQA_PACKET_HDR])
    return MNL_CB_OK;
  const struct nfqnl_msg_packet_hdr* ph = mnl_attr_get_payload(tb[NFQA_PACKET_HDR]);
  const uint32_t id = ntohl(ph->packet_id);
  ++st->packets;
  if (!st->holding && st->packets % st->k == 0) {
    st->holding = 1;
    st->held = id;
    return MNL_CB_OK;
  }
  if (verdictAccept(id) < 0)
    return MNL_CB_ERROR;
  if (st->holding) {
    st->holding = 0;
    ++st->reordered;
    if (verdictAccept(st->held) < 0)
      return MNL_CB_ERROR;
  }
  return MNL_CB_OK;
}

static void writeStats(const char* path, const struct State* st) {
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE* f = fopen(tmp, "w");
  if (f == NULL)
    return;
  fprintf(f, "packets %lu reordered %lu timed_out %lu\n", st->packets, st->reordered,
          st->timed_out);
  fclose(f);
  rename(tmp, path);
}

static double nowSec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s QUEUE K STATS_FILE\n", argv[0]);
    return 2;
  }
  g_queue = (unsigned)atoi(argv[1]);
  struct State st = {.k = (unsigned)atoi(argv[2])};
  if (st.k < 2) {
    fprintf(stderr, "nfq_reorder: K must be >= 2\n");
    return 2;
  }
  struct sigaction sa = {.sa_handler = onSignal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  g_nl = mnl_socket_open(NETLINK_NETFILTER);
  if (g_nl == NULL || mnl_socket_bind(g_nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    perror("nfq_reorder: netlink");
    return 1;
  }
  int one = 1;
  mnl_socket_setsockopt(g_nl, NETLINK_NO_ENOBUFS, &one, sizeof(one));
  if (configure() < 0)
    return 1;
  writeStats(argv[3], &st);
  static char buf[1 << 17];
  double last_stats = nowSec();
  double held_since = 0;
  struct pollfd pfd = {.fd = mnl_socket_get_fd(g_nl), .events = POLLIN};
  while (!g_stop) {
    int r = poll(&pfd, 1, 10);
    if (r < 0 && errno != EINTR) {
      perror("nfq_reorder: poll");
      return 1;
    }
    if (r > 0) {
      ssize_t n = mnl_socket_recvfrom(g_nl, buf, sizeof(buf));
      if (n < 0 && errno != EINTR && errno != ENOBUFS) {
        perror("nfq_reorder: recv");
        return 1;
      }
      const int was_holding = st.holding;
      if (n > 0 && mnl_cb_run(buf, (size_t)n, 0, 0, onPacket, &st) < 0 && errno != EINTR) {
        perror("nfq_reorder: parse");
        return 1;
      }
      if (st.holding && !was_holding)
        held_since = nowSec();
    }
    const double now = nowSec();
    if (st.holding && now - held_since > 0.02) {  // no successor came: let it go
      st.holding = 0;
      ++st.timed_out;
      if (verdictAccept(st.held) < 0)
        return 1;
    }
    if (now - last_stats > 0.2) {
      writeStats(argv[3], &st);
      last_stats = now;
    }
  }
  if (st.holding)
    verdictAccept(st.held);
  writeStats(argv[3], &st);
  return 0;
}
