// SPDX-License-Identifier: Apache-2.0
// lbd's files: the state file (the whole configuration as an lbd.v1.Config in protobuf text
// format, written atomically after every committed change) and the --config file (ipvsadm
// rules, one command per line, as `lbctl -S` prints them; '#' starts a comment).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "api/ipvsadm/parser.h"
#include "core/service/config.h"

namespace lb::lbd {

// Writes `cfg` to `path` atomically: path.tmp, fsync, rename, fsync of the directory.
// Internal naming the step and errno on failure.
// `sync_daemons`: the connection sync daemons as started (Config.sync_daemons).
absl::Status writeStateFile(const std::string& path,
                            const FullConfig& cfg,
                            const std::vector<::lbd::v1::SyncDaemon>& sync_daemons = {});

// Reads a state file. NotFound when it does not exist; InvalidArgument when it does not parse.
// `sync_daemons`, when given, receives Config.sync_daemons.
absl::StatusOr<FullConfig> readStateFile(
    const std::string& path, std::vector<::lbd::v1::SyncDaemon>* sync_daemons = nullptr);

// Checks a whole configuration (ServiceTable::validate in lbd).
using ConfigValidator = std::function<absl::Status(const FullConfig&)>;

// Applies one parsed ipvsadm command to a configuration model, as lbd would apply it:
// -A -E -D -C -a -e -d --set -P -Q. Other commands are refused (InvalidArgument).
absl::Status applyCommand(const ipvsadm::Command& cmd, FullConfig& cfg);

// Parses config text: every line is parsed and applied, then the result is validated; the
// first bad line fails with the same code and "config NAME:LINE: reason".
absl::StatusOr<FullConfig> parseConfigText(absl::string_view text,
                                           absl::string_view name,
                                           const ConfigValidator& validate);
absl::StatusOr<FullConfig> loadConfigFile(const std::string& path, const ConfigValidator& validate);

}  // namespace lb::lbd
