// The whole recovery path with real parts: the OSS simulator cannot deliver
// the callback (nothing listens at the callback URL), answers the uploader
// 203 CallbackFailed and keeps the object; once the authorization has
// expired, the broker's reconciler finds the object with a signed
// HeadObject (libcurl) and every subscriber gets UploadCompleted with source
// RECONCILED; an authorization never used gets UploadExpired. A prefix
// authorization is settled by listing its prefix (ListObjectsV2).
#include <curl/curl.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
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
#include "nlohmann/json.hpp"
#include "osssim/object_store.h"
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
      "listen: {grpc: \"127.0.0.1:0\", http: \"127.0.0.1:0\", metrics_on_public_port: true}\n",
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

namespace uploadbroker {
namespace {

// oss-sim and a broker that reconciles every 100 ms; nothing listens at the
// callback URL, so OSS's callbacks fail.
struct Stack {
  testing::TempDir dir;
  testing::RefusedPort unreachable;  // OSS's callbacks fail: nothing listens there
  std::unique_ptr<osssim::Simulator> sim;
  std::unique_ptr<server::Server> broker;
  std::unique_ptr<client::BrokerClient> client;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> reader;

  void Start() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    osssim::SimulatorOptions so;
    so.data_dir = dir.File("sim");
    so.credentials = {kAk, kSk};
    auto s = osssim::Simulator::Create(so);
    ASSERT_TRUE(s.ok()) << s.status();
    sim = *std::move(s);
    std::string yaml = absl::StrCat(
        "development: true\n",  // oss-sim speaks plain HTTP
        "listen: {grpc: \"127.0.0.1:0\", http: \"127.0.0.1:0\"}\n",
        "callback: {url: \"http://127.0.0.1:", unreachable.port(), "/oss/callback\"}\n",
        "ledger: {path: ", dir.File("ledger.db"), "}\n",
        "credentials: {access_key_id_file: ", dir.WriteFile("ak", kAk),
        ", access_key_secret_file: ", dir.WriteFile("sk", kSk), "}\n",
        "reconcile: {interval: 100ms, grace: 1ms}\n",
        "buckets:\n  - {name: devbucket, region: cn-hangzhou, endpoint: \"http://127.0.0.1:",
        sim->port(), "\", path_style: true}\n",
        "callers:\n  - name: app\n    api_key_sha256: ", common::HexEncode(common::Sha256(kApiKey)),
        "\n    buckets: [devbucket]\n    key_prefixes: [uploads/]\n");
    server::Options opts;
    auto config = config::LoadConfig(dir.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    opts.config = *std::move(config);
    auto b = server::Server::Create(std::move(opts));
    ASSERT_TRUE(b.ok()) << b.status();
    broker = *std::move(b);
    client = std::make_unique<client::BrokerClient>(
        absl::StrCat("127.0.0.1:", broker->grpc_port()), kApiKey);
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kApiKey));
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    reader = client->stub().Subscribe(&ctx, v1::SubscribeRequest());
    reader->WaitForInitialMetadata();
  }
  ~Stack() {
    ctx.TryCancel();
    if (reader) reader->Finish();
  }
};

TEST(ReconcileE2e, AnExpiredMultipartUploadIsAbortedInOss) {
  Stack stack;
  stack.Start();
  auto& client = *stack.client;
  auto& sim = stack.sim;
  auto& reader = stack.reader;
  v1::CreateMultipartUploadRequest req;
  req.set_bucket("devbucket");
  req.set_key("uploads/abandoned.bin");
  req.set_content_type("application/octet-stream");
  req.set_total_size(300 * 1024);
  req.set_ttl_seconds(1);
  auto created = client.CreateMultipartUpload(req);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(sim->multipart_uploads_in_progress(), 1u);

  // Nobody completes it: once expired, the reconciler aborts it in OSS.
  v1::SubscribeResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.event().type(), v1::EVENT_TYPE_UPLOAD_EXPIRED);
  EXPECT_EQ(resp.event().upload_expired().upload().upload_id(), created->upload_id());
  EXPECT_EQ(resp.event().upload_expired().upload().expiry_reason(), v1::EXPIRY_REASON_EXPIRED);
  EXPECT_EQ(sim->multipart_uploads_in_progress(), 0u);
}

TEST(ReconcileE2e, AMultipartUploadWhoseCallbackFailedIsReportedFromOss) {
  Stack stack;
  stack.Start();
  const std::string data(250 * 1024, 'm');  // 3 parts of 100 KiB
  client::UploadArgs args;
  args.target = absl::StrCat("127.0.0.1:", stack.broker->grpc_port());
  args.api_key = kApiKey;
  args.bucket = "devbucket";
  args.key = "uploads/lost-multipart.bin";
  args.content_type = "application/octet-stream";
  args.ttl_seconds = 2;
  args.multipart = true;
  args.part_size = 100 * 1024;
  args.file = stack.dir.WriteFile("lost.bin", data);
  std::ostringstream out, err;
  EXPECT_EQ(client::Upload(args, out, err), 1);  // stored, but the callback failed
  EXPECT_THAT(err.str(), HasSubstr("could not deliver the upload callback"));

  v1::SubscribeResponse resp;
  ASSERT_TRUE(stack.reader->Read(&resp));
  ASSERT_EQ(resp.event().type(), v1::EVENT_TYPE_UPLOAD_COMPLETED);
  const v1::Completion& c = resp.event().upload_completed().upload().completion();
  EXPECT_EQ(c.source(), v1::COMPLETION_SOURCE_RECONCILED);
  EXPECT_EQ(c.operation(), "CompleteMultipartUpload");
  EXPECT_EQ(c.part_count(), 3);
  EXPECT_EQ(c.size(), static_cast<int64_t>(data.size()));
}

// Stores an object in the simulator as if written `age` ago.
void PutOld(const std::string& sim_dir, const std::string& key, absl::Duration age) {
  osssim::ObjectStore store(sim_dir);
  ASSERT_TRUE(store.Put("devbucket", key, "old", "application/octet-stream", {}).ok());
  const std::string path = absl::StrCat(sim_dir, "/devbucket/", common::HexEncode(key), ".json");
  std::ifstream in(path);
  nlohmann::json meta = nlohmann::json::parse(in);
  meta["last_modified"] = meta["last_modified"].get<int64_t>() - absl::ToInt64Seconds(age);
  std::ofstream(path) << meta.dump();
}

// Uploads `data` with a prefix authorization valid for 1 s; OSS stores it
// but cannot deliver the callback.
void UploadUnderPrefix(Stack& stack, const std::string& prefix, const std::string& name,
                              const std::string& data) {
  client::UploadArgs args;
  args.target = absl::StrCat("127.0.0.1:", stack.broker->grpc_port());
  args.api_key = kApiKey;
  args.bucket = "devbucket";
  args.key_prefix = prefix;
  args.content_type = "application/octet-stream";
  args.ttl_seconds = 1;
  args.file = stack.dir.WriteFile(name, data);
  std::ostringstream out, err;
  EXPECT_EQ(client::Upload(args, out, err), 1);  // stored, but the callback failed
  EXPECT_THAT(err.str(), HasSubstr("stored in OSS"));
}

TEST(ReconcileE2e, APrefixAuthorizationWhoseCallbackFailedIsSettledByListing) {
  Stack stack;
  stack.Start();
  // Listed first (key order), but written before the authorization: skipped.
  PutOld(stack.dir.File("sim"), "uploads/p1/a-old.bin", absl::Hours(1));
  const std::string data(1000, 'p');
  UploadUnderPrefix(stack, "uploads/p1/", "photo.bin", data);

  v1::SubscribeResponse resp;
  ASSERT_TRUE(stack.reader->Read(&resp));
  ASSERT_EQ(resp.event().type(), v1::EVENT_TYPE_UPLOAD_COMPLETED);
  const v1::Upload& u = resp.event().upload_completed().upload();
  EXPECT_EQ(u.key(), "uploads/p1/");
  EXPECT_TRUE(u.key_is_prefix());
  EXPECT_EQ(u.completion().source(), v1::COMPLETION_SOURCE_RECONCILED);
  EXPECT_EQ(u.completion().key(), "uploads/p1/photo.bin");
  EXPECT_EQ(u.completion().size(), 1000);
  EXPECT_EQ(absl::AsciiStrToUpper(u.completion().etag()),
            absl::AsciiStrToUpper(common::HexEncode(common::Md5(data))));
}

TEST(ReconcileE2e, APrefixAuthorizationWithOnlyOlderObjectsExpires) {
  Stack stack;
  stack.Start();
  PutOld(stack.dir.File("sim"), "uploads/p2/old.bin", absl::Hours(1));
  v1::CreatePostPolicyRequest req;
  req.set_bucket("devbucket");
  req.set_key_prefix("uploads/p2/");
  req.set_ttl_seconds(1);
  auto issued = stack.client->CreatePostPolicy(req);
  ASSERT_TRUE(issued.ok()) << issued.status();

  v1::SubscribeResponse resp;
  ASSERT_TRUE(stack.reader->Read(&resp));
  ASSERT_EQ(resp.event().type(), v1::EVENT_TYPE_UPLOAD_EXPIRED);
  EXPECT_EQ(resp.event().upload_expired().upload().upload_id(), issued->upload_id());
  EXPECT_EQ(resp.event().upload_expired().upload().expiry_reason(), v1::EXPIRY_REASON_EXPIRED);
}

}  // namespace
}  // namespace uploadbroker
