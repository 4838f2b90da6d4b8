// SPDX-License-Identifier: Apache-2.0
// A throw-away PKI for the TLS tests, made with OpenSSL's C API (libssl-dev comes with
// libgrpc-dev; no openssl CLI needed): a CA, a server certificate for 127.0.0.1 / localhost, a
// client certificate, and a second, unrelated CA with its own client certificate.
#pragma once

#include <string>

namespace lb::testing {

// Paths of the PEM files written into the directory.
struct TestPki {
  std::string ca;                       // ca.pem: the CA lbd's certificates chain to
  std::string server_cert, server_key;  // server.pem / server.key (SAN IP:127.0.0.1)
  std::string client_cert, client_key;  // client.pem / client.key, signed by ca
  std::string other_ca;                 // other-ca.pem: an unrelated CA
  std::string other_cert, other_key;    // other-client.pem / .key, signed by other_ca
};

// Generates every key and certificate (EC P-256, valid from an hour ago for a day) into `dir`.
// Aborts the test binary on an OpenSSL failure (it cannot happen with sane inputs).
TestPki makeTestPki(const std::string& dir);

}  // namespace lb::testing
