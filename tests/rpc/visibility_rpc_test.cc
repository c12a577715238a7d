// Callers see their own uploads: GetUpload, ListUploads and Subscribe (live
// and replayed) show a caller only the uploads issued to it, unless
// callers[].read_callers grants more; AbortUpload acts only on its own. On
// both ledger engines, through a real broker over gRPC.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/page_token.h"
#include "rpc/service.h"
#include "server/server.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

std::string Hash(const std::string& key) { return common::HexEncode(common::Sha256(key)); }

testing::PostgresServer& SharedPostgres() {
  static testing::PostgresServer* server = [] {
    auto* s = new testing::PostgresServer();
    absl::Status started = s->Start();
    if (!started.ok()) ADD_FAILURE() << started;
    return s;
  }();
  return *server;
}

class VisibilityRpcTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    // retain_settled: GetUpload of an id older than it is the "aged out" case.
    std::string ledger =
        absl::StrCat("ledger: {retain_settled: 1h, path: ", dir_.File("ledger.db"), "}\n");
    if (GetParam() == "postgres") {
      auto dsn = SharedPostgres().NewDatabase();
      ASSERT_TRUE(dsn.ok()) << dsn.status();
      ledger = absl::StrCat("ledger: {retain_settled: 1h, postgres: {dsn_file: ",
                            dir_.WriteFile("dsn", *dsn), "}}\n");
    }
    std::string yaml = absl::StrCat(R"(
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
callback: {url: "https://broker.example.com/oss/callback"}
credentials: {access_key_id_file: )", dir_.WriteFile("ak", "LTAI5tTestId"),
                                    ", access_key_secret_file: ", dir_.WriteFile("sk", "secret"), R"(}
buckets:
  - {name: photos, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - {name: app, api_key_sha256: )", Hash("key-app"), R"(, buckets: [photos]}
  - {name: batch, api_key_sha256: )", Hash("key-batch"), R"(, buckets: [photos]}
  - {name: reports, api_key_sha256: )", Hash("key-reports"), R"(, buckets: [photos], read_callers: [app]}
  - {name: auditor, api_key_sha256: )", Hash("key-auditor"), R"(, buckets: [photos], read_callers: ["*"]}
)", ledger);
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    server::Options opts;
    opts.config = *std::move(config);
    auto s = server::Server::Create(std::move(opts));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    target_ = absl::StrCat("127.0.0.1:", server_->grpc_port());
    for (const char* name : {"app", "batch", "reports", "auditor"}) {
      clients_[name] = std::make_unique<client::BrokerClient>(target_, absl::StrCat("key-", name));
    }
  }

  client::BrokerClient& As(const std::string& caller) { return *clients_.at(caller); }

  std::string Issue(const std::string& caller, const std::string& key) {
    v1::CreatePostPolicyRequest req;
    req.set_bucket("photos");
    req.set_key(key);
    auto resp = As(caller).CreatePostPolicy(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->upload_id() : "";
  }

  std::set<std::string> Listed(const std::string& caller) {
    std::set<std::string> ids;
    v1::ListUploadsRequest req;
    do {
      auto page = As(caller).ListUploads(req);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      for (const v1::Upload& u : page->uploads()) ids.insert(u.upload_id());
      req.set_page_token(page->next_page_token());
    } while (!req.page_token().empty());
    return ids;
  }

  // Every event a Subscribe from EARLIEST replays for `caller` (the log has
  // `expected` events in all; the replay ends at the deadline).
  std::multiset<std::string> Replayed(const std::string& caller, const v1::EventFilter& filter,
                                      grpc::Status* status = nullptr) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer key-", caller));
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::SubscribeRequest req;
    req.set_start(v1::START_POSITION_EARLIEST);
    *req.mutable_filter() = filter;
    auto reader = As(caller).stub().Subscribe(&ctx, req);
    std::multiset<std::string> ids;
    v1::SubscribeResponse resp;
    while (reader->Read(&resp)) ids.insert(resp.event().upload_expired().upload().upload_id());
    grpc::Status st = reader->Finish();
    if (status != nullptr) *status = st;
    return ids;
  }

  testing::TempDir dir_;
  std::unique_ptr<server::Server> server_;
  std::string target_;
  std::map<std::string, std::unique_ptr<client::BrokerClient>> clients_;
};

TEST_P(VisibilityRpcTest, GetUploadShowsAnotherCallersUploadAsAbsent) {
  const std::string mine = Issue("app", "uploads/a.png");
  const std::string theirs = Issue("batch", "uploads/b.png");
  auto own = As("app").GetUpload(mine);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->caller(), "app");

  auto other = As("app").GetUpload(theirs);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kNotFound) << other.status();
  auto unknown = As("app").GetUpload("up_000000000000ffffffffffffffffffff");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  // Same words as for an id that does not exist: existence does not leak.
  EXPECT_EQ(other.status().message(), rpc::NoUpload(theirs));
  EXPECT_EQ(unknown.status().message(), rpc::NoUpload("up_000000000000ffffffffffffffffffff"));

  // read_callers: reports reads app's (not batch's); auditor ("*") reads all.
  EXPECT_TRUE(As("reports").GetUpload(mine).ok());
  EXPECT_EQ(As("reports").GetUpload(theirs).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(As("auditor").GetUpload(mine).ok());
  EXPECT_TRUE(As("auditor").GetUpload(theirs).ok());
}

TEST_P(VisibilityRpcTest, GetUploadSaysTheSameForAgedOutUnknownAndOthersUploads) {
  // With retain_settled, the ledger knows an id issued long ago "aged out";
  // that must not tell a stranger (or anyone) more than an unknown id does.
  const std::string theirs = Issue("batch", "uploads/b.png");
  const std::string old_id = "up_000000000001aaaaaaaaaaaaaaaaaaaa";  // issued in 1970
  const std::string recent_unknown = absl::StrCat(theirs.substr(0, 15), "00000000000000000000");
  const std::string garbage(300, 'z');
  for (const std::string& caller : {"app", "batch", "auditor"}) {
    for (const std::string& id : {old_id, recent_unknown, garbage}) {
      auto got = As(caller).GetUpload(id);
      EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound) << caller << " " << got.status();
      EXPECT_EQ(got.status().message(), rpc::NoUpload(id)) << caller;
      EXPECT_THAT(got.status().message(), ::testing::Not(HasSubstr("aged out")));
    }
  }
  EXPECT_EQ(As("app").GetUpload(theirs).status().message(), rpc::NoUpload(theirs));
}

TEST_P(VisibilityRpcTest, ListUploadsListsOnlyReadableCallersUploads) {
  std::set<std::string> app, batch;
  for (int i = 0; i < 3; ++i) {
    app.insert(Issue("app", absl::StrCat("uploads/a", i)));
    batch.insert(Issue("batch", absl::StrCat("uploads/b", i)));
  }
  const std::string own = Issue("reports", "uploads/r");
  EXPECT_EQ(Listed("app"), app);
  EXPECT_EQ(Listed("batch"), batch);
  std::set<std::string> reports = app;
  reports.insert(own);
  EXPECT_EQ(Listed("reports"), reports);
  std::set<std::string> all = reports;
  all.insert(batch.begin(), batch.end());
  EXPECT_EQ(Listed("auditor"), all);
}

TEST_P(VisibilityRpcTest, SubscribeReplaysOnlyReadableCallersEvents) {
  const std::string a = Issue("app", "uploads/a.png");
  const std::string b = Issue("batch", "uploads/b.png");
  ASSERT_TRUE(As("app").AbortUpload(a).ok());
  ASSERT_TRUE(As("batch").AbortUpload(b).ok());

  grpc::Status st;
  EXPECT_THAT(Replayed("app", {}, &st), UnorderedElementsAre(a));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  EXPECT_THAT(Replayed("batch", {}), UnorderedElementsAre(b));
  EXPECT_THAT(Replayed("reports", {}), UnorderedElementsAre(a));
  EXPECT_THAT(Replayed("auditor", {}), UnorderedElementsAre(a, b));
  v1::EventFilter only_batch;
  only_batch.add_callers("batch");
  EXPECT_THAT(Replayed("auditor", only_batch), UnorderedElementsAre(b));

  // Asking for another caller's events outright is refused, naming the field.
  EXPECT_THAT(Replayed("app", only_batch, &st), UnorderedElementsAre());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(st.error_message(), HasSubstr("filter.callers[0]"));
  EXPECT_THAT(Replayed("reports", only_batch, &st), UnorderedElementsAre());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_P(VisibilityRpcTest, LiveEventsOfAnotherCallerAreNotDelivered) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer key-app");
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto reader = As("app").stub().Subscribe(&ctx, v1::SubscribeRequest());
  reader->WaitForInitialMetadata();
  const std::string b = Issue("batch", "uploads/b.png");
  const std::string a = Issue("app", "uploads/a.png");
  ASSERT_TRUE(As("batch").AbortUpload(b).ok());  // committed first
  ASSERT_TRUE(As("app").AbortUpload(a).ok());
  v1::SubscribeResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.event().upload_expired().upload().upload_id(), a);
  EXPECT_EQ(resp.event().cursor(), 2u);  // cursor 1 (batch's) was skipped
  ctx.TryCancel();
  (void)reader->Finish();
}

TEST_P(VisibilityRpcTest, PageTokensNameOnlyTheCallersOwnLastUploadAndPagingIsComplete) {
  std::vector<std::string> mine;
  std::string theirs;
  for (int i = 0; i < 7; ++i) {
    mine.push_back(Issue("app", absl::StrCat("uploads/a", i, ".png")));
    theirs = Issue("batch", absl::StrCat("uploads/b", i, ".png"));  // volume between app's
  }
  std::vector<std::string> listed;
  v1::ListUploadsRequest req;
  req.set_page_size(2);
  int pages = 0;
  do {
    auto page = As("app").ListUploads(req);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_LE(page->uploads_size(), 2);
    for (const v1::Upload& u : page->uploads()) listed.push_back(u.upload_id());
    if (!page->next_page_token().empty()) {
      // The token reveals the last upload shown, nothing else.
      auto named = rpc::DecodePageToken(page->next_page_token());
      ASSERT_TRUE(named.ok()) << named.status();
      EXPECT_EQ(*named, listed.back());
      EXPECT_THAT(page->next_page_token(), ::testing::Not(HasSubstr(theirs)));
    }
    req.set_page_token(page->next_page_token());
    ASSERT_LT(++pages, 10);
  } while (!req.page_token().empty());
  // Newest first, each exactly once.
  EXPECT_EQ(listed, std::vector<std::string>(mine.rbegin(), mine.rend()));

  // Garbled, forged and old-style tokens are refused, naming the field.
  const std::string huge(64 * 1024, 'A');
  for (const std::string& bad :
       {std::string("12"), std::string("p1."), std::string("p1.!!!"), std::string("p2.dXBf"),
        rpc::EncodePageToken("../../x"), rpc::EncodePageToken("up_\n"), "p1." + huge,
        rpc::EncodePageToken(std::string(200, 'a')), rpc::EncodePageToken(mine[3]) + "="}) {
    v1::ListUploadsRequest r;
    r.set_page_token(bad);
    auto got = As("app").ListUploads(r);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << bad.substr(0, 40);
    EXPECT_THAT(got.status().message(), HasSubstr("page_token: "));
  }
  // A token naming another caller's upload answers like one naming an id
  // never issued: no existence oracle.
  v1::ListUploadsRequest other, unknown;
  other.set_page_token(rpc::EncodePageToken(theirs));
  unknown.set_page_token(rpc::EncodePageToken("up_000000000001aaaaaaaaaaaaaaaaaaaa"));
  auto a = As("app").ListUploads(other);
  auto b = As("app").ListUploads(unknown);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.status(), b.status());
  // The same token works for a caller that may read the upload (auditor).
  other.set_page_size(1000);
  auto auditor = As("auditor").ListUploads(other);
  ASSERT_TRUE(auditor.ok()) << auditor.status();
  EXPECT_EQ(auditor->uploads_size(), 13);  // everything older than batch's last
}

TEST_P(VisibilityRpcTest, AbortUploadSaysUntilWhenTheSignedFormStaysUsable) {
  v1::CreatePostPolicyRequest req;
  req.set_bucket("photos");
  req.set_key("uploads/form.png");
  auto issued = As("app").CreatePostPolicy(req);
  ASSERT_TRUE(issued.ok()) << issued.status();
  auto aborted = As("app").AbortUpload(issued->upload_id());
  ASSERT_TRUE(aborted.ok()) << aborted.status();
  // OSS would still accept the form: the answer says until when (the
  // original expiry, in the future), as AbortUpload's contract says.
  EXPECT_EQ(aborted->upload().state(), v1::UPLOAD_STATE_EXPIRED);
  EXPECT_EQ(aborted->upload().expires_at().seconds(), issued->expires_at().seconds());
  EXPECT_GT(aborted->upload().expires_at().seconds(), absl::ToUnixSeconds(absl::Now()));
}

TEST_P(VisibilityRpcTest, AbortUploadOfAnotherCallersUploadIsNotFound) {
  const std::string a = Issue("app", "uploads/a.png");
  for (const char* other : {"batch", "reports", "auditor"}) {
    auto aborted = As(other).AbortUpload(a);
    EXPECT_EQ(aborted.status().code(), absl::StatusCode::kNotFound) << other << ": " << aborted.status();
    EXPECT_THAT(aborted.status().message(), HasSubstr(a));
  }
  auto still = As("app").GetUpload(a);
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->state(), v1::UPLOAD_STATE_PENDING);
  // The multipart calls look the upload up the same way.
  EXPECT_EQ(As("batch").ListUploadedParts(a).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(As("batch").CompleteMultipartUpload(a).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(As("app").AbortUpload(a).ok());
}

INSTANTIATE_TEST_SUITE_P(Engines, VisibilityRpcTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace uploadbroker
