// SPDX-License-Identifier: Apache-2.0
// The packet path: parse, service lookup, conn lookup/creation, state, transmit, count. The
// analogue of ip_vs_core.c (ip_vs_in, ip_vs_out, ip_vs_in_icmp, ip_vs_out_icmp, ip_vs_schedule,
// ip_vs_sched_persist, ip_vs_leave).
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

#include "core/base/addr.h"
#include "core/base/counters.h"
#include "core/base/time.h"
#include "core/base/verdict.h"
#include "core/conn/conn_table.h"
#include "core/packet/packet_buffer.h"
#include "core/pipeline/ftp.h"
#include "core/pipeline/offload.h"
#include "core/service/config.h"
#include "core/service/snapshot.h"
#include "core/xmit/forwarder.h"

namespace lb {

// rx/tx count every packet in and every packet forwarded (tx_bytes after rewriting);
// conns_reused counts conns expired to reschedule a SYN/INIT (conn_reuse_mode,
// expire_nodest_conn); icmp_sent counts ICMP errors lbd generated; icmp_send_failed those it
// could not send (no sink buffer); conns_offloaded counts conns a FlowOffloader took;
// synproxy_syn_answered counts SYNs the SYN proxy answered with a cookie, synproxy_conns_opened
// the conns its valid cookies made, synproxy_syn_resent the SYNs sent to a real server again;
// sync_bound counts synced conns bound to their real server by a packet (a backup after a
// failover), sync_unbound the packets of synced conns forwarded with no real server here.
// conns_picked_up counts TCP conns made from a packet other than a SYN (the flood pickup).
// clang-format off
#define LB_PIPELINE_COUNTERS(C) \
  C(conns_picked_up) \
  C(rx_packets) C(rx_bytes) C(tx_packets) C(tx_bytes) C(to_host) C(conns_created) \
  C(conns_reused) C(icmp_sent) C(icmp_echo_replies) C(templates_created) C(icmp_send_failed) \
  C(conns_offloaded) C(synproxy_syn_answered) C(synproxy_conns_opened) C(synproxy_syn_resent) \
  C(ftp_passive) C(ftp_active) C(ftp_malformed) C(ftp_no_state) C(ftp_mangle_failed) \
  C(ftp_data_conns) C(sync_bound) C(sync_unbound)

// clang-format on

struct PipelineCounters {
  LB_PIPELINE_COUNTERS(LB_DECLARE_COUNTER)
  Counter drops[kDropReasonCount];
};

// Where the pipeline puts packets it originates (ICMP errors): a worker-owned pool of spare
// buffers. Hot path.
class PacketSink {
 public:
  virtual ~PacketSink() = default;
  // A free buffer to fill, or nullptr when none is left (the packet is then not sent and
  // counted in icmp_send_failed). Filled buffers are sent after the batch, in order; a buffer
  // handed out but left with a verdict other than kForward must be returned unsent.
  virtual PacketBuffer* allocate() noexcept = 0;
};

class PipelineConnEvents;
class PeTemplates;

// Connection synchronisation's master side (ip_vs_in's ip_vs_sync_conn call): after every
// client packet of a conn that is not ONE_PACKET, with the conn's guard held and in_pkts
// counted. The implementation (lbd's, on core/sync's syncConnChain) releases `cp`. Worker
// thread, hot path: no allocation, lock or syscall.
class ConnSyncHook {
 public:
  virtual ~ConnSyncHook() = default;
  virtual void onClientPacket(ConnTable& table, ConnGuard& cp, MonoTime now) noexcept = 0;

  // The flow offload's report for a conn the fast path forwards (FlowOffload, with the conn's
  // guard held, after the reported flags went through its state machine): its in_pkts went from
  // `pkts_before` to cp->in_pkts. Releases `cp`. Default: nothing synced.
  virtual void onFastPathReport(ConnTable& table,
                                ConnGuard& cp,
                                uint32_t pkts_before,
                                MonoTime now) noexcept {
    (void)table;
    (void)pkts_before;
    (void)now;
    cp.release();
  }
};

// The kernel's defence strategies (ip_vs_ctl.c update_defense_level, ip_vs_todrop,
// defense_work_handler; sysctls drop_entry, drop_packet, secure_tcp: 0 off, 1 and 2 automatic,
// 3 always). The kernel's automatic modes watch free memory (freeram + bufferram against
// amemthresh pages); lbd's memory for conns is the conn table, preallocated, so its "free
// memory" is the table's free slots:
//   available = capacity - entries,   amemthresh = capacity / kDefenseThresholdDivisor,
//   under pressure ("nomem") when available < amemthresh (the last 1/16 of the table).
// In automatic mode the kernel flips the sysctl between 1 (armed) and 2 (active) itself; lbd
// does not rewrite the configured value: 1 and 2 both mean "active while under pressure".
inline constexpr size_t kDefenseThresholdDivisor = 16;
// How long after early drop last freed a conn a mid-stream TCP packet may make one
// (Pipeline::pickupUnderFlood): TCP SYN_RECV's timeout, the longest the freed conn had to live.
inline constexpr Duration kFloodPickupWindow = std::chrono::seconds(60);

// What the defence does at one fill level.
struct DefenseLevel {
  bool nomem = false;       // available < amemthresh
  uint32_t drop_rate = 0;   // drop_packet: drop 1 in drop_rate new-conn packets; 0 = off
  bool secure_tcp = false;  // tcp_states_dos is in effect
  bool drop_entry = false;  // random conn drop runs (runDefenseTick)
};

// update_defense_level for one sysctl set and fill level. drop_packet auto: rate = amemthresh /
// (amemthresh - available) while under pressure (1 = every new conn when the table is full);
// mode 3: rate = am_droprate. Any thread. Hot path (pure).
DefenseLevel defenseLevel(const Sysctls& sys, size_t entries, size_t capacity) noexcept;

// The drop_entry defence for the dataplane's housekeeping thread: call it once a second
// (DEFENSE_TIMER_PERIOD) with the current snapshot's sysctls, whatever they are (it is a no-op
// unless drop_entry is 3, or 1/2 with the table under pressure), and a fresh random number.
// When on, it scans bucketCount() / 32 random buckets and frees the conns the kernel's
// ip_vs_random_dropentry would (ConnTable::dropEntries: embryonic TCP/SCTP conns, idle
// low-traffic ones, unassured templates). Returns the level in effect and how many conns it
// freed (for a counter). drop_packet and secure_tcp need no call: each Pipeline evaluates them
// per batch. Any thread; takes shard locks one at a time. No allocation.
struct DefenseTickResult {
  DefenseLevel level;
  size_t dropped = 0;
};

DefenseTickResult runDefenseTick(ConnTable& conns,
                                 const Sysctls& sys,
                                 MonoTime now,
                                 uint64_t rand) noexcept;

// One per worker. Worker thread only (the conn table and runtime it uses are shared and
// thread-safe). No allocation after construction, except once when process() first sees a
// ServiceRuntime that connEvents() was not called for.
//
// Defence (see DefenseLevel): before each batch the pipeline reads the conn table's fill level;
// drop_packet drops 1 in `rate` new-connection packets of a service before scheduling
// (kDefense; the counter is per worker, the kernel's is per netns), secure_tcp switches TCP to
// tcp_states_dos.
//
// Verdicts: kForward (rewritten in place; pkt.tx / next_hop say where), kDrop with a
// DropReason (each counted in counters().drops), kToHost (not IPVS traffic: no service for the
// destination, unknown protocols, unrelated ICMP; the kernel's NF_ACCEPT). A packet to a service
// that has no conn and cannot start one (TCP without SYN, SCTP without INIT) is dropped with
// kNotNewConn: the kernel would hand it to its own stack, which for a userspace VIP means nothing
// useful. ICMP echo requests to a VIP are answered in place (kForward, icmp_echo_replies).
class Pipeline {
 public:
  // `worker` indexes ServiceRuntime::workerStats. `seed` seeds the worker's RNG (twos,
  // drop_packet). The table must outlive the pipeline. Control thread (worker creation): takes
  // the table's SIP persistence store here (acquirePeTemplates), so that process() never locks
  // or allocates for it. May allocate.
  Pipeline(ConnTable& conns, size_t worker, uint64_t seed);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Hot path. Processes each packet in place and sets its verdict, drop_reason, tx and
  // next_hop (ip_vs_in for client->VIP packets, ip_vs_out for replies from real servers,
  // the ICMP handlers for related errors). Extra packets go to `sink`.
  void process(const ServiceSnapshot& snap,
               absl::Span<PacketBuffer* const> batch,
               PacketSink& sink,
               MonoTime now) noexcept;

  // Worker thread. The defence level the last batch ran with.
  const DefenseLevel& defense() const { return defense_; }

  // Worker thread, between batches. The path MTU forwarders check against (default 1500).
  void setMtu(uint32_t mtu) { mtu_ = mtu; }

  uint32_t mtu() const { return mtu_; }

  // Worker thread, between batches. The outer source address of tunnel packets for real
  // servers of that address's family (the route source the kernel would pick). Until set, a
  // tunnel to a real server of the VIP's family uses the VIP; other families are dropped
  // (kUnsupported).
  void setTunnelSource(const IpAddr& addr);

  // Worker thread, between batches. Flow offload (offload.h): conns that become
  // eligible with `min_in_pkts` client packets seen are offered to `offloader` (nullptr: off);
  // while the conn table is in its last 1/16, TCP conns only once their handshake is done.
  // The offloader must outlive the pipeline or be replaced first.
  // Before the worker starts. Connection synchronisation (ConnSyncHook); nullptr: off. The
  // hook must outlive the pipeline.
  void setSyncHook(ConnSyncHook* hook) { sync_hook_ = hook; }

  void setOffloader(FlowOffloader* offloader, uint32_t min_in_pkts) {
    offloader_ = offloader;
    offload_min_in_pkts_ = min_in_pkts;
  }

  // Worker thread, between batches. The FTP helper (ip_vs_ftp.c; ftp_pipeline.cc): TCP conns of
  // NAT and full-NAT services whose vport is one of `ports` (the module's ports=, at most
  // ftp::kMaxPorts; the kernel's default is {21}) and that have no persistence template get
  // their PASV/EPSV replies and PORT/EPRT commands rewritten, their data conns created ahead
  // and their sequence numbers adjusted, with per-conn state in `table` (shared by all workers
  // of one conn table). nullptr: off. The table must outlive the pipeline.
  void setFtp(ftp::StateTable* table, absl::Span<const uint16_t> ports) {
    ftp_ = table;
    ftp_ports_n_ = 0;
    for (uint16_t port : ports) {
      if (port != 0 && ftp_ports_n_ < ftp::kMaxPorts)
        ftp_ports_[ftp_ports_n_++] = port;
    }
  }

  const PipelineCounters& counters() const { return counters_; }

  // The ConnEvents the ConnTable must be built with so that freed conns are unbound from
  // their dests, templates and full-NAT pools. Needs the current snapshot's runtime. Control
  // thread; may allocate. The object lives as long as the process; one ConnTable per runtime.
  static ConnEvents* connEvents(ServiceRuntime& runtime);
  // Tells connEvents(runtime) the full-NAT pool of service `svc`, so that conns made outside
  // the pipeline (a hot restart's import) give their local ports back when freed. Control
  // thread.
  static void noteFullNatPool(ServiceRuntime& runtime, ServiceId svc, LocalAddrPool* pool);

 private:
  struct Packet;
  enum class IcmpKind : uint8_t { kPortUnreach, kTimeExceeded, kFragNeeded };

  void processOne(const ServiceSnapshot& snap,
                  PacketBuffer& pkt,
                  PacketSink& sink,
                  MonoTime now) noexcept;
  void account(const PacketBuffer& pkt) noexcept;
  bool handleReply(Packet& p) noexcept;
  void handleRequest(Packet& p) noexcept;
  bool shouldReschedule(const Packet& p, const Conn& conn) const noexcept;
  ConnGuard schedule(Packet& p) noexcept;
  ConnGuard schedulePersist(Packet& p, const SnapService& svc, uint32_t mark) noexcept;
  ConnGuard createConn(Packet& p,
                       const SnapService& svc,
                       const SnapDest& dest,
                       uint16_t dport,
                       uint32_t control,
                       uint32_t mark) noexcept;
  const SnapDest* pickDest(Packet& p, const SnapService& svc) noexcept;
  void bindDest(Packet& p, const SnapDest& dest, bool is_template) noexcept;
  void leave(Packet& p, const SnapService& svc) noexcept;
  // SYN proxy (synproxy_pipeline.cc).
  bool synproxyAnswer(Packet& p) noexcept;
  void synproxyAnswerSyn(Packet& p) noexcept;
  bool synproxyCookieAck(Packet& p) noexcept;
  bool syncookieAnswer(Packet& p, const SnapService& svc) noexcept;
  // SYN cookies are on for `svc` (without --synproxy, syncookies 1, syncookies.h): the
  // housekeeping thread's state for it, or, before its next tick, the service already past the
  // threshold (so a flood's conns stop at the threshold plus a batch). Two atomic loads.
  bool syncookiesOn(const Sysctls& sys, ServiceId svc) const noexcept;
  void synproxyOpen(Packet& p, ConnGuard& cp) noexcept;
  void synproxyResend(Packet& p, ConnGuard& cp) noexcept;
  void synproxyReply(Packet& p, ConnGuard& cp) noexcept;
  void synproxyAdjust(Packet& p, const Conn& conn, Direction dir) noexcept;
  uint64_t synproxySecret() const noexcept;
  bool synproxyReusesTuple(const Packet& p, const Conn& conn) const noexcept;
  // FTP helper (ftp_pipeline.cc).
  bool ftpApplies(const Conn& conn) const noexcept;
  void ftpIn(Packet& p, const Conn& conn, uint32_t index) noexcept;
  void ftpOut(Packet& p, const Conn& conn, uint32_t index) noexcept;
  bool ftpFillCport(Packet& p, ConnGuard& cp) noexcept;
  uint16_t ftpDataConn(Packet& p, const Conn& conn, uint32_t index, ConnParams& d) noexcept;
  void inbound(Packet& p, ConnGuard& cp) noexcept;
  void applyState(Packet& p, ConnGuard& cp, ConnDir dir) noexcept;
  void maybeOffload(const Packet& p, ConnGuard& cp) noexcept;
  void xmit(Packet& p, const Conn& conn, Direction dir) noexcept;
  void handleIcmp(Packet& p) noexcept;
  void handleIcmpError(Packet& p) noexcept;
  void echoReply(Packet& p) noexcept;
  void sendIcmp(Packet& p, IcmpKind kind, uint32_t info, const IpAddr& src) noexcept;
  void attachRuntime(ServiceRuntime* runtime) noexcept;
  uint64_t nextRandom() noexcept;
  void updateDefense(const Sysctls& sys, MonoTime now) noexcept;
  bool todrop() noexcept;
  bool pickupUnderFlood(const L3L4& o, const SnapService& svc, MonoTime now) const noexcept;
  void assurePickedUp(ConnGuard& cp) noexcept;
  void noteEarlyDrops(MonoTime now) noexcept;

  ConnTable& conns_;
  PeTemplates* pe_templates_;  // the table's --pe sip Call-IDs (pe_sip.h), one reference
  size_t worker_;
  uint64_t rng_;
  uint32_t mtu_ = 1500;
  IpAddr tunnel_src_v4_, tunnel_src_v6_;
  ServiceRuntime* runtime_ = nullptr;  // of the last snapshot seen
  PipelineConnEvents* events_ = nullptr;
  FlowOffloader* offloader_ = nullptr;
  ConnSyncHook* sync_hook_ = nullptr;
  uint32_t offload_min_in_pkts_ = 0;
  ftp::StateTable* ftp_ = nullptr;
  uint16_t ftp_ports_[ftp::kMaxPorts] = {};
  size_t ftp_ports_n_ = 0;
  // The conn table has more than 1/16 free (checked per batch): TCP conns are offloaded from
  // their SYN; otherwise from their handshake's end (maybeOffload).
  bool table_roomy_ = true;
  PipelineCounters counters_;
  DefenseLevel defense_;
  int64_t drop_counter_ = 0;  // ip_vs_todrop's drop_counter
  MonoTime drop_reset_at_{};  // automatic drop_packet: when drop_counter is next reset
  // The flood pickup (pickupUnderFlood): the table's early-drop count last seen, and until when
  // a mid-stream TCP packet with no conn may make one.
  uint64_t early_drops_seen_ = 0;
  MonoTime pickup_until_{};
};

}  // namespace lb
