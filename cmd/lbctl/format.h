// SPDX-License-Identifier: Apache-2.0
// ipvsadm's listings, byte for byte (ipvsadm.c print_title, print_service_entry, print_conn,
// list_timeout; DPVS ipvsadm's local-address listing), rendered from lbd.v1 messages.
// Addresses print as `names` gives them (numeric by default: -n); column widths are ipvsadm's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/ipvsadm/parser.h"
#include "cmd/lbctl/names.h"

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
                              bool with_header,
                              const Names& names = Names());

// -S [-n]: rules that -R reads back. Full-NAT pools are saved as "-P ... -z ADDR" lines, right
// after their service's -A line.
std::string formatSave(const ::lbd::v1::ListServicesResponse& r,
                       const ListOptions& o,
                       const Names& names = Names());

// lbd's additions to -S, in lines -R reads back. Before the services: "--set TCP TCPFIN UDP"
// when a timeout differs from the kernel's default, and one "--sysctl NAME=VALUE ..." line with
// every sysctl that differs from its default. After them: the fwmark rules, after a
// "--clear-fwmark-rules" line so that -R gives back exactly this list. Empty for a
// configuration that ipvsadm alone could describe.
std::string formatSaveSettings(const ::lbd::v1::Config& cfg);
std::string formatSaveFwmarkRules(const ::lbd::v1::Config& cfg);

// -Lc [--persistent-conn].
std::string formatConnections(const ::lbd::v1::ListConnectionsResponse& r,
                              const ListOptions& o,
                              const Names& names = Names());

// -L --timeout.
std::string formatTimeouts(const ::lbd::v1::Timeouts& t);

// -G (DPVS): local addresses per service.
// -L --daemon: ipvsadm.c list_daemon's line for each running daemon, master first:
// "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)".
// Fields that are 0 / empty are left out, as list_daemon leaves them out.
std::string formatSyncDaemons(const ::lbd::v1::ListSyncDaemonsResponse& r);

std::string formatLocalAddresses(const ::lbd::v1::ListLocalAddressesResponse& r);

}  // namespace lb::lbctl
