// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/webhook/webhook_server.h"

#include <sys/socket.h>

#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "cmd/lbd-controller/kube/log.h"

namespace lbd::controller::webhook {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using kube::logEvent;
using kube::LogLevel;

constexpr size_t kMaxBody = 8 << 20;  // a pod spec; the API server caps objects at 3 MiB
constexpr auto kDeadline = std::chrono::seconds(10);

absl::StatusOr<tcp::endpoint> parseListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--webhook=", listen, ": expected host:port"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  const asio::ip::address addr = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec)
    return absl::InvalidArgumentError(absl::StrCat("--webhook=", listen, ": bad address"));
  return tcp::endpoint(addr, static_cast<uint16_t>(port));
}

}  // namespace

struct WebhookServer::Impl {
  WebhookOptions options;
  asio::io_context io;
  asio::ssl::context ssl{asio::ssl::context::tls_server};
  tcp::acceptor acceptor{io};
  std::atomic<bool> stopping{false};
  std::atomic<int> in_flight{0};  // connection threads still running; stop() waits for them
};

absl::StatusOr<std::unique_ptr<WebhookServer>> WebhookServer::start(WebhookOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  auto ep = parseListen(impl->options.listen);
  if (!ep.ok())
    return ep.status();
  boost::system::error_code ec;
  impl->ssl.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
  impl->ssl.use_certificate_chain_file(impl->options.cert_file, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--webhook-tls-cert=", impl->options.cert_file, ": ", ec.message()));
  }
  impl->ssl.use_private_key_file(impl->options.key_file, asio::ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("--webhook-tls-key=", impl->options.key_file, ": ", ec.message()));
  }
  impl->acceptor.open(ep->protocol(), ec);
  if (!ec)
    impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec)
    impl->acceptor.bind(*ep, ec);
  if (!ec)
    impl->acceptor.listen(64, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("webhook listen ", impl->options.listen, ": ", ec.message()));
  }
  std::unique_ptr<WebhookServer> server(new WebhookServer(std::move(impl)));
  server->thread_ = std::thread([s = server.get()] { s->serve(); });
  logEvent(LogLevel::kInfo, "webhook", "serving the sidecar injector",
           {{"listen", server->impl_->options.listen}, {"port", absl::StrCat(server->port())}});
  return server;
}

WebhookServer::WebhookServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WebhookServer::~WebhookServer() {
  stop();
}

uint16_t WebhookServer::port() const {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void WebhookServer::stop() {
  if (!thread_.joinable())
    return;
  impl_->stopping = true;
  // A blocking accept() in another thread is not woken by close(); shutdown() on the listening
  // socket makes it return (EINVAL) at once.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  thread_.join();
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  // Connection threads end within their deadline.
  const auto give_up = std::chrono::steady_clock::now() + kDeadline + std::chrono::seconds(1);
  while (impl_->in_flight.load() > 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void WebhookServer::serve() {
  while (!impl_->stopping) {
    boost::system::error_code ec;
    tcp::socket sock(impl_->io);
    impl_->acceptor.accept(sock, ec);
    if (ec) {
      if (impl_->stopping)
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    // One thread per connection; the connection owns everything it touches but the counters,
    // the template (read-only) and the SSL context (thread-safe for handshakes).
    impl_->in_flight.fetch_add(1);
    std::thread([this, sock = std::move(sock)]() mutable {
      struct Done {
        std::atomic<int>& n;
        ~Done() { n.fetch_sub(1); }
      } done{impl_->in_flight};
      beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(sock)), impl_->ssl);
      beast::get_lowest_layer(stream).expires_after(kDeadline);
      boost::system::error_code ec2;
      stream.handshake(asio::ssl::stream_base::server, ec2);
      if (ec2)
        return;
      beast::flat_buffer buf;
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxBody);
      http::read(stream, buf, parser, ec2);
      if (ec2)
        return;
      const auto& req = parser.get();
      http::response<http::string_body> res;
      res.version(11);
      res.keep_alive(false);
      res.set(http::field::content_type, "application/json");
      // The API server appends ?timeout=10s to the path.
      const beast::string_view target = req.target();
      const beast::string_view path = target.substr(0, target.find('?'));
      if (req.method() != http::verb::post || path != "/inject") {
        res.result(http::status::not_found);
        res.body() = R"({"error":"POST /inject"})";
      } else {
        reviews_.fetch_add(1);
        nlohmann::json body = nlohmann::json::parse(req.body(), nullptr, false);
        auto out = body.is_discarded()
                       ? absl::StatusOr<nlohmann::json>(absl::InvalidArgumentError("not JSON"))
                       : review(body, impl_->options.tmpl);
        if (!out.ok()) {
          res.result(http::status::bad_request);
          res.body() = nlohmann::json({{"error", std::string(out.status().message())}}).dump();
          logEvent(LogLevel::kWarn, "webhook", "bad admission request",
                   {{"error", std::string(out.status().message())}});
        } else {
          const nlohmann::json& r = (*out)["response"];
          const std::string pod =
              body["request"].value("namespace", "") + "/" + body["request"].value("name", "");
          if (!r.value("allowed", false)) {
            refused_.fetch_add(1);
            logEvent(LogLevel::kWarn, "webhook", "refused pod",
                     {{"pod", pod},
                      {"reason", r.contains("status") ? r["status"].value("message", "") : ""}});
          } else if (r.contains("patch")) {
            injected_.fetch_add(1);
            logEvent(LogLevel::kInfo, "webhook", "injected lbd", {{"pod", pod}});
          }
          res.result(http::status::ok);
          res.body() = out->dump();
        }
      }
      res.prepare_payload();
      http::write(stream, res, ec2);
      stream.shutdown(ec2);
    }).detach();
  }
}

}  // namespace lbd::controller::webhook
