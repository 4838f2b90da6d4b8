// SPDX-License-Identifier: Apache-2.0
// The three lbd.v1 calls the controller makes (GetInfo, ListServices, ApplyBatch), behind an
// interface so that the reconcile loop is tested against a fake lbd.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

#include "lbd/v1/lbd.grpc.pb.h"

namespace lbd::controller::app {

class LbdApi {
 public:
  virtual ~LbdApi() = default;
  virtual absl::StatusOr<lbd::v1::GetInfoResponse> getInfo() = 0;
  virtual absl::StatusOr<lbd::v1::ListServicesResponse> listServices() = 0;
  virtual absl::StatusOr<lbd::v1::ApplyBatchResponse> applyBatch(
      const lbd::v1::ApplyBatchRequest& request) = 0;
};

// gRPC on `target`: unix:///run/lbd/lbd.sock (lbctl's default) or tcp://host:port (plain).
// The channel reconnects by itself; every call has a deadline.
class GrpcLbdApi : public LbdApi {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcLbdApi>> create(const std::string& target);

  // LbdApi
  absl::StatusOr<lbd::v1::GetInfoResponse> getInfo() override;
  absl::StatusOr<lbd::v1::ListServicesResponse> listServices() override;
  absl::StatusOr<lbd::v1::ApplyBatchResponse> applyBatch(
      const lbd::v1::ApplyBatchRequest& request) override;

 private:
  explicit GrpcLbdApi(std::unique_ptr<lbd::v1::LoadBalancer::Stub> stub) : stub_(std::move(stub)) {}

  std::unique_ptr<lbd::v1::LoadBalancer::Stub> stub_;
};

}  // namespace lbd::controller::app
