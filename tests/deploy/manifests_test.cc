// The Kubernetes manifests render with `kubectl kustomize` (offline), carry
// the settings the deployment relies on, and ship a config the broker accepts.
// Without kubectl (found when configuring) each test reports a skip.
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace uploadbroker {
namespace {

class Manifests : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(UB_KUBECTL).empty()) {
      GTEST_SKIP() << "kubectl was not found when configuring; install it and re-run cmake "
                      "to render deploy/k8s";
    }
  }

  // The overlay's documents, as `kubectl kustomize <dir>` renders them.
  // Fails the test (empty result) if kubectl fails or prints no YAML.
  static std::vector<YAML::Node> Render(const std::string& dir) {
    std::string cmd = std::string(UB_KUBECTL) + " kustomize " + UB_SOURCE_DIR + "/" + dir + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) {
      ADD_FAILURE() << "cannot run " << cmd;
      return {};
    }
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    int status = pclose(p);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ADD_FAILURE() << cmd << " failed (status " << status << "):\n" << out;
      return {};
    }
    try {
      return YAML::LoadAll(out);
    } catch (const YAML::Exception& e) {
      ADD_FAILURE() << cmd << " printed no YAML: " << e.what() << "\n" << out;
      return {};
    }
  }
};

YAML::Node Find(const std::vector<YAML::Node>& docs, const std::string& kind) {
  for (const auto& d : docs) {
    if (d["kind"].as<std::string>() == kind) return d;
  }
  return YAML::Node();
}

TEST_F(Manifests, SqliteOverlayIsASafeSingleReplicaStatefulSet) {
  std::vector<YAML::Node> docs = Render("deploy/k8s/sqlite");
  YAML::Node sts = Find(docs, "StatefulSet");
  ASSERT_TRUE(sts);
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

TEST_F(Manifests, ShippedConfigIsAcceptedByTheBroker) {
  std::vector<YAML::Node> docs = Render("deploy/k8s/sqlite");
  YAML::Node cm = Find(docs, "ConfigMap");
  ASSERT_TRUE(cm);
  auto cfg = config::ParseConfig(cm["data"]["broker.yaml"].as<std::string>(), "configmap");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->ledger_path, "/var/lib/upload-broker/ledger.db");
}

}  // namespace
}  // namespace uploadbroker
