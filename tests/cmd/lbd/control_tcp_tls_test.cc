// SPDX-License-Identifier: Apache-2.0
// The control plane on tcp://127.0.0.1 (port 0: the kernel picks a free one), in plain text,
// with server TLS and with mutual TLS, driven by lbctl's client: the right credentials work,
// every wrong one is refused before any RPC reaches lbd. Plus what grpcurl would use: the
// reflection service (lists lbd.v1.LoadBalancer and serves its descriptors) and the health
// service (SERVING), through grpc's generic client with the reflection messages taken from the
// generated pool (libgrpc++-dev ships no reflection.grpc.pb.h).
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/impl/codegen/sync_stream.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include <google/protobuf/descriptor.pb.h>

#include "cmd/lbctl/lbctl.h"
#include "cmd/lbd/control/control_plane.h"
#include "tests/cmd/lbd/test_pki.h"
#include "tests/testlib/temp_dir.h"

namespace lb::lbd {
namespace {

namespace gp = ::google::protobuf;

struct Result {
  int rc;
  std::string out, err;
};

class TcpControlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new lb::testing::TempDir("lbd_tls_test");
    dir_ = new std::string(tmp_->path());
    pki_ = new testing::TestPki(testing::makeTestPki(*dir_));
  }

  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
    delete tmp_;  // the directory and the test PKI in it
  }

  // Starts lbd's control plane on 127.0.0.1:<free port>; returns "HOST:PORT".
  std::string start(const std::string& cert, const std::string& key, const std::string& ca) {
    ControlOptions o;
    o.listen = "tcp://127.0.0.1:0";
    o.tls_cert = cert;
    o.tls_key = key;
    o.tls_ca = ca;
    plane_ = std::make_unique<ControlPlane>(table_, nullptr, o);
    absl::Status st = plane_->start();
    EXPECT_TRUE(st.ok()) << st;
    EXPECT_GT(plane_->boundPort(), 0);
    return absl::StrCat("127.0.0.1:", plane_->boundPort());
  }

  Result run(const std::string& line) {
    std::vector<std::string> args = absl::StrSplit(line, ' ', absl::SkipEmpty());
    std::istringstream in;
    std::ostringstream out, err;
    int rc = lbctl::runLbctl("ipvsadm", args, in, out, err, lbctl::makeStub);
    return {rc, out.str(), err.str()};
  }

  // A refused connection: lbctl's "lbd unreachable" text and exit 2, and nothing printed.
  void expectRefused(const std::string& line) {
    Result r = run(line);
    EXPECT_EQ(r.rc, 2) << line << ": " << r.err;
    EXPECT_EQ(r.err.rfind("Can't initialize ipvs: ", 0), 0u) << line << ": " << r.err;
    EXPECT_EQ(r.out, "") << line;
  }

  static lb::testing::TempDir* tmp_;
  static std::string* dir_;
  static testing::TestPki* pki_;
  ServiceTable table_;
  std::unique_ptr<ControlPlane> plane_;
};

lb::testing::TempDir* TcpControlTest::tmp_ = nullptr;
std::string* TcpControlTest::dir_ = nullptr;
testing::TestPki* TcpControlTest::pki_ = nullptr;

constexpr char kListing[] =
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    "TCP  198.18.0.1:80 rr\n"
    "  -> 198.18.1.1:80                Masq    1      0          0         \n";

TEST_F(TcpControlTest, PlainTcp) {
  const std::string addr = start("", "", "");
  const std::string server = "--server=tcp://" + addr;
  ASSERT_EQ(run(server + " -A -t 198.18.0.1:80 -s rr").rc, 0);
  ASSERT_EQ(run(server + " -a -t 198.18.0.1:80 -r 198.18.1.1:80 -m").rc, 0);
  EXPECT_EQ(run(server + " -Ln").out, kListing);
  // A TLS client cannot talk to a plain-text server.
  expectRefused("--server=tls://" + addr + " --tls-ca=" + pki_->ca + " -Ln");
}

TEST_F(TcpControlTest, ServerTls) {
  const std::string addr = start(pki_->server_cert, pki_->server_key, "");
  const std::string tls = "--server=tls://" + addr;
  ASSERT_EQ(run(tls + " --tls-ca=" + pki_->ca + " -A -t 198.18.0.1:80 -s rr").rc, 0);
  ASSERT_EQ(run(tls + " --tls-ca " + pki_->ca + " -a -t 198.18.0.1:80 -r 198.18.1.1:80 -m").rc, 0);
  EXPECT_EQ(run(tls + " --tls-ca=" + pki_->ca + " -Ln").out, kListing);
  // tcp:// with a --tls-* option is TLS too (lbctl's older spelling).
  EXPECT_EQ(run("--server=tcp://" + addr + " --tls-ca=" + pki_->ca + " -Ln").out, kListing);

  // Refused: plain text; a client that does not trust lbd's CA (another CA, or only the
  // system's roots, which do not hold this test CA).
  expectRefused("--server=tcp://" + addr + " -Ln");
  expectRefused(tls + " --tls-ca=" + pki_->other_ca + " -Ln");
  expectRefused(tls + " -Ln");
  expectRefused(tls + " --tls-ca=" + pki_->other_ca + " -A -t 198.18.0.2:80");
  EXPECT_EQ(table_.config().services.size(), 1u);  // nothing got through
}

TEST_F(TcpControlTest, MutualTls) {
  const std::string addr = start(pki_->server_cert, pki_->server_key, pki_->ca);
  const std::string tls = "--server=tls://" + addr + " --tls-ca=" + pki_->ca;
  const std::string client = " --tls-cert=" + pki_->client_cert + " --tls-key=" + pki_->client_key;
  ASSERT_EQ(run(tls + client + " -A -t 198.18.0.1:80 -s rr").rc, 0);
  ASSERT_EQ(run(tls + client + " -a -t 198.18.0.1:80 -r 198.18.1.1:80 -m").rc, 0);
  EXPECT_EQ(run(tls + client + " -Ln").out, kListing);

  // Refused: no client certificate; a certificate from another CA.
  expectRefused(tls + " -Ln");
  expectRefused(tls + " --tls-cert=" + pki_->other_cert + " --tls-key=" + pki_->other_key +
                " -A -t 198.18.0.2:80");
  EXPECT_EQ(table_.config().services.size(), 1u);
}

TEST_F(TcpControlTest, BadTlsOptions) {
  // lbd: half a key pair, or client CAs without a server certificate.
  ServiceTable t;
  auto startWith = [&](const std::string& cert, const std::string& key, const std::string& ca) {
    ControlOptions o;
    o.listen = "tcp://127.0.0.1:0";
    o.tls_cert = cert;
    o.tls_key = key;
    o.tls_ca = ca;
    ControlPlane p(t, nullptr, o);
    return p.start();
  };
  EXPECT_EQ(startWith(pki_->server_cert, "", "").message(),
            "TLS: --tls-cert and --tls-key go together");
  EXPECT_EQ(startWith("", "", pki_->ca).message(),
            "TLS: --tls-ca (client certificates) needs --tls-cert");
  EXPECT_EQ(startWith(pki_->server_cert, *dir_ + "/nosuch.key", "").message(),
            absl::StrCat("TLS: cannot read --tls-cert ", pki_->server_cert, " / --tls-key ", *dir_,
                         "/nosuch.key"));

  // lbctl: TLS on a unix socket, half a key pair, an unreadable file.
  Result r = run("--server=unix:///tmp/x.sock --tls-ca=" + pki_->ca + " -Ln");
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.err, "--server=unix:///tmp/x.sock: TLS needs tls://host:port (or tcp://host:port)\n");
  r = run("--server=tls://127.0.0.1:1 --tls-cert=" + pki_->client_cert + " -Ln");
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.err, "--tls-cert and --tls-key go together\n");
  r = run("--server=tls://127.0.0.1:1 --tls-ca=" + *dir_ + "/nosuch.pem -Ln");
  EXPECT_EQ(r.rc, 2);
  EXPECT_EQ(r.err, "--tls-ca=" + *dir_ + "/nosuch.pem: cannot read the file\n");
}

// ---------------------------------------------------------------------------------------------
// Reflection and health, as grpcurl would use them.

grpc::ByteBuffer toBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string fromBuffer(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(b.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// A message type of the reflection protocol, from the generated pool (registered by
// libgrpc++_reflection, which lbd links).
std::unique_ptr<gp::Message> newMessage(const std::string& type) {
  const gp::Descriptor* d = gp::DescriptorPool::generated_pool()->FindMessageTypeByName(type);
  if (d == nullptr)
    return nullptr;
  return std::unique_ptr<gp::Message>(
      gp::MessageFactory::generated_factory()->GetPrototype(d)->New());
}

class ReflectionHealthTest : public TcpControlTest {
 protected:
  void SetUp() override {
    channel_ = grpc::CreateChannel(start("", "", ""), grpc::InsecureChannelCredentials());
  }

  // One ServerReflectionInfo exchange: `field` of the request set to `value`; returns the
  // response.
  std::unique_ptr<gp::Message> reflect(const std::string& field, const std::string& value) {
    std::unique_ptr<gp::Message> req =
        newMessage("grpc.reflection.v1alpha.ServerReflectionRequest");
    std::unique_ptr<gp::Message> resp =
        newMessage("grpc.reflection.v1alpha.ServerReflectionResponse");
    if (req == nullptr || resp == nullptr)
      return nullptr;
    req->GetReflection()->SetString(req.get(), req->GetDescriptor()->FindFieldByName(field), value);
    grpc::ClientContext ctx;
    // The synchronous bidi-stream plumbing generated stubs use, on raw bytes.
    std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> stream(
        grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
            channel_.get(),
            grpc::internal::RpcMethod(
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                grpc::internal::RpcMethod::BIDI_STREAMING),
            &ctx));
    EXPECT_TRUE(stream->Write(toBuffer(req->SerializeAsString())));
    EXPECT_TRUE(stream->WritesDone());
    grpc::ByteBuffer answer;
    EXPECT_TRUE(stream->Read(&answer));
    EXPECT_TRUE(stream->Finish().ok());
    EXPECT_TRUE(resp->ParseFromString(fromBuffer(answer)));
    return resp;
  }

  grpc::Status healthCheck(const std::string& service, std::string* response) {
    // grpc.health.v1.HealthCheckRequest { string service = 1; }, encoded by hand.
    std::string req;
    if (!service.empty())
      req = std::string(1, '\x0a') + static_cast<char>(service.size()) + service;
    grpc::ByteBuffer in = toBuffer(req), out;
    grpc::ClientContext ctx;
    grpc::Status s = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
        channel_.get(),
        grpc::internal::RpcMethod("/grpc.health.v1.Health/Check",
                                  grpc::internal::RpcMethod::NORMAL_RPC),
        &ctx, in, &out);
    if (s.ok())
      *response = fromBuffer(out);
    return s;
  }

  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ReflectionHealthTest, ListsTheServices) {
  std::unique_ptr<gp::Message> resp = reflect("list_services", "*");
  ASSERT_NE(resp, nullptr) << "reflection messages not in the generated pool";
  const gp::Reflection* r = resp->GetReflection();
  const gp::Message& list =
      r->GetMessage(*resp, resp->GetDescriptor()->FindFieldByName("list_services_response"));
  const gp::FieldDescriptor* service = list.GetDescriptor()->FindFieldByName("service");
  std::vector<std::string> names;
  for (int i = 0; i < list.GetReflection()->FieldSize(list, service); ++i) {
    const gp::Message& s = list.GetReflection()->GetRepeatedMessage(list, service, i);
    names.push_back(s.GetReflection()->GetString(s, s.GetDescriptor()->FindFieldByName("name")));
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"grpc.health.v1.Health",
                                             "grpc.reflection.v1alpha.ServerReflection",
                                             "lbd.v1.LoadBalancer"}));
}

TEST_F(ReflectionHealthTest, ServesTheDescriptors) {
  // What `grpcurl describe lbd.v1.LoadBalancer` does: the file defining the symbol and its
  // dependencies, rebuilt into a pool of its own.
  std::unique_ptr<gp::Message> resp = reflect("file_containing_symbol", "lbd.v1.LoadBalancer");
  ASSERT_NE(resp, nullptr);
  const gp::Reflection* r = resp->GetReflection();
  const gp::Message& files =
      r->GetMessage(*resp, resp->GetDescriptor()->FindFieldByName("file_descriptor_response"));
  const gp::FieldDescriptor* protos =
      files.GetDescriptor()->FindFieldByName("file_descriptor_proto");
  const int n = files.GetReflection()->FieldSize(files, protos);
  ASSERT_GE(n, 1);
  std::vector<gp::FileDescriptorProto> fds(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(fds[static_cast<size_t>(i)].ParseFromString(
        files.GetReflection()->GetRepeatedString(files, protos, i)));
  }
  EXPECT_EQ(fds[0].name(), "lbd/v1/lbd.proto");
  EXPECT_EQ(fds[0].package(), "lbd.v1");
  gp::DescriptorPool pool;
  for (int pass = 0; pass < n; ++pass) {  // dependencies first, whatever order they came in
    for (const gp::FileDescriptorProto& fd : fds) {
      if (pool.FindFileByName(fd.name()) != nullptr)
        continue;
      bool deps = true;
      for (const std::string& d : fd.dependency())
        deps &= pool.FindFileByName(d) != nullptr;
      if (deps) {
        ASSERT_NE(pool.BuildFile(fd), nullptr) << fd.name();
      }
    }
  }
  const gp::ServiceDescriptor* svc = pool.FindServiceByName("lbd.v1.LoadBalancer");
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ(svc->method_count(), 27);  // ApplyBatch, GetInfo, ListHealthChecks, the 3 sync RPCs
  const gp::MethodDescriptor* m = svc->FindMethodByName("ListConnections");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->output_type()->full_name(), "lbd.v1.ListConnectionsResponse");
  EXPECT_NE(m->output_type()->FindFieldByName("connections"), nullptr);
}

TEST_F(ReflectionHealthTest, HealthSaysServing) {
  std::string resp;
  // HealthCheckResponse { ServingStatus status = 1; } with SERVING = 1.
  ASSERT_TRUE(healthCheck("lbd.v1.LoadBalancer", &resp).ok());
  EXPECT_EQ(resp, std::string("\x08\x01", 2));
  ASSERT_TRUE(healthCheck("", &resp).ok());  // the server as a whole
  EXPECT_EQ(resp, std::string("\x08\x01", 2));
  EXPECT_EQ(healthCheck("no.such.Service", &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace lb::lbd
