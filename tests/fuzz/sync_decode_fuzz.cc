// SPDX-License-Identifier: Apache-2.0
// Fuzzes the backup's receive path (decodeSyncMessage, as ip_vs_process_message): any datagram,
// with the first byte also used as the backup's syncid half the time. Invariants: every drop
// is counted, at most one per datagram; every delivered entry is well-formed (family, option
// lengths) and survives the encoder: encoded alone and decoded again, it comes back with the
// same fields.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/sync/sync_codec.h"

namespace {

void fail(const char* what) {
  std::fprintf(stderr, "sync_decode_fuzz invariant broken: %s\n", what);
  std::abort();
}

uint64_t totalDrops(const lb::SyncDecodeCounters& c) {
  uint64_t n = 0;
  for (uint64_t d : c.drops)
    n += d;
  return n;
}

bool sameFields(const lb::SyncConn& a, const lb::SyncConn& b) {
  return a.af == b.af && a.protocol == b.protocol &&
         (a.flags & lb::kSyncConnFWireMask) == b.flags && a.state == b.state &&
         a.cport == b.cport && a.vport == b.vport && a.dport == b.dport && a.fwmark == b.fwmark &&
         a.timeout_s == b.timeout_s && a.caddr == b.caddr && a.vaddr == b.vaddr &&
         a.daddr == b.daddr && a.has_seq == b.has_seq && a.in_seq == b.in_seq &&
         a.out_seq == b.out_seq && a.pe_data == b.pe_data && a.pe_name == b.pe_name &&
         a.has_lbd == b.has_lbd && a.lbd == b.lbd;
}

void checkEntry(const lb::SyncConn& c) {
  if (c.af != lb::Af::kInet && c.af != lb::Af::kInet6)
    fail("delivered entry without a family");
  if (c.pe_data.size() > lb::kSyncPeDataMax || c.pe_name.size() > lb::kSyncPeNameMax)
    fail("PE option past its maximum");
  if (!c.pe_data.empty() && c.pe_name.empty())
    fail("PE data delivered without a name");
  // v0 carries SEQ options only with the flags that announce them; v1 never needs them.
  lb::SyncConn v1 = c;
  if (v1.pe_data.empty())
    v1.pe_name = {};  // the kernel sends a PE name only after PE data
  static std::vector<uint8_t> buf(70000);
  lb::SyncMessageBuilder b(absl::MakeSpan(buf), 65507, 9, 1);
  if (b.add(v1) != lb::SyncMessageBuilder::AddResult::kAdded)
    fail("a decoded entry does not encode");
  lb::SyncDecodeCounters c2;
  int n = 0;
  lb::decodeSyncMessage(
      b.bytes(), 9,
      [&](const lb::SyncConn& again) {
        ++n;
        if (!sameFields(v1, again))
          fail("re-encoded entry decodes differently");
      },
      c2);
  if (n != 1 || totalDrops(c2) != 0)
    fail("re-encoded entry dropped");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t syncid = size > 0 && (data[0] & 1) != 0 ? data[size - 1] : 0;
  lb::SyncDecodeCounters c;
  const size_t delivered = lb::decodeSyncMessage(
      absl::MakeConstSpan(data, size), syncid, [](const lb::SyncConn& e) { checkEntry(e); }, c);
  if (delivered != c.conns || c.messages != 1)
    fail("delivered entries not counted");
  // Message-level drops end the datagram: at most one of those; entry-level skips may repeat.
  const uint64_t skips =
      c.drop(lb::SyncDropReason::kUnknownOption) + c.drop(lb::SyncDropReason::kBadProtocol) +
      c.drop(lb::SyncDropReason::kBadState) + c.drop(lb::SyncDropReason::kPeWithoutName);
  if (totalDrops(c) - skips > 1)
    fail("more than one message-level drop");
  return 0;
}
