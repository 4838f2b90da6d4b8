// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd-controller/app/lbd_api.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace lbd::controller::app {
namespace {

constexpr int kMaxMessageBytes = 256 << 20;  // a ListServices of 10,000s of services

absl::Status fromGrpc(const char* what, const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat("lbd ", what, ": ", s.error_message()));
}

void setDeadline(grpc::ClientContext& ctx, std::chrono::seconds d) {
  ctx.set_deadline(std::chrono::system_clock::now() + d);
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcLbdApi>> GrpcLbdApi::create(const std::string& target) {
  absl::string_view t = target;
  if (!absl::StartsWith(t, "unix:") && !absl::ConsumePrefix(&t, "tcp://"))
    return absl::InvalidArgumentError(
        absl::StrCat("--lbd=", target, ": want unix:///path or tcp://host:port"));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Reconnect quickly after lbd restarts (gRPC's default backoff grows to 120 s).
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  auto channel =
      grpc::CreateCustomChannel(std::string(t), grpc::InsecureChannelCredentials(), args);
  return std::unique_ptr<GrpcLbdApi>(new GrpcLbdApi(lbd::v1::LoadBalancer::NewStub(channel)));
}

absl::StatusOr<lbd::v1::GetInfoResponse> GrpcLbdApi::getInfo() {
  grpc::ClientContext ctx;
  setDeadline(ctx, std::chrono::seconds(5));
  lbd::v1::GetInfoResponse resp;
  grpc::Status s = stub_->GetInfo(&ctx, lbd::v1::GetInfoRequest(), &resp);
  if (!s.ok())
    return fromGrpc("GetInfo", s);
  return resp;
}

absl::StatusOr<lbd::v1::ListServicesResponse> GrpcLbdApi::listServices() {
  grpc::ClientContext ctx;
  setDeadline(ctx, std::chrono::seconds(30));
  lbd::v1::ListServicesResponse resp;
  grpc::Status s = stub_->ListServices(&ctx, lbd::v1::ListServicesRequest(), &resp);
  if (!s.ok())
    return fromGrpc("ListServices", s);
  return resp;
}

absl::StatusOr<lbd::v1::ApplyBatchResponse> GrpcLbdApi::applyBatch(
    const lbd::v1::ApplyBatchRequest& request) {
  grpc::ClientContext ctx;
  setDeadline(ctx, std::chrono::seconds(60));
  lbd::v1::ApplyBatchResponse resp;
  grpc::Status s = stub_->ApplyBatch(&ctx, request, &resp);
  if (!s.ok())
    return fromGrpc("ApplyBatch", s);
  return resp;
}

}  // namespace lbd::controller::app
