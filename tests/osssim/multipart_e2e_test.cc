// Multipart upload through the whole product on loopback: the broker starts
// the upload in oss-sim, presigns the parts and the completion, the
// uploader sends them with libcurl, oss-sim calls the broker back and one
// UploadCompleted reaches a subscriber. Also the API's refusals (each names
// the field), a part larger than signed, and AbortUpload.
#include <curl/curl.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/broker_client.h"
#include "client/multipart_upload.h"
#include "client/upload.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "osssim/object_store.h"
#include "osssim/simulator.h"
#include "config/config.h"
#include "server/server.h"
#include "tests/testing/tcp_relay.h"
#include "tests/testing/http_get.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using ::testing::HasSubstr;

constexpr char kAk[] = "LTAI5tSimTestId";
constexpr char kSk[] = "sim-test-secret";
constexpr char kApiKey[] = "key-app";
constexpr int64_t kPart = 100 * 1024;  // OSS's smallest part but the last

struct Answer {
  long status = 0;
  std::string body;
};

// Sends `body` with exactly the headers given (libcurl adds none of its own
// that are signed).
Answer Send(const std::string& method, const std::string& url,
            const google::protobuf::RepeatedPtrField<v1::HttpHeader>& headers,
            const std::string& body) {
  Answer a;
  CURL* c = curl_easy_init();
  curl_slist* list = nullptr;
  bool has_type = false;
  for (const v1::HttpHeader& h : headers) {
    list = curl_slist_append(list, absl::StrCat(h.name(), ": ", h.value()).c_str());
    has_type |= absl::EqualsIgnoreCase(h.name(), "Content-Type");
  }
  if (!has_type) list = curl_slist_append(list, "Content-Type:");
  list = curl_slist_append(list, "Expect:");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &testing::AppendToString);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
  EXPECT_EQ(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(c);
  return a;
}

std::string Data(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return s;
}

class MultipartE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    osssim::SimulatorOptions so;
    so.data_dir = dir_.File("sim");
    so.credentials.access_key_id = kAk;
    so.credentials.access_key_secret = kSk;
    auto sim = osssim::Simulator::Create(so);
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = *std::move(sim);
    // OSS calls the callback URL; it names the relay, which forwards to
    // the port the broker binds (port 0).
    std::string yaml = absl::StrCat(
        "development: true\n",  // oss-sim speaks plain HTTP
        "listen: {grpc: \"127.0.0.1:0\", http: \"127.0.0.1:0\"}\n",
        "callback: {url: \"http://127.0.0.1:", relay_.port(), "/oss/callback\", trusted_key_url: \"",
        sim_->public_key_url(), "\", trusted_key_file: ",
        dir_.WriteFile("sim.pem", sim_->public_key_pem()), "}\n",
        "ledger: {path: ", dir_.File("ledger.db"), "}\n",
        "credentials: {access_key_id_file: ", dir_.WriteFile("ak", kAk),
        ", access_key_secret_file: ", dir_.WriteFile("sk", kSk), "}\n",
        "buckets:\n  - {name: devbucket, region: cn-hangzhou, endpoint: \"http://127.0.0.1:",
        sim_->port(), "\", path_style: true}\n",
        "callers:\n  - name: app\n    api_key_sha256: ", common::HexEncode(common::Sha256(kApiKey)),
        "\n    buckets: [devbucket]\n    key_prefixes: [uploads/]\n    max_size: 10737418240\n");
    server::Options opts;
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    opts.config = *std::move(config);
    auto s = server::Server::Create(std::move(opts));
    ASSERT_TRUE(s.ok()) << s.status();
    broker_ = *std::move(s);
    relay_.SetTarget(broker_->http_port());
    client_ = std::make_unique<client::BrokerClient>(
        absl::StrCat("127.0.0.1:", broker_->grpc_port()), kApiKey);
    ctx_.AddMetadata("authorization", absl::StrCat("Bearer ", kApiKey));
    // Every read below ends by this deadline, even if an event never comes.
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(2));
    reader_ = client_->stub().Subscribe(&ctx_, v1::SubscribeRequest());
    reader_->WaitForInitialMetadata();
  }
  void TearDown() override {
    ctx_.TryCancel();
    if (reader_) reader_->Finish();
  }

  v1::CreateMultipartUploadResponse Create(const std::string& key, int64_t total,
                                           int64_t part_size = kPart) {
    v1::CreateMultipartUploadRequest req;
    req.set_bucket("devbucket");
    req.set_key(key);
    req.set_content_type("video/mp4");
    req.set_total_size(total);
    req.set_part_size(part_size);
    (*req.mutable_metadata())["user"] = "42";
    auto resp = client_->CreateMultipartUpload(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? *resp : v1::CreateMultipartUploadResponse();
  }

  v1::SignUploadPartsResponse Sign(const std::string& upload_id, std::vector<int> parts = {}) {
    v1::SignUploadPartsRequest req;
    req.set_upload_id(upload_id);
    for (int n : parts) req.add_part_numbers(n);
    auto resp = client_->SignUploadParts(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? *resp : v1::SignUploadPartsResponse();
  }

  v1::Event NextEvent() {
    v1::SubscribeResponse resp;
    EXPECT_TRUE(reader_->Read(&resp));
    return resp.event();
  }

  testing::TempDir dir_;
  testing::TcpRelay relay_;
  std::unique_ptr<osssim::Simulator> sim_;
  std::unique_ptr<server::Server> broker_;
  std::unique_ptr<client::BrokerClient> client_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> reader_;
};

TEST_F(MultipartE2eTest, UploadWithCallbackReachesTheSubscriberOnce) {
  const std::string data = Data(2 * kPart + 1234);
  v1::CreateMultipartUploadResponse created = Create("uploads/big.mp4", data.size());
  EXPECT_EQ(created.plan().part_count(), 3);
  EXPECT_EQ(created.plan().part_size(), kPart);
  EXPECT_FALSE(created.plan().oss_upload_id().empty());
  auto pending = client_->GetUpload(created.upload_id());
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(pending->state(), v1::UPLOAD_STATE_PENDING);
  EXPECT_EQ(pending->method(), v1::UPLOAD_METHOD_MULTIPART);
  EXPECT_EQ(pending->multipart().oss_upload_id(), created.plan().oss_upload_id());

  v1::SignUploadPartsResponse signed_parts = Sign(created.upload_id());
  ASSERT_EQ(signed_parts.parts_size(), 3);
  EXPECT_EQ(signed_parts.parts(2).size(), 1234);
  EXPECT_EQ(signed_parts.parts(2).offset(), 2 * kPart);
  for (const v1::SignedPart& p : signed_parts.parts()) {
    Answer a = Send("PUT", p.url(), p.headers(), data.substr(p.offset(), p.size()));
    ASSERT_EQ(a.status, 200) << a.body;
  }
  auto held = client_->ListUploadedParts(created.upload_id());
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_EQ(held->parts_size(), 3);
  EXPECT_EQ(held->parts(0).size(), kPart);

  auto complete = client_->CompleteMultipartUpload(created.upload_id());
  ASSERT_TRUE(complete.ok()) << complete.status();
  bool has_callback = false;
  for (const v1::HttpHeader& h : complete->headers()) has_callback |= h.name() == "x-oss-callback";
  EXPECT_TRUE(has_callback);
  Answer done = Send("POST", complete->url(), complete->headers(), "");
  ASSERT_EQ(done.status, 200) << done.body;
  // OSS relays the broker's answer.
  EXPECT_THAT(done.body, HasSubstr(absl::StrCat("\"upload_id\":\"", created.upload_id(), "\"")));

  v1::Event event = NextEvent();
  ASSERT_EQ(event.type(), v1::EVENT_TYPE_UPLOAD_COMPLETED);
  const v1::Upload& u = event.upload_completed().upload();
  EXPECT_EQ(u.upload_id(), created.upload_id());
  EXPECT_EQ(u.completion().operation(), "CompleteMultipartUpload");
  EXPECT_EQ(u.completion().part_count(), 3);
  EXPECT_EQ(u.completion().size(), static_cast<int64_t>(data.size()));
  EXPECT_EQ(u.completion().content_type(), "video/mp4");
  EXPECT_EQ(u.metadata().at("user"), "42");
  EXPECT_EQ(osssim::ObjectStore(dir_.File("sim")).Read("devbucket", "uploads/big.mp4"), data);

  // Sending the completion again finds no upload in OSS and records nothing;
  // the next event is the abort of another upload.
  EXPECT_EQ(Send("POST", complete->url(), complete->headers(), "").status, 404);
  v1::CreateMultipartUploadResponse other = Create("uploads/other.mp4", kPart);
  ASSERT_TRUE(client_->AbortUpload(other.upload_id()).ok());
  v1::Event next = NextEvent();
  EXPECT_EQ(next.type(), v1::EVENT_TYPE_UPLOAD_EXPIRED);
  EXPECT_EQ(next.upload_expired().upload().upload_id(), other.upload_id());
}

TEST_F(MultipartE2eTest, APartLargerThanSignedIsRefused) {
  v1::CreateMultipartUploadResponse created = Create("uploads/pinned.bin", 2 * kPart);
  v1::SignUploadPartsResponse signed_parts = Sign(created.upload_id(), {2});
  ASSERT_EQ(signed_parts.parts_size(), 1);
  const v1::SignedPart& p = signed_parts.parts(0);
  google::protobuf::RepeatedPtrField<v1::HttpHeader> no_length;  // curl sends the real one
  Answer bigger = Send("PUT", p.url(), no_length, Data(kPart + 1));
  EXPECT_EQ(bigger.status, 403);
  EXPECT_THAT(bigger.body, HasSubstr("<Code>SignatureDoesNotMatch</Code>"));
  Answer exact = Send("PUT", p.url(), p.headers(), Data(kPart));
  EXPECT_EQ(exact.status, 200) << exact.body;
}

TEST_F(MultipartE2eTest, RefusalsNameTheField) {
  v1::CreateMultipartUploadRequest req;
  req.set_bucket("devbucket");
  req.set_key("uploads/x.bin");
  req.set_content_type("video/mp4");
  req.set_total_size(5 * kPart);
  req.set_part_size(1000);
  auto small = client_->CreateMultipartUpload(req);
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(small.status().message(), HasSubstr("part_size: 1000 is below OSS's minimum"));
  req.set_part_size(0);
  req.set_total_size(int64_t{20} << 30);
  auto big = client_->CreateMultipartUpload(req);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(big.status().message(), HasSubstr("total_size: 21474836480 exceeds caller 'app'"));
  req.set_total_size(kPart);
  req.set_key("elsewhere/x.bin");
  EXPECT_EQ(client_->CreateMultipartUpload(req).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);  // nothing started in OSS

  v1::CreateMultipartUploadResponse created = Create("uploads/y.bin", 2 * kPart);
  v1::SignUploadPartsRequest sign;
  sign.set_upload_id(created.upload_id());
  sign.add_part_numbers(3);
  auto outside = client_->SignUploadParts(sign);
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(outside.status().message(), HasSubstr("part_numbers: 3 is outside 1..2"));
  sign.set_upload_id("up_unknown");
  EXPECT_EQ(client_->SignUploadParts(sign).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MultipartE2eTest, ObjectsOver5GiBTakeMultipart) {
  const int64_t six_gib = int64_t{6} << 30;  // within this caller's 10 GiB
  v1::CreateMultipartUploadResponse created = Create("uploads/huge.bin", six_gib, 0);
  EXPECT_EQ(created.plan().part_size(), 8 << 20);  // the broker's default
  EXPECT_EQ(created.plan().part_count(), 768);
  v1::CreatePresignedPutRequest put;
  put.set_bucket("devbucket");
  put.set_key("uploads/huge-put.bin");
  put.set_content_type("video/mp4");
  put.set_content_length(six_gib);
  auto refused_put = client_->CreatePresignedPut(put);
  EXPECT_EQ(refused_put.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused_put.status().message(),
              HasSubstr("content_length: 6442450944 is above 5368709120, the most one PutObject "
                        "carries; use CreateMultipartUpload"));
  v1::CreatePostPolicyRequest post;
  post.set_bucket("devbucket");
  post.set_key("uploads/huge-post.bin");
  post.set_max_size(six_gib);
  EXPECT_EQ(client_->CreatePostPolicy(post).status().code(), absl::StatusCode::kInvalidArgument);
  post.clear_max_size();  // the default is the caller's limit, capped at 5 GiB
  auto policy = client_->CreatePostPolicy(post);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_THAT(policy->policy_json(), HasSubstr("[\"content-length-range\",0,5368709120]"));
}

TEST_F(MultipartE2eTest, AbortEndsTheIntentAndFreesTheParts) {
  v1::CreateMultipartUploadResponse created = Create("uploads/aborted.bin", 2 * kPart);
  const v1::SignedPart p = Sign(created.upload_id(), {1}).parts(0);
  ASSERT_EQ(Send("PUT", p.url(), p.headers(), Data(kPart)).status, 200);
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 1u);
  auto aborted = client_->AbortUpload(created.upload_id());
  ASSERT_TRUE(aborted.ok()) << aborted.status();
  EXPECT_EQ(aborted->upload().state(), v1::UPLOAD_STATE_EXPIRED);
  EXPECT_EQ(aborted->upload().expiry_reason(), v1::EXPIRY_REASON_ABORTED);
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);
  v1::Event event = NextEvent();
  EXPECT_EQ(event.type(), v1::EVENT_TYPE_UPLOAD_EXPIRED);
  EXPECT_EQ(event.cursor(), aborted->cursor());
  // What tells an abort from an expiry: the reason, and that it was
  // committed before the intent expired.
  EXPECT_EQ(event.upload_expired().upload().expiry_reason(), v1::EXPIRY_REASON_ABORTED);
  EXPECT_EQ(client_->GetUpload(created.upload_id())->expiry_reason(), v1::EXPIRY_REASON_ABORTED);
  EXPECT_LT(event.committed_at().seconds(), event.upload_expired().upload().expires_at().seconds());
  // Nothing more can be signed, and a second abort is refused.
  v1::SignUploadPartsRequest sign;
  sign.set_upload_id(created.upload_id());
  EXPECT_EQ(client_->SignUploadParts(sign).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client_->AbortUpload(created.upload_id()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A presigned PUT intent can be aborted too.
  v1::CreatePresignedPutRequest put;
  put.set_bucket("devbucket");
  put.set_key("uploads/put.txt");
  put.set_content_type("text/plain");
  auto issued = client_->CreatePresignedPut(put);
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_TRUE(client_->AbortUpload(issued->upload_id()).ok());
}

TEST_F(MultipartE2eTest, InterruptedUploadResumesWithOnlyTheMissingParts) {
  const std::string data = Data(5 * kPart + 99);  // 6 parts
  client::UploadArgs args;
  args.target = absl::StrCat("127.0.0.1:", broker_->grpc_port());
  args.api_key = kApiKey;
  args.file = dir_.WriteFile("video.bin", data);
  args.bucket = "devbucket";
  args.key = "uploads/resumed.bin";
  args.content_type = "video/mp4";
  args.multipart = true;
  args.part_size = kPart;
  args.parallel = 1;  // so the interruption comes after exactly two parts
  std::vector<int> first_run;
  args.on_part_done = [&](int part) {
    first_run.push_back(part);
    return first_run.size() < 2;  // "interrupted" after the second part
  };
  std::ostringstream out, err;
  EXPECT_EQ(client::Upload(args, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr("run the same command again to resume"));
  EXPECT_EQ(first_run.size(), 2u);
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 1u);

  std::vector<int> second_run;
  args.parallel = 3;
  args.on_part_done = [&](int part) {
    second_run.push_back(part);
    return true;
  };
  std::ostringstream out2, err2;
  ASSERT_EQ(client::Upload(args, out2, err2), 0) << err2.str();
  EXPECT_THAT(err2.str(), HasSubstr("OSS holds 2 of 6 parts"));
  std::sort(second_run.begin(), second_run.end());
  std::vector<int> expected;
  for (int n = 1; n <= 6; ++n) {
    if (std::find(first_run.begin(), first_run.end(), n) == first_run.end()) expected.push_back(n);
  }
  EXPECT_EQ(second_run, expected);  // only what OSS lacked
  EXPECT_THAT(out2.str(), HasSubstr("\"upload_id\""));
  EXPECT_EQ(osssim::ObjectStore(dir_.File("sim")).Read("devbucket", "uploads/resumed.bin"), data);
  EXPECT_FALSE(std::ifstream(client::ResumeStatePath(args.file)).good());  // nothing to resume

  v1::Event event = NextEvent();
  ASSERT_EQ(event.type(), v1::EVENT_TYPE_UPLOAD_COMPLETED);
  EXPECT_EQ(event.upload_completed().upload().completion().part_count(), 6);
}

}  // namespace
}  // namespace uploadbroker
