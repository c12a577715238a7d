// What anyone with an OSS account can do to the callback endpoint, end to
// end (a real broker, oss-sim as our bucket behind a relay that counts the
// HeadObjects the broker sends): OSS signs path + query + body with one key
// for every customer, so a forger gets validly signed callbacks of its
// choosing and replays them as often as it likes (docs/security.md).
//   * the answer never says what the bucket holds, and an unknown id, a
//     report that cannot fit its intent and an object that is missing or
//     different all get the same answer;
//   * a HeadObject only for a report that could complete a PENDING intent,
//     one per upload at a time, none for a repeat;
//   * an object written before the authorization, or another upload's,
//     does not complete it;
//   * keys with dot segments are HEADed at the key itself.
#include <atomic>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "client/upload.h"
#include "ingest/callback_handler.h"
#include "tests/ingest/confirm_fixture.h"

namespace uploadbroker::testing {
namespace {

using ::testing::Not;

class CallbackAbuseTest : public ConfirmE2eTest {
 protected:
  // Sends `body` `copies` times from `threads` threads at once; the
  // statuses seen.
  std::multiset<int> Flood(const std::string& body, int copies, int threads) {
    std::mutex mu;
    std::multiset<int> statuses;
    std::atomic<int> next{0};
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) {
      pool.emplace_back([&] {
        while (next.fetch_add(1) < copies) {
          int status = Post(body).status;
          std::lock_guard<std::mutex> lock(mu);
          statuses.insert(status);
        }
      });
    }
    for (auto& th : pool) th.join();
    return statuses;
  }
  // An upload through oss-sim as a client makes it (POST with a callback).
  std::string Upload(const std::string& key, const std::string& data, bool prefix = false) {
    client::UploadArgs args;
    args.target = target_;
    args.api_key = kApiKey;
    args.bucket = "devbucket";
    (prefix ? args.key_prefix : args.key) = key;
    args.content_type = "image/png";
    args.file = dir_.WriteFile("file", data);
    std::ostringstream out, err;
    if (client::Upload(args, out, err) != 0) return "";
    auto j = nlohmann::json::parse(out.str(), nullptr, false);
    return j.is_object() ? j.value("upload_id", "") : "";
  }
};

TEST_F(CallbackAbuseTest, UnknownIdsAndMismatchesGetOneAnswerThatSaysNothingOfTheBucket) {
  StartBroker();
  std::string id = Issue("uploads/held.png");
  osssim::ObjectInfo o = Store("uploads/held.png", "12345");
  Store("uploads/secret.png", "0123456789");  // outside every intent
  const std::string etag = Bare(o.etag);
  const std::vector<std::string> probes = {
      // never issued, naming an object the bucket holds / does not hold
      Body("up_neverissued", "uploads/held.png", 5, etag),
      Body("up_neverissued", "uploads/secret.png", 10, "00"),
      Body("up_neverissued", "uploads/none.png", 1, "00"),
      // a pending intent, another key (held or not), a bucket we do not serve
      Body(id, "uploads/secret.png", 10, "00"),
      Body(id, "uploads/none.png", 10, "00"),
      Body(id, "uploads/held.png", 5, etag, "image/png", "their-bucket"),
      // the intent's key: the object differs in size, ETag; or is missing
      Body(id, "uploads/held.png", 4, etag),
      Body(id, "uploads/held.png", 5, "00000000000000000000000000000000"),
  };
  std::set<std::pair<int, std::string>> answers;
  for (const std::string& body : probes) {
    http::Reply r = Post(body);
    answers.insert({r.status, r.body});
    EXPECT_THAT(r.body, Not(::testing::HasSubstr(etag)));
    EXPECT_THAT(r.body, Not(::testing::HasSubstr("10")));
  }
  ASSERT_EQ(answers.size(), 1u) << "the answers differ, so they tell the cases apart";
  EXPECT_EQ(answers.begin()->first, 409);
  EXPECT_EQ(answers.begin()->second, ingest::kRejectedBody);
  // Only the two reports that could complete the pending intent cost a HEAD.
  EXPECT_EQ(oss_.heads(), 2);
  EXPECT_EQ(Events(id), 0);
  std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("reason=\"unknown_upload\"} 3"));
  EXPECT_THAT(metrics, HasSubstr("reason=\"intent_mismatch\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("reason=\"unknown_bucket\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("reason=\"object_mismatch\"} 2"));
}

TEST_F(CallbackAbuseTest, AFloodOfNeverIssuedIdsMakesNoHeadAndIsRateLimited) {
  StartBroker();
  Store("uploads/held.png", "12345");
  std::multiset<int> statuses;
  const absl::Time start = absl::Now();
  for (int i = 0; i < 300; ++i) {
    statuses.insert(Post(Body(absl::StrCat("up_forged", i), "uploads/held.png", 5, "00")).status);
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  EXPECT_EQ(oss_.heads(), 0);
  EXPECT_EQ(statuses.count(409) + statuses.count(429), statuses.size());
  // The default budget: 50 failures at once, then 5 a second.
  EXPECT_GT(statuses.count(429), 0u) << "failures from one address are not limited";
  EXPECT_LE(statuses.count(409), 51 + 5 * seconds);
  // The refusal says when to come back.
  http::Reply r = Post(Body("up_forged_again", "uploads/held.png", 5, "00"));
  EXPECT_EQ(r.status, 429);
  EXPECT_TRUE(r.Header("Retry-After").has_value());
  EXPECT_THAT(Metrics(), HasSubstr("reason=\"rate_limited\"}"));
}

TEST_F(CallbackAbuseTest, AReplayFloodOfOneValidCallbackMakesOneHead) {
  StartBroker();
  std::string id = Issue("uploads/once.png");
  osssim::ObjectInfo o = Store("uploads/once.png", "12345");
  const std::string body = Body(id, "uploads/once.png", 5, Bare(o.etag));
  // 1,000 copies at once before any was answered: one confirmation, shared.
  std::multiset<int> concurrent = Flood(body, 1000, 32);
  EXPECT_EQ(concurrent.count(200), 1000u);
  EXPECT_EQ(oss_.heads(), 1);
  // 1,000 more, one after the other, once it completed: none.
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(Post(body).status, 200);
  EXPECT_EQ(oss_.heads(), 1);
  EXPECT_EQ(Events(id), 1);
  EXPECT_THAT(Metrics(), HasSubstr("upload_broker_callbacks_total{result=\"accepted\",reason=\"recorded\"} 1\n"));
}

TEST_F(CallbackAbuseTest, AReplayFloodOfAForgedCallbackMakesOneHead) {
  StartBroker();
  std::string id = Issue("uploads/forged.png");  // pending; nothing uploaded
  const std::string body = Body(id, "uploads/forged.png", 5, "D8E8FCA2DC0F896FD7CB4CB0031BA249");
  std::multiset<int> concurrent = Flood(body, 1000, 32);
  std::multiset<int> sequential;
  for (int i = 0; i < 1000; ++i) sequential.insert(Post(body).status);
  EXPECT_EQ(oss_.heads(), 1);
  EXPECT_EQ(concurrent.count(409) + concurrent.count(429), 1000u);
  // The sender's failures used its budget: what it regains meanwhile (5 a
  // second) is all that is still looked at.
  EXPECT_GE(sequential.count(429), 900u);
  EXPECT_EQ(Events(id), 0);
  EXPECT_EQ(client_->GetUpload(id)->state(), v1::UPLOAD_STATE_PENDING);
}

TEST_F(CallbackAbuseTest, ARepeatOfACompletedUploadIsAnsweredFromTheLedger) {
  StartBroker();
  std::string id = Upload("uploads/real.png", "hello");  // oss-sim calls the broker back
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(client_->GetUpload(id)->state(), v1::UPLOAD_STATE_COMPLETED);
  const int after_upload = oss_.heads();
  EXPECT_EQ(after_upload, 1);
  // The same report in another body (fields in another order, so another
  // signature: not in the replay cache).
  const v1::Completion done = client_->GetUpload(id)->completion();
  nlohmann::json j = {{"operation", done.operation()}, {"reqId", "R"}, {"crc64", "1"},
                      {"mimeType", done.content_type()}, {"size", done.size()},
                      {"etag", done.etag()}, {"object", done.key()}, {"bucket", "devbucket"},
                      {"upload_id", id}};
  http::Reply r = Post(j.dump(2));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(oss_.heads(), after_upload);
  EXPECT_EQ(Events(id), 1);
}

TEST_F(CallbackAbuseTest, AnObjectOlderThanTheAuthorizationCompletesNothing) {
  StartBroker();
  // A real upload to the key; a second authorization for it (its own upload
  // would be refused by forbid-overwrite); a forged callback for the second
  // naming the first one's object.
  std::string first = Upload("uploads/alpha.png", "first");
  ASSERT_FALSE(first.empty());
  const v1::Completion done = client_->GetUpload(first)->completion();
  std::string second = Issue("uploads/alpha.png");
  EXPECT_EQ(Upload("uploads/alpha.png", "second"), "") << "forbid-overwrite let a second object in";
  http::Reply r = Post(Body(second, "uploads/alpha.png", done.size(), done.etag()));
  ExpectRefused(r, 409, "rejected", "does not match", second);

  // An object written an hour before the authorization, exact key or prefix.
  osssim::ObjectInfo old = StoreOld("uploads/old.png", "12345", absl::Hours(1));
  std::string exact = Issue("uploads/old.png");
  ExpectRefused(Post(Body(exact, "uploads/old.png", 5, Bare(old.etag))), 409, "rejected",
                "does not match", exact);
  osssim::ObjectInfo under = StoreOld("uploads/p/old.png", "12345", absl::Hours(1));
  std::string prefix = Issue("uploads/p/", /*prefix=*/true);
  ExpectRefused(Post(Body(prefix, "uploads/p/old.png", 5, Bare(under.etag))), 409, "rejected",
                "does not match", prefix);
  std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("reason=\"not_this_authorization\"} 3"));

  // A real upload under a new authorization still completes.
  std::string fresh = Upload("uploads/fresh.png", "fresh");
  ASSERT_FALSE(fresh.empty());
  EXPECT_EQ(client_->GetUpload(fresh)->state(), v1::UPLOAD_STATE_COMPLETED);
  std::string fresh_prefix = Upload("uploads/q/", "fresh", /*prefix=*/true);
  ASSERT_FALSE(fresh_prefix.empty());
  EXPECT_EQ(client_->GetUpload(fresh_prefix)->state(), v1::UPLOAD_STATE_COMPLETED);
}

TEST_F(CallbackAbuseTest, KeysWithDotSegmentsAreHeadedAtTheKeyItself) {
  StartBroker();
  // A prefix authorization lets the uploader choose "uploads/d/x/../y.png",
  // a legal OSS key. Collapsed, it would be "uploads/d/y.png", which holds
  // another object: the HEAD must go to the key itself.
  Store("uploads/d/y.png", "another object");
  for (const std::string key : {"uploads/d/x/../y.png", "uploads/d/./z.png"}) {
    SCOPED_TRACE(key);
    std::string id = Issue("uploads/d/", /*prefix=*/true);
    osssim::ObjectInfo o = Store(key, "12345");
    http::Reply r = Post(Body(id, key, 5, Bare(o.etag)));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(client_->GetUpload(id)->completion().key(), key);
  }
}

}  // namespace
}  // namespace uploadbroker::testing
