// SPDX-License-Identifier: Apache-2.0
#include "tests/cmd/lbd/test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

namespace lb::testing {
namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "test PKI: %s failed\n", what);
    std::abort();
  }
}

struct Deleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }

  void operator()(X509* x) const { X509_free(x); }

  void operator()(BIO* b) const { BIO_free(b); }
};

using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter>;
using CertPtr = std::unique_ptr<X509, Deleter>;

KeyPtr newKey() {
  KeyPtr k(EVP_EC_gen("P-256"));
  check(k != nullptr, "EVP_EC_gen");
  return k;
}

void addExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  check(X509_add_ext(cert, ext, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, signed by issuer/issuer_key (self-signed when null).
CertPtr newCert(EVP_PKEY* key,
                const char* cn,
                long serial,
                X509* issuer,
                EVP_PKEY* issuer_key,
                bool ca,
                const char* eku,
                const char* san) {
  CertPtr x(X509_new());
  check(x != nullptr, "X509_new");
  check(X509_set_version(x.get(), 2) == 1, "X509_set_version");
  check(ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial) == 1, "serial");
  check(X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600) != nullptr, "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400) != nullptr, "notAfter");
  check(X509_set_pubkey(x.get(), key) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(x.get());
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(cn), -1, -1, 0) == 1,
        "CN");
  X509* signer = issuer != nullptr ? issuer : x.get();
  check(X509_set_issuer_name(x.get(), X509_get_subject_name(signer)) == 1, "issuer");
  addExt(x.get(), signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  addExt(x.get(), signer, NID_key_usage,
         ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyAgreement");
  addExt(x.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer != nullptr)
    addExt(x.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (eku != nullptr)
    addExt(x.get(), signer, NID_ext_key_usage, eku);
  if (san != nullptr)
    addExt(x.get(), signer, NID_subject_alt_name, san);
  check(X509_sign(x.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0,
        "X509_sign");
  return x;
}

std::string toPem(X509* cert, EVP_PKEY* key) {
  std::unique_ptr<BIO, Deleter> bio(BIO_new(BIO_s_mem()));
  check(bio != nullptr, "BIO_new");
  if (cert != nullptr)
    check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  if (key != nullptr) {
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string writeFile(const std::string& dir, const char* name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream f(path);
  f << text;
  check(static_cast<bool>(f), "write");
  return path;
}

}  // namespace

TestPki makeTestPki(const std::string& dir) {
  TestPki p;
  KeyPtr ca_key = newKey();
  CertPtr ca = newCert(ca_key.get(), "lbd test CA", 1, nullptr, nullptr, true, nullptr, nullptr);
  KeyPtr server_key = newKey();
  CertPtr server = newCert(server_key.get(), "lbd", 2, ca.get(), ca_key.get(), false, "serverAuth",
                           "IP:127.0.0.1,DNS:localhost");
  KeyPtr client_key = newKey();
  CertPtr client =
      newCert(client_key.get(), "lbctl", 3, ca.get(), ca_key.get(), false, "clientAuth", nullptr);
  KeyPtr other_ca_key = newKey();
  CertPtr other_ca =
      newCert(other_ca_key.get(), "other CA", 4, nullptr, nullptr, true, nullptr, nullptr);
  KeyPtr other_key = newKey();
  CertPtr other = newCert(other_key.get(), "intruder", 5, other_ca.get(), other_ca_key.get(), false,
                          "clientAuth", nullptr);

  p.ca = writeFile(dir, "ca.pem", toPem(ca.get(), nullptr));
  p.server_cert = writeFile(dir, "server.pem", toPem(server.get(), nullptr));
  p.server_key = writeFile(dir, "server.key", toPem(nullptr, server_key.get()));
  p.client_cert = writeFile(dir, "client.pem", toPem(client.get(), nullptr));
  p.client_key = writeFile(dir, "client.key", toPem(nullptr, client_key.get()));
  p.other_ca = writeFile(dir, "other-ca.pem", toPem(other_ca.get(), nullptr));
  p.other_cert = writeFile(dir, "other-client.pem", toPem(other.get(), nullptr));
  p.other_key = writeFile(dir, "other-client.key", toPem(nullptr, other_key.get()));
  return p;
}

}  // namespace lb::testing
