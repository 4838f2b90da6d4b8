// SPDX-License-Identifier: Apache-2.0
// Two groups of the parser's options, each checked as its source does: the sync daemon's
// (ipvsadm --start-daemon's --mcast-interface, --syncid, --mcast-group, --mcast-port,
// --mcast-ttl, --sync-maxlen: process_options in ipvsadm.c) and lbctl's health checks
// (--check, --health: health_option.h). The parser records which option was seen (kOpt*) and
// hands the value here. Internal to the ipvsadm grammar library.
#pragma once

#include <optional>
#include <string>

#include "lbd/v1/lbd.pb.h"

namespace lb::ipvsadm {

// The option bit (kOpt*) a sync-daemon option tag (kTag*) sets; nullopt for any other tag.
std::optional<int> syncDaemonOptionBit(int tag);
// A sync-daemon option's value, checked and set in `daemon`. ipvsadm's message when it is
// refused ("illegal syncid specified"), else nullopt. `tag` is one syncDaemonOptionBit knows.
std::optional<std::string> setSyncDaemonOption(int tag,
                                               const char* arg,
                                               ::lbd::v1::SyncDaemon* daemon);

// --check: one more checker of the real server (repeatable). The refusal's message, or
// nullopt.
std::optional<std::string> addCheckOption(const char* arg, ::lbd::v1::Dest* dest);
// --health: the service's health policy. The refusal's message, or nullopt.
std::optional<std::string> setHealthOption(const char* arg, ::lbd::v1::Service* service);

}  // namespace lb::ipvsadm
