// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbctl/names.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace lb::lbctl {
namespace {

namespace pb = ::lbd::v1;

constexpr size_t kMaxNameChars = 59;  // ipvsadm: snprintf(buf, 60, ...)

bool isV6(const std::string& address) {
  return address.find(':') != std::string::npos;
}

// getservbyport's protocol name; "" for none (fwmark templates print the port).
std::string protoKey(pb::Protocol p) {
  switch (p) {
    case pb::PROTOCOL_TCP:
      return "tcp";
    case pb::PROTOCOL_UDP:
      return "udp";
    case pb::PROTOCOL_SCTP:
      return "sctp";
    default:
      return "";
  }
}

class SystemResolver : public NameResolver {
 public:
  std::optional<std::string> hostName(const std::string& ipv4) const override {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    if (inet_pton(AF_INET, ipv4.c_str(), &sin.sin_addr) != 1)
      return std::nullopt;
    std::array<char, NI_MAXHOST> host{};
    if (getnameinfo(reinterpret_cast<const sockaddr*>(&sin), sizeof(sin), host.data(), host.size(),
                    nullptr, 0, NI_NAMEREQD) != 0) {
      return std::nullopt;
    }
    return std::string(host.data());
  }

  std::optional<std::string> serviceName(uint16_t port, const std::string& proto) const override {
    servent se{};
    servent* res = nullptr;
    std::array<char, 4096> buf{};
    if (getservbyport_r(htons(port), proto.c_str(), &se, buf.data(), buf.size(), &res) != 0 ||
        res == nullptr || res->s_name == nullptr) {
      return std::nullopt;
    }
    return std::string(res->s_name);
  }
};

// One lookup run, shared by the caller and its threads (which may outlive the caller).
struct LookupRun {
  struct Job {
    bool host = true;
    std::string address;  // host jobs
    std::pair<uint16_t, std::string> port;
  };

  std::shared_ptr<const NameResolver> resolver;
  std::vector<Job> jobs;
  std::mutex mu;
  std::condition_variable cv;
  size_t next = 0;
  size_t done = 0;
  std::map<std::string, std::string> hosts;
  std::map<std::pair<uint16_t, std::string>, std::string> ports;

  void work() {
    for (;;) {
      Job job;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (next == jobs.size())
          return;
        job = jobs[next++];
      }
      std::optional<std::string> name =
          job.host ? resolver->hostName(job.address)
                   : resolver->serviceName(job.port.first, job.port.second);
      std::lock_guard<std::mutex> lock(mu);
      if (name.has_value() && !name->empty()) {
        if (job.host)
          hosts[job.address] = *name;
        else
          ports[job.port] = *name;
      }
      ++done;
      cv.notify_all();
    }
  }
};

}  // namespace

std::shared_ptr<const NameResolver> systemResolver() {
  return std::make_shared<SystemResolver>();
}

void NameRequest::add(const std::string& address, uint32_t port, pb::Protocol proto) {
  if (!address.empty() && !isV6(address))
    hosts.insert(address);
  const std::string key = protoKey(proto);
  if (!key.empty() && port <= 0xffff)
    ports.insert({static_cast<uint16_t>(port), key});
}

NameRequest nameRequestOf(const pb::ListServicesResponse& r) {
  NameRequest req;
  for (const pb::ServiceStatus& st : r.services()) {
    const pb::ServiceKey& k = st.service().key();
    // fwmark services are TCP to ipvsadm (-f stores IPPROTO_TCP): their dests' ports too.
    const pb::Protocol proto = k.has_fwmark() ? pb::PROTOCOL_TCP : k.address().protocol();
    if (!k.has_fwmark())
      req.add(k.address().address(), k.address().port(), proto);
    for (const pb::DestStatus& ds : st.dests())
      req.add(ds.dest().address(), ds.dest().port(), proto);
  }
  return req;
}

NameRequest nameRequestOf(const pb::ListConnectionsResponse& r) {
  NameRequest req;
  for (const pb::Connection& c : r.connections()) {
    req.add(c.client_address(), c.client_port(), c.protocol());
    req.add(c.virtual_address(), c.virtual_port(), c.protocol());
    req.add(c.dest_address(), c.dest_port(), c.protocol());
  }
  return req;
}

Names Names::lookup(const NameRequest& req,
                    std::shared_ptr<const NameResolver> resolver,
                    absl::Duration bound) {
  Names names;
  names.numeric_ = false;
  auto run = std::make_shared<LookupRun>();
  run->resolver = std::move(resolver);
  for (const std::string& h : req.hosts)
    run->jobs.push_back({true, h, {}});
  for (const auto& p : req.ports)
    run->jobs.push_back({false, "", p});
  if (run->jobs.empty() || bound <= absl::ZeroDuration())
    return names;
  const size_t threads = std::min(run->jobs.size(), kMaxLookupThreads);
  for (size_t i = 0; i < threads; ++i)
    std::thread([run] { run->work(); }).detach();
  std::unique_lock<std::mutex> lock(run->mu);
  run->cv.wait_for(lock, absl::ToChronoNanoseconds(bound),
                   [&] { return run->done == run->jobs.size(); });
  names.hosts_ = run->hosts;
  names.ports_ = run->ports;
  return names;
}

std::string Names::addrPort(const std::string& address, uint32_t port, pb::Protocol proto) const {
  const bool v6 = isV6(address);
  std::string host = address;
  std::string service = absl::StrCat(port);
  if (!numeric_) {
    if (auto it = hosts_.find(address); !v6 && it != hosts_.end())
      host = it->second;
    const std::string key = protoKey(proto);
    if (auto it = ports_.find({static_cast<uint16_t>(port), key});
        !key.empty() && port <= 0xffff && it != ports_.end()) {
      service = it->second;
    }
  }
  std::string out =
      v6 ? absl::StrFormat("[%s]:%s", host, service) : absl::StrFormat("%s:%s", host, service);
  if (out.size() > kMaxNameChars)
    out.resize(kMaxNameChars);
  return out;
}

}  // namespace lb::lbctl
