// The whole product on loopback: `ubctl upload` (client::Upload, the command's
// library) -> oss-sim -> signed callback -> broker -> a Subscribe stream.
// Also oss-sim's rejections (each with OSS's error code and no event) and the
// callback-failure path (203 CallbackFailed, object stored).
#include <curl/curl.h>
#include <grpcpp/grpcpp.h>

#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/broker_client.h"
#include "client/upload.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "osssim/object_store.h"
#include "osssim/simulator.h"
#include "policy/callback_param.h"
#include "policy/post_policy.h"
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

struct Answer {
  long status = 0;
  std::string body;
};

// A hand-built PostObject (for tampering): fields in order, then the file.
Answer PostForm(const std::string& url, const std::vector<std::pair<std::string, std::string>>& fields,
                const std::string& data) {
  Answer a;
  CURL* c = curl_easy_init();
  curl_mime* mime = curl_mime_init(c);
  for (const auto& [name, value] : fields) {
    curl_mimepart* p = curl_mime_addpart(mime);
    curl_mime_name(p, name.c_str());
    curl_mime_data(p, value.data(), value.size());
  }
  curl_mimepart* f = curl_mime_addpart(mime);
  curl_mime_name(f, "file");
  curl_mime_filename(f, "f.bin");
  curl_mime_data(f, data.data(), data.size());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &testing::AppendToString);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
  EXPECT_EQ(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
  curl_mime_free(mime);
  curl_easy_cleanup(c);
  return a;
}

// A hand-built PUT (for tampering): exactly `headers`, then `data`.
Answer PutTo(const std::string& url, const std::vector<std::pair<std::string, std::string>>& headers,
             const std::string& data) {
  Answer a;
  CURL* c = curl_easy_init();
  curl_slist* list = curl_slist_append(nullptr, "Expect:");
  list = curl_slist_append(list, "Content-Type:");  // only the listed one, if any
  for (const auto& [name, value] : headers) {
    list = curl_slist_append(list, absl::StrCat(name, ": ", value).c_str());
  }
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, data.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(data.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &testing::AppendToString);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
  EXPECT_EQ(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(c);
  return a;
}

class OssSimE2eTest : public ::testing::Test {
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
        "\n    buckets: [devbucket]\n    key_prefixes: [uploads/]\n");
    server::Options opts;
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    opts.config = *std::move(config);
    auto s = server::Server::Create(std::move(opts));
    ASSERT_TRUE(s.ok()) << s.status();
    broker_ = *std::move(s);
    relay_.SetTarget(broker_->http_port());
    target_ = absl::StrCat("127.0.0.1:", broker_->grpc_port());
    client_ = std::make_unique<client::BrokerClient>(target_, kApiKey);
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

  // Runs `ubctl upload` on `data`; returns its exit code.
  int Upload(client::UploadArgs args, const std::string& data, std::string* out = nullptr,
             std::string* err = nullptr) {
    args.target = target_;
    args.api_key = kApiKey;
    args.bucket = args.bucket.empty() ? "devbucket" : args.bucket;
    args.file = dir_.WriteFile("upload.bin", data);
    std::ostringstream o, e;
    int rc = client::Upload(args, o, e);
    if (out) *out = o.str();
    if (err) *err = e.str();
    return rc;
  }

  v1::Upload NextCompleted() {
    v1::SubscribeResponse resp;
    EXPECT_TRUE(reader_->Read(&resp));
    EXPECT_EQ(resp.event().type(), v1::EVENT_TYPE_UPLOAD_COMPLETED);
    return resp.event().upload_completed().upload();
  }

  // Uploads and expects one completion event with every detail right.
  void ExpectRoundTrip(client::UploadArgs args, const std::string& operation) {
    std::string data = absl::StrCat("hello, oss-sim\r\n--boundary-lookalike\r\n",
                                    std::string(1, '\0'), "binary\xff");
    args.content_type = "text/plain";
    args.metadata = {"user=42"};
    std::string out, err;
    ASSERT_EQ(Upload(args, data, &out, &err), 0) << err;
    EXPECT_THAT(out, HasSubstr("\"upload_id\""));
    v1::Upload u = NextCompleted();
    EXPECT_EQ(u.bucket(), "devbucket");
    EXPECT_EQ(u.completion().key(), args.key);
    EXPECT_EQ(u.completion().size(), static_cast<int64_t>(data.size()));
    EXPECT_EQ(absl::AsciiStrToUpper(u.completion().etag()),
              absl::AsciiStrToUpper(common::HexEncode(common::Md5(data))));
    EXPECT_EQ(u.completion().content_type(), "text/plain");
    EXPECT_EQ(u.completion().operation(), operation);
    EXPECT_EQ(u.metadata().at("user"), "42");
    std::optional<std::string> stored = osssim::ObjectStore(dir_.File("sim")).Read("devbucket", args.key);
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(*stored, data);
  }

  // The broker's form for `key` (V4 unless v1), to tamper with.
  v1::CreatePostPolicyResponse Policy(const std::string& key, bool v1_sig = false,
                                      const std::string& content_type = "") {
    v1::CreatePostPolicyRequest req;
    req.set_bucket("devbucket");
    req.set_key(key);
    req.set_max_size(100);
    if (!content_type.empty()) req.add_content_types(content_type);
    if (v1_sig) req.set_signature_version(v1::SIGNATURE_VERSION_V1);
    auto resp = client_->CreatePostPolicy(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return *resp;
  }
  static std::vector<std::pair<std::string, std::string>> Fields(
      const v1::CreatePostPolicyResponse& p) {
    std::vector<std::pair<std::string, std::string>> f;
    for (const auto& field : p.fields()) f.emplace_back(field.name(), field.value());
    return f;
  }
  static void Set(std::vector<std::pair<std::string, std::string>>* f, const std::string& name,
                  const std::string& value) {
    for (auto& kv : *f) {
      if (kv.first == name) {
        kv.second = value;
        return;
      }
    }
    f->emplace_back(name, value);
  }
  // After a rejection: the next event must be a fresh, good upload.
  void ExpectNoEventSinceLastUpload() {
    client::UploadArgs ok;
    ok.key = "uploads/marker-" + common::RandomHex(4);
    ExpectRoundTrip(ok, "PostObject");
  }

  testing::TempDir dir_;
  testing::TcpRelay relay_;
  std::unique_ptr<osssim::Simulator> sim_;
  std::unique_ptr<server::Server> broker_;
  std::string target_;
  std::unique_ptr<client::BrokerClient> client_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> reader_;
};

TEST_F(OssSimE2eTest, PostV4) {
  client::UploadArgs a;
  a.key = "uploads/v4.txt";
  ExpectRoundTrip(a, "PostObject");
}

TEST_F(OssSimE2eTest, PostV1) {
  client::UploadArgs a;
  a.key = "uploads/v1.txt";
  a.v1 = true;
  ExpectRoundTrip(a, "PostObject");
}

TEST_F(OssSimE2eTest, PresignedPutV4) {
  client::UploadArgs a;
  a.key = "uploads/put-v4.txt";
  a.presigned = true;
  ExpectRoundTrip(a, "PutObject");
}

TEST_F(OssSimE2eTest, PresignedPutV1) {
  client::UploadArgs a;
  a.key = "uploads/put-v1.txt";
  a.presigned = true;
  a.v1 = true;
  ExpectRoundTrip(a, "PutObject");
}

TEST_F(OssSimE2eTest, UnicodeKeyPostAndPut) {
  client::UploadArgs a;
  a.key = "uploads/фото 猫+%.txt";
  ExpectRoundTrip(a, "PostObject");
  a.key = "uploads/写真 ñ+%.txt";
  a.presigned = true;
  ExpectRoundTrip(a, "PutObject");
}

TEST_F(OssSimE2eTest, RejectsOversize) {
  client::UploadArgs a;
  a.key = "uploads/big.bin";
  a.max_size = 10;
  std::string err;
  EXPECT_EQ(Upload(a, std::string(11, 'x'), nullptr, &err), 1);
  EXPECT_THAT(err, HasSubstr("larger than the broker allows"));
  auto p = Policy("uploads/big2.bin");
  Answer r = PostForm(p.url(), Fields(p), std::string(101, 'x'));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("<Code>EntityTooLarge</Code>"));
  ExpectNoEventSinceLastUpload();
}

TEST_F(OssSimE2eTest, RejectsKeyOutsideThePolicy) {
  auto p = Policy("uploads/a.txt");
  auto f = Fields(p);
  Set(&f, "key", "uploads/b.txt");
  Answer r = PostForm(p.url(), f, "x");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>AccessDenied</Code>"));
  EXPECT_THAT(r.body, HasSubstr("$key"));
  ExpectNoEventSinceLastUpload();
}

TEST_F(OssSimE2eTest, RejectsWrongContentType) {
  auto p = Policy("uploads/a.txt", false, "image/png");
  auto f = Fields(p);
  Set(&f, "Content-Type", "text/html");
  Answer r = PostForm(p.url(), f, "x");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>AccessDenied</Code>"));
  ExpectNoEventSinceLastUpload();
}

TEST_F(OssSimE2eTest, RejectsExpiredPolicy) {
  policy::PostPolicyInput in;
  in.bucket = "devbucket";
  in.key = "uploads/late.txt";
  in.max_size = 100;
  in.now = absl::Now() - absl::Minutes(10);
  in.expiration = absl::Now() - absl::Minutes(1);
  in.region = "cn-hangzhou";
  policy::Credential cred;
  cred.access_key_id = kAk;
  cred.access_key_secret = kSk;
  policy::SignedPostForm form = policy::SignPostPolicy(in, cred);
  Answer r = PostForm(absl::StrCat("http://127.0.0.1:", sim_->port(), "/devbucket/"), form.fields, "x");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>AccessDenied</Code>"));
  EXPECT_THAT(r.body, HasSubstr("Invalid according to Policy: Policy expired."));
  ExpectNoEventSinceLastUpload();
}

TEST_F(OssSimE2eTest, RejectsBadSignatureV4AndV1) {
  auto p = Policy("uploads/a.txt");
  auto f = Fields(p);
  Set(&f, "x-oss-signature", std::string(64, '0'));
  Answer r = PostForm(p.url(), f, "x");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>SignatureDoesNotMatch</Code>"));
  auto p1 = Policy("uploads/a.txt", true);
  auto f1 = Fields(p1);
  Set(&f1, "Signature", common::Base64Encode("not the signature!!!"));
  r = PostForm(p1.url(), f1, "x");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>SignatureDoesNotMatch</Code>"));
  ExpectNoEventSinceLastUpload();
}

TEST_F(OssSimE2eTest, RejectsTamperedCallbackField) {
  auto p = Policy("uploads/a.txt");
  auto f = Fields(p);
  Set(&f, "callback", policy::BuildCallbackParam("http://127.0.0.1:9/evil", "up_evil"));
  Answer r = PostForm(p.url(), f, "x");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>AccessDenied</Code>"));
  EXPECT_THAT(r.body, HasSubstr("$callback"));
  ExpectNoEventSinceLastUpload();
}

TEST_F(OssSimE2eTest, BrokerDownGives203AndTheObjectIsStored) {
  auto p = Policy("uploads/orphan.txt");
  broker_->Shutdown();
  Answer r = PostForm(p.url(), Fields(p), "orphan");
  EXPECT_EQ(r.status, 203);
  EXPECT_THAT(r.body, HasSubstr("<Code>CallbackFailed</Code>"));
  EXPECT_THAT(r.body, HasSubstr("can not connect to your callbackUrl"));
  std::optional<std::string> stored =
      osssim::ObjectStore(dir_.File("sim")).Read("devbucket", "uploads/orphan.txt");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(*stored, "orphan");
}

TEST_F(OssSimE2eTest, SecondUploadToAKeyIsRefusedUnlessOverwriteIsAllowed) {
  client::UploadArgs a;
  a.key = "uploads/once.txt";
  ExpectRoundTrip(a, "PostObject");
  osssim::ObjectStore store(dir_.File("sim"));
  const std::optional<std::string> first = store.Read("devbucket", a.key);
  std::string err;
  EXPECT_EQ(Upload(a, "second", nullptr, &err), 1);
  EXPECT_THAT(err, HasSubstr("already exists"));
  a.presigned = true;
  EXPECT_EQ(Upload(a, "third", nullptr, &err), 1);
  EXPECT_THAT(err, HasSubstr("already exists"));
  a.v1 = true;
  EXPECT_EQ(Upload(a, "fourth", nullptr, &err), 1);
  EXPECT_THAT(err, HasSubstr("already exists"));
  auto p = Policy(a.key);
  Answer r = PostForm(p.url(), Fields(p), "fifth");
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body, HasSubstr("<Code>FileAlreadyExists</Code>"));
  EXPECT_EQ(store.Read("devbucket", a.key), first);
  ExpectNoEventSinceLastUpload();

  // Asked for explicitly, the overwrite goes through and is reported.
  v1::CreatePostPolicyRequest req;
  req.set_bucket("devbucket");
  req.set_key(a.key);
  req.set_allow_overwrite(true);
  auto allowed = client_->CreatePostPolicy(req);
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  r = PostForm(allowed->url(), Fields(*allowed), "replaced");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(NextCompleted().upload_id(), allowed->upload_id());
  EXPECT_EQ(store.Read("devbucket", a.key), "replaced");
  a.v1 = false;  // a presigned PUT, as `ubctl upload --presigned --allow_overwrite`
  a.allow_overwrite = true;
  std::string out;
  EXPECT_EQ(Upload(a, "put again", &out, &err), 0) << err;
  EXPECT_THAT(out, HasSubstr("\"upload_id\""));
  EXPECT_EQ(NextCompleted().completion().size(), 9);
  EXPECT_EQ(store.Read("devbucket", a.key), "put again");
}

TEST_F(OssSimE2eTest, TheUploaderCannotDropForbidOverwrite) {
  auto p = Policy("uploads/pinned.txt");
  auto f = Fields(p);
  Set(&f, "x-oss-forbid-overwrite", "false");
  Answer r = PostForm(p.url(), f, "x");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body, HasSubstr("<Code>AccessDenied</Code>"));
  EXPECT_THAT(r.body, HasSubstr("x-oss-forbid-overwrite"));
  for (v1::SignatureVersion version : {v1::SIGNATURE_VERSION_V4, v1::SIGNATURE_VERSION_V1}) {
    v1::CreatePresignedPutRequest req;
    req.set_bucket("devbucket");
    req.set_key("uploads/pinned.txt");
    req.set_content_type("text/plain");
    req.set_signature_version(version);
    auto put = client_->CreatePresignedPut(req);
    ASSERT_TRUE(put.ok()) << put.status();
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& h : put->headers()) {
      if (h.name() != "x-oss-forbid-overwrite") headers.emplace_back(h.name(), h.value());
    }
    ASSERT_EQ(headers.size() + 1, static_cast<size_t>(put->headers_size()));
    r = PutTo(put->url(), headers, "x");
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_THAT(r.body, HasSubstr("<Code>SignatureDoesNotMatch</Code>"));
  }
  EXPECT_FALSE(osssim::ObjectStore(dir_.File("sim")).Read("devbucket", "uploads/pinned.txt"));
  ExpectNoEventSinceLastUpload();
}

TEST_F(OssSimE2eTest, ForbidOverwriteMustBeTrueOrFalse) {
  v1::CreatePostPolicyRequest req;
  req.set_bucket("devbucket");
  req.set_key("uploads/odd.txt");
  req.set_allow_overwrite(true);  // the policy leaves the field free
  auto p = client_->CreatePostPolicy(req);
  ASSERT_TRUE(p.ok()) << p.status();
  auto f = Fields(*p);
  Set(&f, "x-oss-forbid-overwrite", "yes");
  Answer r = PostForm(p->url(), f, "x");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("<Code>InvalidArgument</Code>"));
  EXPECT_FALSE(osssim::ObjectStore(dir_.File("sim")).Read("devbucket", "uploads/odd.txt"));
}

// The broker pins x-oss-object-acl: private (a policy condition and field
// for POST, a signed header for PUT), so an uploader cannot publish what it
// uploads; OSS (and oss-sim) refuse the request and store nothing.
TEST_F(OssSimE2eTest, TheUploaderCannotMakeTheObjectPublic) {
  osssim::ObjectStore store(dir_.File("sim"));
  auto p = Policy("uploads/public.txt");
  auto f = Fields(p);
  Set(&f, "x-oss-object-acl", "public-read");
  Answer r = PostForm(p.url(), f, "x");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_THAT(r.body, HasSubstr("<Code>AccessDenied</Code>"));
  EXPECT_THAT(r.body, HasSubstr("x-oss-object-acl"));
  for (v1::SignatureVersion version : {v1::SIGNATURE_VERSION_V4, v1::SIGNATURE_VERSION_V1}) {
    v1::CreatePresignedPutRequest req;
    req.set_bucket("devbucket");
    req.set_key("uploads/public.txt");
    req.set_content_type("text/plain");
    req.set_signature_version(version);
    auto put = client_->CreatePresignedPut(req);
    ASSERT_TRUE(put.ok()) << put.status();
    std::vector<std::pair<std::string, std::string>> headers;
    bool pinned = false;
    for (const auto& h : put->headers()) {
      if (h.name() == "x-oss-object-acl") {
        pinned = h.value() == "private";
        headers.emplace_back(h.name(), "public-read-write");
      } else {
        headers.emplace_back(h.name(), h.value());
      }
    }
    EXPECT_TRUE(pinned) << "the presigned PUT does not sign x-oss-object-acl: private";
    r = PutTo(put->url(), headers, "x");
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_THAT(r.body, HasSubstr("<Code>SignatureDoesNotMatch</Code>"));
    // Nor can it add the header to a URL signed without it: every x-oss-*
    // header is in the string to sign, V1 and V4 alike.
    headers.clear();
    for (const auto& h : put->headers()) {
      if (h.name() != "x-oss-object-acl") headers.emplace_back(h.name(), h.value());
    }
    headers.emplace_back("x-oss-object-acl", "private");
    headers.emplace_back("x-oss-storage-class", "Archive");
    r = PutTo(put->url(), headers, "x");
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_THAT(r.body, HasSubstr("<Code>SignatureDoesNotMatch</Code>"));
  }
  EXPECT_FALSE(store.Read("devbucket", "uploads/public.txt"));
  ExpectNoEventSinceLastUpload();
}

TEST_F(OssSimE2eTest, UploadsThroughTheBrokerAreStoredPrivate) {
  osssim::ObjectStore store(dir_.File("sim"));
  client::UploadArgs a;
  a.key = "uploads/private-post.txt";
  ExpectRoundTrip(a, "PostObject");
  ASSERT_TRUE(store.Head("devbucket", a.key));
  EXPECT_EQ(store.Head("devbucket", a.key)->acl, "private");
  a.key = "uploads/private-put.txt";
  a.presigned = true;
  ExpectRoundTrip(a, "PutObject");
  EXPECT_EQ(store.Head("devbucket", a.key)->acl, "private");
  a.key = "uploads/private-put-v1.txt";
  a.v1 = true;
  ExpectRoundTrip(a, "PutObject");
  EXPECT_EQ(store.Head("devbucket", a.key)->acl, "private");
}

// What OSS accepts as an object ACL: its four values, nothing else.
TEST_F(OssSimE2eTest, AnObjectAclMustBeOneOfOssValues) {
  v1::CreatePostPolicyRequest req;
  req.set_bucket("devbucket");
  req.set_key("uploads/acl-odd.txt");
  auto p = client_->CreatePostPolicy(req);
  ASSERT_TRUE(p.ok()) << p.status();
  // Only a policy that does not pin the ACL gets as far as the value check:
  // here, one signed by hand with the simulator's key.
  policy::PostPolicyInput in;
  in.bucket = "devbucket";
  in.key = "uploads/acl-odd.txt";
  in.max_size = 100;
  in.success_action_status = "";
  in.now = absl::Now();
  in.expiration = in.now + absl::Minutes(5);
  in.region = "cn-hangzhou";
  policy::SignedPostForm form = policy::SignPostPolicy(in, {kAk, kSk, "", absl::InfiniteFuture()});
  form.fields.emplace_back("x-oss-object-acl", "world-writable");
  Answer r = PostForm(p->url(), form.fields, "x");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("<Code>InvalidArgument</Code>"));
  EXPECT_THAT(r.body, HasSubstr("x-oss-object-acl"));
  EXPECT_FALSE(osssim::ObjectStore(dir_.File("sim")).Read("devbucket", "uploads/acl-odd.txt"));
  form.fields.back().second = "public-read";  // OSS would take it: nothing in the policy says no
  r = PostForm(p->url(), form.fields, "x");
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(osssim::ObjectStore(dir_.File("sim")).Head("devbucket", "uploads/acl-odd.txt")->acl,
            "public-read");
}

}  // namespace
}  // namespace uploadbroker
