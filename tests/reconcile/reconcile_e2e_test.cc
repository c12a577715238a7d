// The whole recovery path with real parts: the OSS simulator cannot deliver
// the callback (nothing listens at the callback URL), answers the uploader
// 203 CallbackFailed and keeps the object; once the authorization has
// expired, the broker's reconciler finds the object with a signed
// HeadObject (libcurl) and every subscriber gets UploadCompleted with source
// RECONCILED; an authorization never used gets UploadExpired.
#include <curl/curl.h>
#include <grpcpp/grpcpp.h>

#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/broker_client.h"
#include "client/upload.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "osssim/simulator.h"
#include "config/config.h"
#include "server/server.h"
#include "tests/testing/refused_port.h"
#include "tests/testing/http_get.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using ::testing::HasSubstr;

constexpr char kAk[] = "LTAI5tReconcileId";
constexpr char kSk[] = "reconcile-secret";
constexpr char kApiKey[] = "key-app";

TEST(ReconcileE2e, AnUploadWhoseCallbackFailedIsReportedFromOss) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  testing::TempDir dir;
  osssim::SimulatorOptions so;
  so.data_dir = dir.File("sim");
  so.credentials = {kAk, kSk};
  auto sim = osssim::Simulator::Create(so);
  ASSERT_TRUE(sim.ok()) << sim.status();
  testing::RefusedPort unreachable;
  std::string yaml = absl::StrCat(
      "development: true\n",  // oss-sim speaks plain HTTP
      "listen: {grpc: \"127.0.0.1:0\", http: \"127.0.0.1:0\"}\n",
      // OSS cannot reach this: nothing listens there.
      "callback: {url: \"http://127.0.0.1:", unreachable.port(), "/oss/callback\", trusted_key_url: \"",
      (*sim)->public_key_url(), "\", trusted_key_file: ",
      dir.WriteFile("sim.pem", (*sim)->public_key_pem()), "}\n",
      "ledger: {path: ", dir.File("ledger.db"), "}\n",
      "credentials: {access_key_id_file: ", dir.WriteFile("ak", kAk),
      ", access_key_secret_file: ", dir.WriteFile("sk", kSk), "}\n",
      "reconcile: {interval: 100ms, grace: 1ms}\n",
      "buckets:\n  - {name: devbucket, region: cn-hangzhou, endpoint: \"http://127.0.0.1:",
      (*sim)->port(), "\", path_style: true}\n",
      "callers:\n  - name: app\n    api_key_sha256: ", common::HexEncode(common::Sha256(kApiKey)),
      "\n    buckets: [devbucket]\n    key_prefixes: [uploads/]\n");
  server::Options opts;
  auto config = config::LoadConfig(dir.WriteFile("broker.yaml", yaml));
  ASSERT_TRUE(config.ok()) << config.status();
  opts.config = *std::move(config);
  auto broker = server::Server::Create(std::move(opts));
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string target = absl::StrCat("127.0.0.1:", (*broker)->grpc_port());
  client::BrokerClient client(target, kApiKey);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kApiKey));
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto reader = client.stub().Subscribe(&ctx, v1::SubscribeRequest());
  reader->WaitForInitialMetadata();

  // An upload OSS stores but cannot report.
  const std::string data = "stored, but the callback never arrived";
  client::UploadArgs args;
  args.target = target;
  args.api_key = kApiKey;
  args.bucket = "devbucket";
  args.key = "uploads/lost.txt";
  args.content_type = "text/plain";
  args.ttl_seconds = 1;
  args.presigned = true;
  args.file = dir.WriteFile("lost.txt", data);
  std::ostringstream out, err;
  EXPECT_EQ(client::Upload(args, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr("stored in OSS"));
  // An authorization nobody uses.
  v1::CreatePostPolicyRequest unused;
  unused.set_bucket("devbucket");
  unused.set_key("uploads/never.txt");
  unused.set_ttl_seconds(1);
  ASSERT_TRUE(client.CreatePostPolicy(unused).ok());

  std::map<std::string, v1::Event> by_key;
  v1::SubscribeResponse resp;
  while (by_key.size() < 2 && reader->Read(&resp)) {
    const v1::Event& e = resp.event();
    const v1::Upload& u = e.type() == v1::EVENT_TYPE_UPLOAD_COMPLETED
                              ? e.upload_completed().upload()
                              : e.upload_expired().upload();
    by_key[u.key()] = e;
  }
  ASSERT_EQ(by_key.size(), 2u) << "events did not arrive";
  const v1::Event& lost = by_key["uploads/lost.txt"];
  ASSERT_EQ(lost.type(), v1::EVENT_TYPE_UPLOAD_COMPLETED);
  const v1::Completion& c = lost.upload_completed().upload().completion();
  EXPECT_EQ(c.source(), v1::COMPLETION_SOURCE_RECONCILED);
  EXPECT_EQ(c.key(), "uploads/lost.txt");
  EXPECT_EQ(c.size(), static_cast<int64_t>(data.size()));
  EXPECT_EQ(absl::AsciiStrToUpper(c.etag()), absl::AsciiStrToUpper(common::HexEncode(common::Md5(data))));
  EXPECT_EQ(c.content_type(), "text/plain");
  EXPECT_EQ(by_key["uploads/never.txt"].type(), v1::EVENT_TYPE_UPLOAD_EXPIRED);

  // The ledger agrees, and /metrics counts both.
  auto stored = client.GetUpload(lost.upload_completed().upload().upload_id());
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::UPLOAD_STATE_COMPLETED);
  std::string metrics = testing::HttpGet(absl::StrCat("http://127.0.0.1:", (*broker)->http_port(), "/metrics"));
  EXPECT_THAT(metrics, HasSubstr("upload_broker_reconciled_total{result=\"completed\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("upload_broker_reconciled_total{result=\"expired\"} 1"));
  ctx.TryCancel();
  reader->Finish();
}

}  // namespace
}  // namespace uploadbroker
