// SPDX-License-Identifier: Apache-2.0
// Fuzzes the SIP persistence engine's Call-ID parser (sipCallId, ip_vs_pe_sip.c get_callid) on
// any UDP payload. Invariants: a Call-ID is a non-empty view into the payload, at most 255
// bytes, never at its start (the request line is not a header), followed by CR or LF, made of
// the kernel's word characters with at most one '@' between two words; and the result does not
// change when bytes are appended after the line it ends on's terminator.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/pipeline/pe_sip.h"

namespace {

void fail(const char* what) {
  std::fprintf(stderr, "sip_callid_fuzz invariant broken: %s\n", what);
  std::abort();
}

bool wordChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  if (c >= 0xc0 && c != 0xd7 && c != 0xf7)
    return true;
  return std::string("!\"%()*+,-./:<>?[\\]_`{}~").find(static_cast<char>(c)) != std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string payload(reinterpret_cast<const char*>(data), size);
  std::optional<absl::string_view> id = lb::sipCallId(payload);
  if (!id)
    return 0;
  if (id->empty() || id->size() > lb::kPeDataMax)
    fail("empty or longer than 255 bytes");
  if (id->data() < payload.data() || id->data() + id->size() > payload.data() + payload.size())
    fail("not a view into the payload");
  const size_t off = static_cast<size_t>(id->data() - payload.data());
  if (off == 0)
    fail("taken from the request line");
  const size_t end = off + id->size();
  if (end >= payload.size() || (payload[end] != '\r' && payload[end] != '\n'))
    fail("not followed by CR or LF");
  size_t ats = 0;
  for (size_t i = 0; i < id->size(); ++i) {
    const unsigned char c = static_cast<unsigned char>((*id)[i]);
    if (c == '@') {
      ++ats;
      if (i == 0 || i + 1 == id->size())
        fail("'@' without a word on both sides");
    } else if (!wordChar(c)) {
      fail("a character the kernel's iswordc refuses");
    }
  }
  if (ats > 1)
    fail("more than one '@'");
  // Bytes after the Call-ID's line do not change the answer (the search stops at the first one).
  const std::string longer = payload + "\r\nCall-ID: other\r\n";
  std::optional<absl::string_view> again = lb::sipCallId(longer);
  if (!again || *again != *id)
    fail("appended bytes changed the Call-ID");
  return 0;
}
