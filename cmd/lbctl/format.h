// SPDX-License-Identifier: Apache-2.0
// ipvsadm's listings, byte for byte (ipvsadm.c print_title, print_service_entry, print_conn,
// list_timeout; DPVS ipvsadm's local-address listing), rendered from lbd.v1 messages.
// Addresses are always printed numerically; column widths are ipvsadm's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/ipvsadm/parser.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::lbctl {

using ipvsadm::ListOptions;

// print_largenum: K/M/G/T suffixes unless `exact`.
std::string formatLargeNum(uint64_t v, bool exact);

// "207.175.44.110:80" / "[2001:2::1]:80".
std::string formatAddrPort(const std::string& address, uint32_t port);

// Services sorted as ipvsadm sorts them (ipvs_cmp_services / ipvs_cmp_dests in libipvs.c),
// unless options.nosort. Dests inside each service are sorted too.
std::vector<::lbd::v1::ServiceStatus> sortedServices(const ::lbd::v1::ListServicesResponse& r,
                                                     bool nosort);

// -L / -Ln [--stats|--rate|--thresholds|--persistent-conn|--tun-info]. `with_header` prints
// the "IP Virtual Server version ..." line (list_all); -L with a service omits it.
std::string formatServiceList(const ::lbd::v1::ListServicesResponse& r,
                              const ListOptions& o,
                              bool with_header);

// -S [-n]: rules that -R reads back. Full-NAT pools are saved as "-P ... -z ADDR" lines.
std::string formatSave(const ::lbd::v1::ListServicesResponse& r, const ListOptions& o);

// -Lc [--persistent-conn].
std::string formatConnections(const ::lbd::v1::ListConnectionsResponse& r, const ListOptions& o);

// -L --timeout.
std::string formatTimeouts(const ::lbd::v1::Timeouts& t);

// -G (DPVS): local addresses per service.
std::string formatLocalAddresses(const ::lbd::v1::ListLocalAddressesResponse& r);

}  // namespace lb::lbctl
