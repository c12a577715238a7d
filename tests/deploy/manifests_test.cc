// The Kubernetes manifests render with `kubectl kustomize` (offline), carry
// the settings the deployment relies on, and ship a config the broker accepts.
#include <cstdio>
#include <memory>
#include <string>

#include "config/config.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace uploadbroker {
namespace {

std::string Render(const std::string& dir) {
  std::string cmd = "kubectl kustomize " + std::string(UB_SOURCE_DIR) + "/" + dir + " 2>&1";
  std::unique_ptr<FILE, decltype(&pclose)> p(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p.get())) > 0) out.append(buf, n);
  return out;
}

YAML::Node Find(const std::vector<YAML::Node>& docs, const std::string& kind) {
  for (const auto& d : docs) {
    if (d["kind"].as<std::string>() == kind) return d;
  }
  return YAML::Node();
}

TEST(Manifests, SqliteOverlayIsASafeSingleReplicaStatefulSet) {
  std::string text = Render("deploy/k8s/sqlite");
  std::vector<YAML::Node> docs;
  ASSERT_NO_THROW(docs = YAML::LoadAll(text)) << text;
  YAML::Node sts = Find(docs, "StatefulSet");
  ASSERT_TRUE(sts) << text;
  EXPECT_EQ(sts["spec"]["replicas"].as<int>(), 1);
  const std::string app = "upload-broker";
  EXPECT_EQ(sts["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"].as<std::string>(), app);
  YAML::Node pod = sts["spec"]["template"]["spec"];
  EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>());
  YAML::Node c = pod["containers"][0];
  EXPECT_TRUE(c["securityContext"]["readOnlyRootFilesystem"].as<bool>());
  EXPECT_FALSE(c["securityContext"]["allowPrivilegeEscalation"].as<bool>());
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  EXPECT_TRUE(c["resources"]["requests"]["cpu"]);
  EXPECT_EQ(sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"].as<std::string>(), "ledger");
  YAML::Node pdb = Find(docs, "PodDisruptionBudget");
  ASSERT_TRUE(pdb);
  EXPECT_EQ(pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"].as<std::string>(), app);
  YAML::Node svc = Find(docs, "Service");
  ASSERT_TRUE(svc);
  EXPECT_EQ(svc["spec"]["selector"]["app.kubernetes.io/name"].as<std::string>(), app);
}

TEST(Manifests, ShippedConfigIsAcceptedByTheBroker) {
  std::vector<YAML::Node> docs = YAML::LoadAll(Render("deploy/k8s/sqlite"));
  YAML::Node cm = Find(docs, "ConfigMap");
  ASSERT_TRUE(cm);
  auto cfg = config::ParseConfig(cm["data"]["broker.yaml"].as<std::string>(), "configmap");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->ledger_path, "/var/lib/upload-broker/ledger.db");
}

TEST(Manifests, DevConfigIsAcceptedByTheBroker) {
  auto cfg = config::LoadConfig(std::string(UB_SOURCE_DIR) + "/deploy/dev/broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
}

}  // namespace
}  // namespace uploadbroker
