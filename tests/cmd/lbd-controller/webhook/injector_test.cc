// SPDX-License-Identifier: Apache-2.0
// The injector's decision on AdmissionReviews: which pods get the sidecar, the JSONPatch that
// adds it (applied here and checked), clashes refused with the name, re-invocations unchanged.
#include "cmd/lbd-controller/webhook/injector.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace lbd::controller::webhook {
namespace {

using json = nlohmann::json;

InjectTemplate tmpl() {
  auto t = parseInjectTemplate(R"({
    "containers": [{"name": "lbd", "image": "lbd:0.1.0", "args": ["--mode=sidecar"]},
                   {"name": "lbd-controller", "image": "lbd:0.1.0"}],
    "volumes": [{"name": "lbd-run", "emptyDir": {"medium": "Memory"}}]})");
  EXPECT_TRUE(t.ok()) << t.status();
  return *t;
}

json admission(const json& pod) {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request", {{"uid", "u-1"}, {"namespace", "shop"}, {"name", "web"}, {"object", pod}}}};
}

json pod(bool annotated) {
  json p = {{"metadata", {{"name", "web"}}},
            {"spec", {{"containers", json::array({{{"name", "app"}, {"image", "nginx"}}})}}}};
  if (annotated)
    p["metadata"]["annotations"] = {{"lbd.io/inject", "true"}};
  return p;
}

json patched(const json& p, const json& resp) {
  std::string raw;
  EXPECT_TRUE(absl::Base64Unescape(resp["response"]["patch"].get<std::string>(), &raw));
  return p.patch(json::parse(raw));
}

TEST(InjectorTest, AnnotatedPodGetsBothContainersVolumeAndMarker) {
  auto r = review(admission(pod(true)), tmpl());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["response"]["uid"], "u-1");
  EXPECT_TRUE((*r)["response"]["allowed"].get<bool>());
  EXPECT_EQ((*r)["response"]["patchType"], "JSONPatch");
  json out = patched(pod(true), *r);
  ASSERT_EQ(out["spec"]["containers"].size(), 3u);
  EXPECT_EQ(out["spec"]["containers"][0]["name"], "app");
  EXPECT_EQ(out["spec"]["containers"][1]["name"], "lbd");
  EXPECT_EQ(out["spec"]["containers"][1]["args"][0], "--mode=sidecar");
  EXPECT_EQ(out["spec"]["containers"][2]["name"], "lbd-controller");
  ASSERT_EQ(out["spec"]["volumes"].size(), 1u);
  EXPECT_EQ(out["spec"]["volumes"][0]["name"], "lbd-run");
  EXPECT_EQ(out["metadata"]["annotations"]["lbd.io/injected"], "true");
  EXPECT_EQ(out["metadata"]["annotations"]["lbd.io/inject"], "true");
}

TEST(InjectorTest, ExistingVolumesAreKept) {
  json p = pod(true);
  p["spec"]["volumes"] = json::array({{{"name", "data"}, {"emptyDir", json::object()}}});
  auto r = review(admission(p), tmpl());
  ASSERT_TRUE(r.ok());
  json out = patched(p, *r);
  ASSERT_EQ(out["spec"]["volumes"].size(), 2u);
  EXPECT_EQ(out["spec"]["volumes"][0]["name"], "data");
  EXPECT_EQ(out["spec"]["volumes"][1]["name"], "lbd-run");
}

TEST(InjectorTest, UnannotatedOrFalseIsAllowedUnchanged) {
  json p = pod(false);
  auto r = review(admission(p), tmpl());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)["response"]["allowed"].get<bool>());
  EXPECT_FALSE((*r)["response"].contains("patch"));
  p["metadata"]["annotations"] = {{"lbd.io/inject", "false"}};
  r = review(admission(p), tmpl());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)["response"].contains("patch"));
}

TEST(InjectorTest, AlreadyInjectedIsUnchanged) {
  json once = patched(pod(true), *review(admission(pod(true)), tmpl()));
  auto r = review(admission(once), tmpl());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)["response"]["allowed"].get<bool>());
  EXPECT_FALSE((*r)["response"].contains("patch"));
}

TEST(InjectorTest, ClashingNamesAreRefusedWithTheName) {
  json p = pod(true);
  p["spec"]["volumes"] = json::array({{{"name", "lbd-run"}, {"emptyDir", json::object()}}});
  auto r = review(admission(p), tmpl());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)["response"]["allowed"].get<bool>());
  EXPECT_NE((*r)["response"]["status"]["message"].get<std::string>().find("volume lbd-run"),
            std::string::npos);
  json q = pod(true);
  q["spec"]["containers"].push_back({{"name", "lbd"}, {"image", "other"}});
  r = review(admission(q), tmpl());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE((*r)["response"]["allowed"].get<bool>());
  EXPECT_NE((*r)["response"]["status"]["message"].get<std::string>().find("container lbd"),
            std::string::npos);
}

TEST(InjectorTest, NoTokenMountWarns) {
  json p = pod(true);
  p["spec"]["automountServiceAccountToken"] = false;
  auto r = review(admission(p), tmpl());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)["response"].contains("patch"));
  ASSERT_TRUE((*r)["response"]["warnings"].is_array());
}

TEST(InjectorTest, NotAReviewIsAnError) {
  EXPECT_FALSE(review(json::object(), tmpl()).ok());
  EXPECT_FALSE(review(json::array(), tmpl()).ok());
  EXPECT_FALSE(review({{"request", {{"uid", 3}}}}, tmpl()).ok());
}

TEST(InjectorTest, TemplateErrors) {
  EXPECT_FALSE(parseInjectTemplate("{").ok());
  EXPECT_FALSE(parseInjectTemplate(R"({"containers": []})").ok());
  EXPECT_FALSE(parseInjectTemplate(R"({"containers": [{"image": "x"}]})").ok());
  EXPECT_FALSE(parseInjectTemplate(R"({"containers": [{"name": "a", "image": "x"}],
                                       "volumes": [{}]})")
                   .ok());
}

}  // namespace
}  // namespace lbd::controller::webhook
