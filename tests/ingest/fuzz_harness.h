// CallbackHarness: what the libFuzzer targets for the callback path share.
//
// A real CallbackHandler over a real SqliteLedger (in a fresh directory
// under $UB_FUZZ_DIR, else on tmpfs so a commit costs no disk flush; it is
// not removed: the process ends by exit or crash) holding a
// few intents with fixed ids (created two hours ago), a FakeConfirmer (no
// network: it runs the handler's intent lookup, then an object in bucket
// "b" is confirmed, written now, unless its key starts with "gone", which
// the bucket does not hold; any other bucket is not served), no per-address
// failure budget (every input comes from one address), and a Verifier that trusts a harness RSA key
// besides OSS's. Inputs that ask for it are signed with that key, so
// libFuzzer reaches the accepting path (body parsing, the intent checks,
// the commit and the 200 answer) instead of stopping at the signature.
//
// The dictionary in tests/fuzz/callback.dict names the intents' ids,
// bucket, keys and content types; tests/fuzz/corpus/ holds seeds.
//
// Threads: Call() blocks its caller until the handler answered; one harness
// for the whole fuzzing process (Get()), never destroyed.
#ifndef UPLOADBROKER_TESTS_INGEST_FUZZ_HARNESS_H_
#define UPLOADBROKER_TESTS_INGEST_FUZZ_HARNESS_H_

#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "callback/verifier.h"
#include "common/check.h"
#include "common/clock.h"
#include "common/encoding.h"
#include "http/message.h"
#include "ingest/callback_handler.h"
#include "ledger/sqlite_ledger.h"
#include "metrics/registry.h"
#include "tests/callback/test_signer.h"
#include "tests/ingest/fake_confirmer.h"

namespace uploadbroker::fuzz {

// The callback URL path the broker is configured with; signatures cover it.
inline constexpr char kCallbackPath[] = "/cb";
// The x-oss-pub-key-url the harness key is trusted under.
inline constexpr char kHarnessKeyUrl[] = "http://127.0.0.1:9/harness_pub_key.pem";

class CallbackHarness {
 public:
  static CallbackHarness& Get() {
    static CallbackHarness* const harness = new CallbackHarness;  // never destroyed
    return *harness;
  }

  const callback::Verifier& verifier() const { return *verifier_; }
  ingest::CallbackHandler& handler() { return *handler_; }

  // OSS's headers for a callback signed with the harness key over the
  // configured path, `raw_query` and `body`.
  std::string Authorization(absl::string_view raw_query, absl::string_view body) const {
    return signer_.Authorization(callback::StringToSign(verifier_->decoded_path(), raw_query, body));
  }
  static std::string KeyUrlHeader() { return common::Base64Encode(kHarnessKeyUrl); }

  // Hands `request` to the handler and waits for its answer. A handler that
  // never answers within a generous minute is a finding (abort).
  http::Response Call(http::Request request) {
    auto answered = std::make_shared<absl::Notification>();
    auto response = std::make_shared<http::Response>();
    handler_->Handle(std::move(request), [answered, response](http::Response r) {
      *response = std::move(r);
      answered->Notify();
    });
    UB_CHECK(answered->WaitForNotificationWithTimeout(absl::Minutes(1)));
    return *response;
  }

 private:
  CallbackHarness() {
    // UB_FUZZ_DIR: a directory the runner removes afterwards
    // (tests/fuzz/run_fuzzer.sh); otherwise tmpfs if there is one.
    const char* base = std::getenv("UB_FUZZ_DIR");
    if (base == nullptr) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
    std::string tmpl = absl::StrCat(base ? base : "/tmp", "/ub-fuzz-XXXXXX");
    UB_CHECK(mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;

    std::vector<callback::TrustedKey> extra;
    extra.push_back({kHarnessKeyUrl, signer_.Public()});
    absl::StatusOr<callback::Verifier> verifier = callback::Verifier::Create(kCallbackPath, std::move(extra));
    UB_CHECK(verifier.ok());
    verifier_ = std::make_unique<callback::Verifier>(*std::move(verifier));

    ledger::SqliteLedger::Options options;
    options.path = dir_ + "/ledger.db";
    options.clock = &clock_;
    auto ledger = ledger::SqliteLedger::Create(options);
    UB_CHECK(ledger.ok());
    ledger_ = *std::move(ledger);
    // up_...1: an exact key with size and type limits; ...2: a prefix;
    // ...3: expired (its expiry passed, not yet settled); ...4: anything.
    AddIntent(1, "exact.txt", false, 1, 1000, {"text/plain", "image/png"}, absl::Hours(24));
    AddIntent(2, "dir/", true, 0, 1 << 20, {}, absl::Hours(24));
    AddIntent(3, "late.bin", false, 0, 1 << 20, {}, -absl::Hours(1));
    AddIntent(4, "any", false, 0, int64_t{1} << 40, {}, absl::Hours(24));
    // Every input comes from one address: a failure budget would soon turn
    // all of them into 429s and hide the paths behind it.
    ingest::CallbackHandler::Options handler_options;
    handler_options.peers.burst = 1e12;
    handler_ = std::make_unique<ingest::CallbackHandler>(
        *verifier_, *ledger_, metrics_, std::map<std::string, std::string>{{"app", "fuzz"}},
        &confirmer_, handler_options);
  }

  void AddIntent(int n, const std::string& key, bool prefix, int64_t min_size, int64_t max_size,
                 std::vector<std::string> types, absl::Duration ttl) {
    v1::Upload up;
    up.set_upload_id(absl::StrCat("up_", std::string(31, '0'), n));
    up.set_state(v1::UPLOAD_STATE_PENDING);
    up.set_caller("app");
    up.set_bucket("b");
    up.set_key(key);
    up.set_key_is_prefix(prefix);
    up.set_min_size(min_size);
    up.set_max_size(max_size);
    for (auto& t : types) up.add_content_types(t);
    const absl::Time now = absl::Now();
    up.mutable_created_at()->set_seconds(absl::ToUnixSeconds(now - absl::Hours(2)));
    up.mutable_expires_at()->set_seconds(absl::ToUnixSeconds(now + ttl));
    up.set_method(v1::UPLOAD_METHOD_POST);
    up.set_signature_version(v1::SIGNATURE_VERSION_V4);
    absl::Notification done;
    absl::Status status;
    ledger_->CreateIntent(up, [&](absl::Status s) {
      status = s;
      done.Notify();
    });
    UB_CHECK(done.WaitForNotificationWithTimeout(absl::Minutes(1)));
    UB_CHECK(status.ok());
  }

  std::string dir_;
  callback::TestSigner signer_;
  common::RealClock clock_;
  metrics::Registry metrics_;
  testing::FakeConfirmer confirmer_{[](const completion::ReportedObject& o) {
    if (o.bucket != "b") return absl::PermissionDeniedError("bucket: not served");
    if (absl::StartsWith(o.key, "gone")) return absl::NotFoundError("object: not in the bucket");
    return absl::OkStatus();
  }};
  std::unique_ptr<callback::Verifier> verifier_;
  std::unique_ptr<ledger::SqliteLedger> ledger_;
  std::unique_ptr<ingest::CallbackHandler> handler_;
};

}  // namespace uploadbroker::fuzz

#endif  // UPLOADBROKER_TESTS_INGEST_FUZZ_HARNESS_H_
