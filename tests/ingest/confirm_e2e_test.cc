// Completions confirmed against the bucket, end to end: a real broker, a real
// oss-sim as "our" OSS (reached through a relay the test can point elsewhere
// to play an OSS that is down or hangs), callbacks signed with the
// simulator's own callback key as OSS would sign them. What a forger can send
// (a signed callback naming our bucket and a pending upload, for an object
// that is not there, or not as reported) must not complete anything.
#include "tests/ingest/confirm_fixture.h"

#include <sstream>

#include "client/upload.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "spdlog/spdlog.h"
#include "tests/testing/refused_port.h"
#include "ingest/callback_handler.h"

namespace uploadbroker::testing {
namespace {

TEST_F(ConfirmE2eTest, AForgedCallbackForAnObjectNeverUploadedCompletesNothing) {
  StartBroker();
  std::string id = Issue("uploads/forged.png");
  // Signed as OSS signs, naming our bucket and a real pending upload: what
  // an uploader gets by uploading to its own bucket with our callback.
  http::Reply r = Post(Body(id, "uploads/forged.png", 5, "D8E8FCA2DC0F896FD7CB4CB0031BA249"));
  ExpectRefused(r, 409, "rejected", "does not match an upload this broker issued", id);
  EXPECT_THAT(Metrics(), HasSubstr("upload_broker_callbacks_total{result=\"rejected\",reason=\"object_missing\"} 1"));
}

TEST_F(ConfirmE2eTest, ACallbackNamingABucketWeDoNotServeIsRefused) {
  StartBroker();
  std::string id = Issue("uploads/x.png");
  osssim::ObjectInfo o = Store("uploads/x.png", "12345");
  http::Reply r = Post(Body(id, "uploads/x.png", 5, Bare(o.etag), "image/png", "their-bucket"));
  ExpectRefused(r, 409, "rejected", "does not match an upload this broker issued", id);
  EXPECT_THAT(Metrics(), HasSubstr("upload_broker_callbacks_total{result=\"rejected\",reason=\"unknown_bucket\"} 1"));
  EXPECT_EQ(oss_.heads(), 0);
}

TEST_F(ConfirmE2eTest, SizeEtagOrTypeOtherThanTheStoredObjectIsRefused) {
  StartBroker();
  std::string id = Issue("uploads/real.png");
  osssim::ObjectInfo o = Store("uploads/real.png", "12345");
  // Each is refused with the one answer: nothing says what the bucket holds
  // (the size, the ETag, the type), only the log and the metric.
  for (const std::string& body :
       {Body(id, "uploads/real.png", 4, Bare(o.etag)),
        Body(id, "uploads/real.png", 5, "00000000000000000000000000000000"),
        Body(id, "uploads/real.png", 5, Bare(o.etag), "image/jpeg")}) {
    http::Reply r = Post(body);
    ExpectRefused(r, 409, "rejected", "does not match an upload this broker issued", id);
    EXPECT_EQ(r.body, ingest::kRejectedBody);
    EXPECT_THAT(r.body, ::testing::Not(HasSubstr(Bare(o.etag))));
  }
  EXPECT_THAT(Metrics(), HasSubstr("upload_broker_callbacks_total{result=\"rejected\",reason=\"object_mismatch\"} 3"));
  // The true report completes it, once.
  http::Reply ok = Post(Body(id, "uploads/real.png", 5, Bare(o.etag)));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Post(Body(id, "uploads/real.png", 5, Bare(o.etag))).status, 200);
  EXPECT_EQ(Events(id), 1);
  EXPECT_EQ(client_->GetUpload(id)->state(), v1::UPLOAD_STATE_COMPLETED);
}

TEST_F(ConfirmE2eTest, RealUploadsCompleteOnce) {
  StartBroker();
  for (bool multipart : {false, true}) {
    SCOPED_TRACE(multipart ? "multipart" : "POST");
    client::UploadArgs args;
    args.target = target_;
    args.api_key = kApiKey;
    args.bucket = "devbucket";
    args.key = multipart ? "uploads/big.bin" : "uploads/small.txt";
    args.content_type = "text/plain";
    args.multipart = multipart;
    args.part_size = 100 * 1024;
    args.file = dir_.WriteFile(multipart ? "big" : "small", std::string(multipart ? 250 * 1024 : 100, 'x'));
    std::ostringstream out, err;
    ASSERT_EQ(client::Upload(args, out, err), 0) << err.str();
    auto j = nlohmann::json::parse(out.str(), nullptr, false);
    ASSERT_TRUE(j.is_object()) << out.str();
    std::string id = j.value("upload_id", "");
    ASSERT_FALSE(id.empty()) << out.str();
    EXPECT_EQ(client_->GetUpload(id)->state(), v1::UPLOAD_STATE_COMPLETED);
    EXPECT_EQ(Events(id), 1);
  }
  EXPECT_THAT(Metrics(), HasSubstr("upload_broker_callbacks_total{result=\"accepted\",reason=\"recorded\"} 2"));
}

TEST_F(ConfirmE2eTest, WhenOssCannotConfirmTheAnswerIs503WithinTheBudget) {
  testing::RefusedPort down;
  SilentListener hangs;
  oss_.SetTarget(down.port());
  StartBroker();
  std::string id = Issue("uploads/later.png");
  osssim::ObjectInfo o = Store("uploads/later.png", "12345");
  const std::string body = Body(id, "uploads/later.png", 5, Bare(o.etag));

  ExpectRefused(Post(body), 503, "unconfirmed", "could not be confirmed now", id);
  oss_.SetTarget(hangs.port());  // accepts, never answers
  absl::Time start = absl::Now();
  http::Reply r = Post(body);
  absl::Duration took = absl::Now() - start;
  ExpectRefused(r, 503, "unconfirmed", "could not be confirmed now", id);
  EXPECT_LT(took, absl::Milliseconds(2500)) << "OSS gives a callback 5 s; the broker must answer well inside";
  EXPECT_GE(took, absl::Seconds(1));

  // OSS is back: the same callback (a retry, or the reconciler's HEAD later)
  // completes the upload.
  oss_.SetTarget(sim_->port());
  ASSERT_EQ(Post(body).status, 200);
  EXPECT_EQ(Events(id), 1);
  EXPECT_THAT(Metrics(), HasSubstr("upload_broker_callbacks_total{result=\"rejected\",reason=\"unconfirmed\"} 2"));
}

TEST_F(ConfirmE2eTest, TurnedOffExplicitlyTheOldBehaviourReturnsWithAWarning) {
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  spdlog::default_logger()->sinks().push_back(ring);
  StartBroker(", confirm_completions: false");
  spdlog::default_logger()->sinks().pop_back();
  bool warned = false;
  for (const std::string& line : ring->last_formatted()) {
    warned |= line.find("CALLBACKS ARE NOT CONFIRMED") != std::string::npos &&
              line.find("warning") != std::string::npos;
  }
  EXPECT_TRUE(warned) << "the startup log must say that forged completions are possible";
  std::string id = Issue("uploads/unchecked.png");
  http::Reply r = Post(Body(id, "uploads/unchecked.png", 5, "D8E8FCA2DC0F896FD7CB4CB0031BA249"));
  EXPECT_EQ(r.status, 200) << r.body;  // nothing checks the bucket
  EXPECT_EQ(Events(id), 1);
}

}  // namespace
}  // namespace uploadbroker::testing
