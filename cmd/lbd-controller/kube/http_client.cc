// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/kube/http_client.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace lbd::controller::kube {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

constexpr uint64_t kMaxBodyBytes = 512u << 20;  // one list page of 500 big objects fits easily
constexpr size_t kMaxErrorBody = 1u << 20;
constexpr char kUserAgent[] = "lbd-controller/0.1";

// Runs one asynchronous step to completion on the calling thread. operation_aborted when the
// client was cancelled before or during the step.
template <class Init>
beast::error_code runOp(net::io_context& ioc, const std::atomic<bool>& cancelled, Init&& init) {
  beast::error_code result = net::error::would_block;
  bool done = false;
  init([&result, &done](beast::error_code ec, auto&&...) {
    result = ec;
    done = true;
  });
  ioc.restart();
  if (cancelled.load())
    return net::error::operation_aborted;
  ioc.run();
  return done ? result : beast::error_code(net::error::operation_aborted);
}

class Exchange {
 public:
  Exchange(net::io_context& ioc,
           const std::atomic<bool>& cancelled,
           absl::string_view method,
           absl::string_view target)
      : ioc_(ioc), cancelled_(cancelled), what_(absl::StrCat(method, " ", target)) {}

  absl::Status fail(absl::string_view step, beast::error_code ec) const {
    if (cancelled_.load())
      return absl::CancelledError(absl::StrCat(what_, ": cancelled"));
    if (ec == beast::error::timeout)
      return absl::DeadlineExceededError(absl::StrCat(what_, ": ", step, ": timed out"));
    return absl::UnavailableError(absl::StrCat(what_, ": ", step, ": ", ec.message()));
  }

  template <class Init>
  beast::error_code run(Init&& init) {
    return runOp(ioc_, cancelled_, std::forward<Init>(init));
  }

  template <class Stream>
  absl::StatusOr<HttpResponse> send(Stream& s,
                                    http::request<http::string_body>& req,
                                    HttpClient::Duration timeout,
                                    const HttpClient::OnData* on_data) {
    beast::get_lowest_layer(s).expires_after(timeout);
    if (auto ec = run([&](auto h) { http::async_write(s, req, h); }))
      return fail("write", ec);
    beast::flat_buffer buf;
    if (on_data == nullptr)
      return readWhole(s, buf, timeout);
    return readStream(s, buf, timeout, *on_data);
  }

 private:
  template <class Msg>
  static void fillHead(const Msg& m, HttpResponse& r) {
    r.status = static_cast<int>(m.result_int());
    if (auto it = m.find(http::field::retry_after); it != m.end())
      r.retry_after = std::string(it->value());
    if (auto it = m.find(http::field::content_type); it != m.end())
      r.content_type = std::string(it->value());
  }

  template <class Stream>
  absl::StatusOr<HttpResponse> readWhole(Stream& s,
                                         beast::flat_buffer& buf,
                                         HttpClient::Duration timeout) {
    http::response_parser<http::string_body> p;
    p.body_limit(kMaxBodyBytes);
    beast::get_lowest_layer(s).expires_after(timeout);
    if (auto ec = run([&](auto h) { http::async_read(s, buf, p, h); }))
      return fail("read", ec);
    HttpResponse r;
    fillHead(p.get(), r);
    r.body = std::move(p.get().body());
    return r;
  }

  template <class Stream>
  absl::StatusOr<HttpResponse> readStream(Stream& s,
                                          beast::flat_buffer& buf,
                                          HttpClient::Duration idle,
                                          const HttpClient::OnData& on_data) {
    http::response_parser<http::buffer_body> p;
    p.body_limit(std::numeric_limits<std::uint64_t>::max());  // boost::none is broken in 1.74
    beast::get_lowest_layer(s).expires_after(idle);
    if (auto ec = run([&](auto h) { http::async_read_header(s, buf, p, h); }))
      return fail("read header", ec);
    HttpResponse r;
    fillHead(p.get(), r);
    const bool streaming = r.status == 200;
    char chunk[64 * 1024];
    while (!p.is_done()) {
      p.get().body().data = chunk;
      p.get().body().size = sizeof chunk;
      beast::get_lowest_layer(s).expires_after(idle);
      // read_some: a watch's events must come out as they arrive, not once 64 KiB collected.
      beast::error_code ec = run([&](auto h) { http::async_read_some(s, buf, p, h); });
      if (ec == http::error::need_buffer)
        ec = {};
      if (ec)
        return fail("read body", ec);
      const size_t n = sizeof chunk - p.get().body().size;
      if (n == 0)
        continue;
      if (streaming) {
        if (!on_data(absl::string_view(chunk, n)))
          return r;
      } else if (r.body.size() < kMaxErrorBody) {
        r.body.append(chunk, std::min(n, kMaxErrorBody - r.body.size()));
      }
    }
    return r;
  }

  net::io_context& ioc_;
  const std::atomic<bool>& cancelled_;
  std::string what_;
};

}  // namespace

std::optional<std::chrono::seconds> parseRetryAfter(absl::string_view v) {
  int64_t s = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(v), &s) || s < 0)
    return std::nullopt;
  return std::chrono::seconds(std::min<int64_t>(s, 600));
}

HttpClient::HttpClient(KubeConfig config, std::shared_ptr<TokenSource> tokens)
    : config_(std::move(config)), tokens_(std::move(tokens)), ssl_(ssl::context::tls_client) {}

HttpClient::~HttpClient() = default;

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::create(
    const KubeConfig& config, std::shared_ptr<TokenSource> tokens) {
  if (tokens == nullptr)
    tokens = std::make_shared<TokenSource>(config.token, config.token_file);
  std::unique_ptr<HttpClient> c(new HttpClient(config, std::move(tokens)));
  if (absl::Status st = c->init(); !st.ok())
    return st;
  return c;
}

absl::Status HttpClient::init() {
  if (!config_.server.tls)
    return absl::OkStatus();
  beast::error_code ec;
  ssl_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  if (config_.insecure_skip_tls_verify) {
    ssl_.set_verify_mode(ssl::verify_none);
  } else {
    ssl_.set_verify_mode(ssl::verify_peer);
    if (config_.ca_pem.empty())
      ssl_.set_default_verify_paths(ec);
    else
      ssl_.add_certificate_authority(net::buffer(config_.ca_pem), ec);
    if (ec)
      return absl::InvalidArgumentError(absl::StrCat("CA certificate: ", ec.message()));
  }
  if (!config_.client_cert_pem.empty()) {
    ssl_.use_certificate_chain(net::buffer(config_.client_cert_pem), ec);
    if (ec)
      return absl::InvalidArgumentError(absl::StrCat("client certificate: ", ec.message()));
    ssl_.use_private_key(net::buffer(config_.client_key_pem), ssl::context::pem, ec);
    if (ec)
      return absl::InvalidArgumentError(absl::StrCat("client key: ", ec.message()));
  }
  return absl::OkStatus();
}

void HttpClient::cancel() {
  cancelled_.store(true);
  ioc_.stop();
}

absl::StatusOr<HttpResponse> HttpClient::once(absl::string_view method,
                                              absl::string_view target,
                                              absl::string_view body,
                                              Duration timeout,
                                              const OnData* on_data) {
  Exchange x(ioc_, cancelled_, method, target);
  http::request<http::string_body> req{http::string_to_verb(std::string(method)),
                                       absl::StrCat(config_.server.base_path, target), 11};
  req.set(http::field::host, joinHostPort(config_.server.host, config_.server.port));
  req.set(http::field::user_agent, kUserAgent);
  req.set(http::field::accept, "application/json");
  absl::StatusOr<std::string> token = tokens_->token();
  if (!token.ok())
    return token.status();
  if (!token->empty())
    req.set(http::field::authorization, absl::StrCat("Bearer ", *token));
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::string(body);
  }
  req.prepare_payload();

  tcp::resolver resolver(ioc_);
  tcp::resolver::results_type endpoints;
  beast::error_code ec = x.run([&](auto h) {
    resolver.async_resolve(
        config_.server.host, config_.server.port,
        [&endpoints, h](beast::error_code e, tcp::resolver::results_type r) mutable {
          endpoints = std::move(r);
          h(e);
        });
  });
  if (ec)
    return x.fail(absl::StrCat("resolve ", config_.server.host), ec);
  const HttpClient::Duration connect_timeout =
      std::min<Duration>(timeout, std::chrono::seconds(30));
  if (!config_.server.tls) {
    beast::tcp_stream s(ioc_);
    s.expires_after(connect_timeout);
    if ((ec = x.run([&](auto h) { s.async_connect(endpoints, h); })))
      return x.fail("connect", ec);
    return x.send(s, req, timeout, on_data);
  }
  beast::ssl_stream<beast::tcp_stream> s(ioc_, ssl_);
  const std::string& name =
      config_.tls_server_name.empty() ? config_.server.host : config_.tls_server_name;
  beast::error_code addr_ec;
  net::ip::make_address(name, addr_ec);
  if (addr_ec)  // SNI carries host names only
    SSL_set_tlsext_host_name(s.native_handle(), name.c_str());
  if (!config_.insecure_skip_tls_verify)
    s.set_verify_callback(ssl::host_name_verification(name));
  beast::get_lowest_layer(s).expires_after(connect_timeout);
  if ((ec = x.run([&](auto h) { beast::get_lowest_layer(s).async_connect(endpoints, h); })))
    return x.fail("connect", ec);
  if ((ec = x.run([&](auto h) { s.async_handshake(ssl::stream_base::client, h); })))
    return x.fail("TLS handshake", ec);
  return x.send(s, req, timeout, on_data);
}

absl::StatusOr<HttpResponse> HttpClient::request(absl::string_view method,
                                                 absl::string_view target,
                                                 absl::string_view body,
                                                 Duration timeout) {
  absl::StatusOr<HttpResponse> r = once(method, target, body, timeout, nullptr);
  if (r.ok() && r->status == 401 && tokens_->fromFile()) {
    tokens_->invalidate();
    r = once(method, target, body, timeout, nullptr);
  }
  return r;
}

absl::StatusOr<HttpResponse> HttpClient::stream(absl::string_view target,
                                                Duration idle_timeout,
                                                const OnData& on_data) {
  absl::StatusOr<HttpResponse> r = once("GET", target, "", idle_timeout, &on_data);
  if (r.ok() && r->status == 401 && tokens_->fromFile()) {
    tokens_->invalidate();
    r = once("GET", target, "", idle_timeout, &on_data);
  }
  return r;
}

}  // namespace lbd::controller::kube
