// SPDX-License-Identifier: Apache-2.0
// The connection table as bytes, for a hot restart (lbd --takeover): the old process exports
// every conn and template with its state, timer and template link, the new one imports them
// into its own table. No kernel counterpart: IPVS's conns live in the kernel and outlive the
// ipvsadm process; lbd's live in lbd, so an upgrade carries them across (as Envoy's hot
// restart carries its stats, and HAProxy's seamless reload its listening sockets).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "core/base/time.h"
#include "core/conn/conn.h"
#include "core/conn/conn_table.h"

namespace lb {

// One exported conn. `params.control` is the index of its template's record in the same
// export (or kNoConn), never a slab index: slab indexes mean nothing in another table.
struct ConnRecord {
  ConnParams params;  // params.timeout: the conn's current timeout
  uint8_t state = 0;
  uint8_t old_state = 0;
  uint32_t in_pkts = 0;
  MonoTime expires;        // CLOCK_MONOTONIC is system-wide: the same instant in the new process
  uint32_t seq_delta = 0;  // SYN proxy conns: ConnGuard::seqDelta
};

// Control thread, with the workers stopped. Every entry of `table`, templates first, with each
// conn's template link turned into a record index. May allocate.
std::vector<ConnRecord> exportConns(ConnTable& table);

// Pure. A versioned, length-checked binary form (host byte order: both ends run on one host).
std::string encodeConns(absl::Span<const ConnRecord> records);
// Pure. InvalidArgument for anything that is not what encodeConns wrote (wrong magic or
// version, truncated, a template link that points past the end or to a non-template).
absl::StatusOr<std::vector<ConnRecord>> decodeConns(absl::string_view bytes);

struct ConnImportResult {
  size_t imported = 0;
  size_t skipped = 0;  // `rebind` refused, the table was full, or an invalidated template
};

// Control thread, before any worker runs. Creates every record in `table` with its state,
// in_pkts and expiry. `rebind` may rewrite a record's params (new service and dest ids) and
// returns false to leave the record out; `bound` is told about each conn created (dest
// counters). Conns whose template was left out keep no template link. May allocate.
ConnImportResult importConns(ConnTable& table,
                             absl::Span<const ConnRecord> records,
                             absl::FunctionRef<bool(ConnParams&)> rebind,
                             absl::FunctionRef<void(const Conn&)> bound,
                             MonoTime now);

}  // namespace lb
