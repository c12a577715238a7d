// The webhook push target through failures, on PostgreSQL with two broker
// processes: the broker driving the target is killed with SIGKILL under
// load, then the database is restarted under load. The receiver (a real
// HTTP server on loopback) checks every request's Standard Webhooks
// signature; at the end it has every event of the log, duplicates only
// under the same webhook-id (and body), and after de-duplication by id
// exactly the log. (The interop test webhook_receiver.test.js verifies the
// signatures with the npm standardwebhooks package.)
#include <signal.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/callback/test_signer.h"
#include "tests/deliver/receiver.h"
#include "tests/http/raw_client.h"
#include "tests/testing/broker_process.h"
#include "tests/testing/broker_yaml.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using testing::BrokerProcess;

const std::string kKey(32, 'w');

int Send(int http_port, const std::string& request) {
  auto c = http::RawClient::Connect(http_port);
  if (!c || !c->Send(request)) return 0;
  auto reply = c->ReadResponse(absl::Seconds(30));
  return reply ? reply->status : 0;
}

TEST(WebhookFailover, KilledBrokerAndDatabaseRestartLoseNothing) {
  constexpr int kUploads = 400;
  testing::PostgresServer pg;
  ASSERT_TRUE(pg.Start().ok());
  auto dsn = pg.NewDatabase();
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  testing::TempDir dir;
  callback::TestSigner signer;
  testing::Receiver rx;

  std::string head = testing::BrokerYamlHead(dir, signer, "https://broker.example.com/cb");
  const size_t at = head.find("ledger: {path: ");
  head.replace(at, head.find('\n', at) - at,
               absl::StrCat("ledger: {postgres: {dsn_file: ", dir.WriteFile("dsn", *dsn), "}}"));
  const std::string config = dir.WriteFile("broker.yaml", absl::StrCat(head, R"(buckets: [{name: bkt, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}]
callers: [{name: app, api_key_sha256: )", common::HexEncode(common::Sha256("k")), R"(, buckets: [bkt]}]
reconcile: {enabled: false}
deliveries:
  targets:
    - name: receiver
      caller: app
      ack_deadline: 8s
      webhook:
        url: ")", rx.url(), R"("
        secret_files: [)", dir.WriteFile("whsec", "whsec_" + common::Base64Encode(kKey)), R"(]
        timeout: 5s
        allow_private_addresses: true
)"));
  // b1 starts first and takes the target; b2 waits for its lease.
  auto b1 = std::make_unique<BrokerProcess>(config, dir.File("ready1.json"));
  absl::SleepFor(absl::Seconds(1));
  auto b2 = std::make_unique<BrokerProcess>(config, dir.File("ready2.json"));

  client::BrokerClient api(absl::StrCat("127.0.0.1:", b2->grpc_port), "k");
  std::vector<std::string> ids;
  for (int i = 0; i < kUploads; ++i) {
    v1::CreatePostPolicyRequest req;
    req.set_bucket("bkt");
    req.set_key(absl::StrCat("wh/", i));
    auto resp = api.CreatePostPolicy(req);
    ASSERT_TRUE(resp.ok()) << resp.status();
    ids.push_back(resp->upload_id());
  }
  auto callback = [&](int i) {
    std::string body = nlohmann::json{{"upload_id", ids[i]}, {"bucket", "bkt"},
                                      {"object", absl::StrCat("wh/", i)}, {"size", i},
                                      {"etag", "\"e\""}, {"mimeType", "application/octet-stream"}}
                           .dump();
    return testing::SignedCallback(signer, "/cb", "/cb", body);
  };
  // Callbacks go to b2 (b1 is the one killed); refused ones (database
  // down) are sent again until answered, as the test of a recovering OSS.
  std::atomic<int> next{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < 3; ++t) {
    senders.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < kUploads;) {
        const absl::Time deadline = absl::Now() + absl::Seconds(60);
        while (Send(b2->http_port, callback(i)) != 200 && absl::Now() < deadline) {
          absl::SleepFor(absl::Milliseconds(100));
        }
        absl::SleepFor(absl::Milliseconds(5));
      }
    });
  }
  ASSERT_TRUE(rx.WaitForCount(60, absl::Seconds(30)));
  b1->Kill(SIGKILL);  // the broker driving the target, mid-delivery
  ASSERT_TRUE(rx.WaitForCount(rx.count() + 60, absl::Seconds(40))) << "b2 never took the target over";
  ASSERT_TRUE(pg.Stop("fast").ok());
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(pg.Start().ok());
  for (auto& s : senders) s.join();

  // Every event arrives; duplicates only under the same webhook-id.
  std::map<std::string, std::string> body_of;  // webhook-id -> body
  auto distinct = [&] {
    body_of.clear();
    for (const auto& r : rx.requests()) body_of.emplace(r.Header("webhook-id"), r.body);
    return body_of.size();
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (distinct() < static_cast<size_t>(kUploads) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(distinct(), static_cast<size_t>(kUploads));
  int duplicates = 0;
  std::set<uint64_t> sequences;
  std::set<std::string> seen;
  for (const auto& r : rx.requests()) {
    const std::string id = r.Header("webhook-id");
    const std::string ts = r.Header("webhook-timestamp");
    const std::string expected =
        "v1," + common::Base64Encode(common::HmacSha256(kKey, absl::StrCat(id, ".", ts, ".", r.body)));
    EXPECT_EQ(r.Header("webhook-signature"), expected) << id;
    EXPECT_EQ(r.body, body_of[id]) << "same id, other body: " << id;
    if (!seen.insert(id).second) ++duplicates;
    nlohmann::json ce = nlohmann::json::parse(r.body);
    EXPECT_EQ(ce["id"], id);
    sequences.insert(std::stoull(ce["sequence"].get<std::string>()));
  }
  std::set<std::string> want;
  for (const auto& id : ids) want.insert(id + ".completed");
  std::set<std::string> got;
  for (const auto& [id, body] : body_of) got.insert(id);
  EXPECT_EQ(got, want);
  // After dedupe: exactly the log, cursors 1..N.
  ASSERT_EQ(sequences.size(), static_cast<size_t>(kUploads));
  EXPECT_EQ(*sequences.begin(), 1u);
  EXPECT_EQ(*sequences.rbegin(), static_cast<uint64_t>(kUploads));
  std::printf("requests %zu, distinct events %d, duplicates %d\n", rx.requests().size(), kUploads, duplicates);
}

}  // namespace
}  // namespace uploadbroker
