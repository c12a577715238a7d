// ubctl's durable-subscription commands against a real broker (SQLite):
// subscription create/get/list/delete, consume (printing CloudEvents JSON
// and acking, or --exec acking on exit 0 and nacking otherwise), and
// deadletters list/redrive.
#include <stdlib.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/server.h"
#include "tests/rpc/consume_fixture.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using testing::Exited;
using testing::Subprocess;
using ::testing::HasSubstr;

class UbctlConsumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string yaml = absl::StrCat(
        testing::BrokerYamlHead(dir_, signer_, "https://broker.example.com/cb"), R"(
buckets:
  - {name: photos, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - name: app
    api_key_sha256: )", common::HexEncode(common::Sha256("key-app")), R"(
    buckets: [photos]
reconcile: {enabled: false}
)");
    server::Options opts;
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    opts.config = *std::move(config);
    auto s = server::Server::Create(std::move(opts));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    broker_ = absl::StrCat("127.0.0.1:", server_->grpc_port());
    client_ = std::make_unique<client::BrokerClient>(broker_, "key-app");
    setenv("UB_API_KEY", "key-app", 1);
    setenv("UB_BROKER", broker_.c_str(), 1);
  }

  Exited Ubctl(std::vector<std::string> args) {
    args.insert(args.begin(), UB_UBCTL_BIN);
    Subprocess p(args);
    auto e = p.Wait(std::chrono::seconds(30));
    EXPECT_TRUE(e.has_value()) << "ubctl did not exit";
    return e.value_or(Exited{});
  }

  std::string Upload(const std::string& key) {
    return testing::CompleteUpload(*client_, server_->http_port(), signer_, "photos", key);
  }

  testing::TempDir dir_;
  callback::TestSigner signer_;
  std::unique_ptr<server::Server> server_;
  std::string broker_;
  std::unique_ptr<client::BrokerClient> client_;
};

TEST_F(UbctlConsumeTest, SubscriptionCommandsRoundTrip) {
  Exited created = Ubctl({"subscription", "create", "billing", "--key-prefix", "invoices/",
                          "--ack-deadline", "30", "--max-attempts", "3"});
  ASSERT_EQ(created.code, 0) << created.err;
  auto j = nlohmann::json::parse(created.out);
  EXPECT_EQ(j["created"], true);
  EXPECT_EQ(j["subscription"]["name"], "billing");
  EXPECT_EQ(j["subscription"]["ack_deadline_seconds"], 30);
  EXPECT_EQ(j["subscription"]["max_delivery_attempts"], 3);
  EXPECT_EQ(j["subscription"]["filter"]["key_prefixes"][0], "invoices/");

  Exited got = Ubctl({"subscription", "get", "billing"});
  ASSERT_EQ(got.code, 0) << got.err;
  EXPECT_EQ(nlohmann::json::parse(got.out)["subscription"]["caller"], "app");
  Exited listed = Ubctl({"subscription", "list"});
  ASSERT_EQ(listed.code, 0) << listed.err;
  EXPECT_EQ(nlohmann::json::parse(listed.out)["subscriptions"].size(), 1u);
  Exited deleted = Ubctl({"subscription", "delete", "billing"});
  ASSERT_EQ(deleted.code, 0) << deleted.err;
  Exited gone = Ubctl({"subscription", "get", "billing"});
  EXPECT_EQ(gone.code, 1);
  EXPECT_THAT(gone.err, HasSubstr("error: NOT_FOUND: subscription: no subscription 'billing'"));
}

TEST_F(UbctlConsumeTest, BadInputIsAUsageErrorOrThePreciseBrokerError) {
  Exited bad_name = Ubctl({"subscription", "create", "no/slashes"});
  EXPECT_EQ(bad_name.code, 1);
  EXPECT_THAT(bad_name.err, HasSubstr("error: INVALID_ARGUMENT: name: only letters"));
  Exited no_name = Ubctl({"subscription", "create"});
  EXPECT_EQ(no_name.code, 2);
  EXPECT_THAT(no_name.err, HasSubstr("usage: ubctl subscription create NAME"));
  Exited bad_type = Ubctl({"subscription", "create", "x", "--types", "deleted"});
  EXPECT_EQ(bad_type.code, 2);
  EXPECT_THAT(bad_type.err, HasSubstr("--types: 'deleted'"));
  Exited unknown = Ubctl({"consume", "nothing", "--count", "1"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("error: NOT_FOUND: subscription: no subscription 'nothing'"));
  Exited redrive = Ubctl({"deadletters", "redrive", "x"});
  EXPECT_EQ(redrive.code, 2);
  EXPECT_THAT(redrive.err, HasSubstr("usage: ubctl deadletters"));
}

TEST_F(UbctlConsumeTest, ConsumePrintsCloudEventsAndAcksThem) {
  ASSERT_EQ(Ubctl({"subscription", "create", "print"}).code, 0);
  std::string a = Upload("pics/a.png");
  std::string b = Upload("pics/b.png");
  Exited e = Ubctl({"consume", "print", "--count", "2"});
  ASSERT_EQ(e.code, 0) << e.err;
  std::vector<std::string> lines = absl::StrSplit(e.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << e.out;
  auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["specversion"], "1.0");
  EXPECT_EQ(first["id"], a + ".completed");
  EXPECT_EQ(first["type"], "com.uploadbroker.upload.completed");
  EXPECT_EQ(first["source"], "urn:upload-broker");
  EXPECT_EQ(first["subject"], "pics/a.png");
  EXPECT_EQ(first["sequence"], "1");
  EXPECT_EQ(first["datacontenttype"], "application/json");
  EXPECT_EQ(first["data"]["cursor"], "1");
  EXPECT_EQ(first["data"]["upload_completed"]["upload"]["upload_id"], a);
  EXPECT_EQ(nlohmann::json::parse(lines[1])["id"], b + ".completed");
  // Both acknowledged: the subscription's floor is past them.
  Exited got = Ubctl({"subscription", "get", "print"});
  ASSERT_EQ(got.code, 0);
  EXPECT_EQ(nlohmann::json::parse(got.out)["subscription"]["ack_floor"], "2");
}

TEST_F(UbctlConsumeTest, ExecAcksOnSuccessAndNacksIntoADeadLetterOtherwise) {
  ASSERT_EQ(Ubctl({"subscription", "create", "jobs", "--max-attempts", "1"}).code, 0);
  std::string a = Upload("pics/a.png");
  const std::string seen = dir_.File("seen.json");
  Exited ok = Ubctl({"consume", "jobs", "--count", "1", "--exec", "cat > " + seen});
  ASSERT_EQ(ok.code, 0) << ok.err;
  std::ifstream in(seen);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(nlohmann::json::parse(text.str())["id"], a + ".completed");

  Upload("pics/b.png");
  Exited failed = Ubctl({"consume", "jobs", "--count", "1", "--exec", "exit 3"});
  ASSERT_EQ(failed.code, 0) << failed.err;
  // One attempt allowed: the nacked event is a dead letter with its reason.
  nlohmann::json dead;
  for (int i = 0; i < 100; ++i) {
    Exited listed = Ubctl({"deadletters", "list", "jobs"});
    ASSERT_EQ(listed.code, 0) << listed.err;
    dead = nlohmann::json::parse(listed.out);
    if (dead.contains("dead_letters")) break;
    absl::SleepFor(absl::Milliseconds(50));  // the nack's commit
  }
  ASSERT_TRUE(dead.contains("dead_letters")) << dead.dump();
  EXPECT_EQ(dead["dead_letters"][0]["cursor"], "2");
  EXPECT_THAT(dead["dead_letters"][0]["attempts"][0]["reason"].get<std::string>(),
              HasSubstr("consumer refused: command exited with status 3"));
  Exited redriven = Ubctl({"deadletters", "redrive", "jobs", "--all"});
  ASSERT_EQ(redriven.code, 0) << redriven.err;
  EXPECT_EQ(nlohmann::json::parse(redriven.out)["redriven"], "1");
  Exited again = Ubctl({"consume", "jobs", "--count", "1"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["sequence"], "2");
}

}  // namespace
}  // namespace uploadbroker
