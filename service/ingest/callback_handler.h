// CallbackHandler: answers OSS upload callbacks.
//
// An OSS callback signature proves only that OSS sent these bytes to some
// callback URL, for some account (docs/security.md): anyone with an OSS
// account can have a body of their choosing signed and replay it here. So
// each POST goes:
//   1. sender's failure budget (PeerLimiter): a source address whose
//      failing callbacks used it up gets 429 with Retry-After, unchecked;
//   2. verify OSS's signature (Verifier; 401);
//   3. the replay cache: a signature answered within the last 10 minutes
//      (a 200 or a 409) gets that answer again, with no read and no HEAD
//      (counted with reason "replay");
//   4. body type (application/json, policy/callback_param.h; 415) and
//      body (400);
//   5. one flight per upload id: a copy of a report already being decided
//      (same upload id, bucket, key, size, ETag and type) waits for that
//      decision and gets the same answer (counted with reason "joined"); a different report for an upload
//      being decided gets 503 (nothing decided: the reconciler settles it);
//   6. with confirmation on, on the confirmer's pool (Confirmer, never an
//      HTTP thread): read the uploads naming the reported key
//      (Ledger::ListUploads, bounded: more than max_uploads_per_key is a
//      503), which for an exact-key intent holds the intent itself, else
//      look the intent up (Ledger::GetUpload). Refused WITHOUT a HeadObject
//      when the id is unknown, the intent expired or was settled by another
//      object, or the report cannot match it
//      (completion::CheckAgainstIntent). A repeat of a COMPLETED upload's
//      exact report is answered 200 from the ledger, no HEAD.
//      Only a report that could complete a PENDING intent costs a HEAD;
//      then the object must be in the bucket as reported and written under
//      this authorization (completion::CheckWrittenUnder: not before the
//      intent, not another upload's);
//   7. CompleteUpload, which checks the intent again inside the committing
//      transaction (CheckAgainstIntent as the CompletionCheck: the
//      authority) → 200 with Content-Length and a small JSON body, which OSS
//      relays to the uploader; a repeat appends nothing.
// So at most one HEAD per upload is in flight, and the HEADs an outsider
// can cause are bounded by the PENDING intents they can name.
//
// Every refusal about the upload or the object (unknown id, mismatch,
// settled, object missing or different, older than the authorization) is
// the same answer: 409 kRejectedBody. It never carries what the bucket
// holds; the detail is logged (escaped, at most 5 lines a second, the next
// one counting the ones left out) and counted in
// upload_broker_callbacks_total{result="rejected",reason}. Failures of
// steps 2-7 take a token from the sender's budget. Nothing is written for
// a refusal.
//
// Thread-safe; Handle() never blocks on disk or OSS: ledger reads and HEADs
// run on the confirmer's pool, and answers after them are sent from there
// or from the ledger's commit callback. With confirmation off (confirmer
// null) there is no lookup and no HEAD: step 7 follows step 5 directly.
// Referenced objects must outlive the handler.
#ifndef UPLOADBROKER_INGEST_CALLBACK_HANDLER_H_
#define UPLOADBROKER_INGEST_CALLBACK_HANDLER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "callback/body.h"
#include "callback/verifier.h"
#include "common/log_safe.h"
#include "completion/completion.h"
#include "http/message.h"
#include "ingest/confirmer.h"
#include "ingest/peer_limiter.h"
#include "ingest/replay_cache.h"
#include "ledger/ledger.h"
#include "metrics/registry.h"

namespace uploadbroker::ingest {

// The one answer to a callback that does not match an upload (status 409).
inline constexpr char kRejectedBody[] =
    R"({"error":"rejected","reason":"the callback does not match an upload this broker issued"})";

class CallbackHandler {
 public:
  struct Options {
    ReplayCache::Options replay;
    PeerLimiter::Options peers;
    // Uploads naming one key read before a HEAD; more: 503 (the
    // reconciler settles the intent).
    int max_uploads_per_key = 1000;
    const common::Clock* clock = nullptr;  // null: the real clock
  };

  // `extra` holds constant fields added to every success answer.
  // `confirmer` (not owned; nullptr = completions are not confirmed, which
  // the config allows only when written explicitly) must outlive the handler,
  // and its in-flight confirmations must end (Shutdown) before the handler
  // is destroyed.
  CallbackHandler(const callback::Verifier& verifier, ledger::Ledger& ledger,
                  metrics::Registry& metrics, std::map<std::string, std::string> extra,
                  Confirmer* confirmer, Options options);
  CallbackHandler(const callback::Verifier& verifier, ledger::Ledger& ledger,
                  metrics::Registry& metrics, std::map<std::string, std::string> extra,
                  Confirmer* confirmer)
      : CallbackHandler(verifier, ledger, metrics, std::move(extra), confirmer, Options()) {}

  void Handle(http::Request request, http::Responder respond);

 private:
  struct Waiter {
    std::string peer;
    std::string signature;
    http::Responder respond;
  };
  // One report being decided, shared by its copies (callback_confirm.cc).
  struct Flight {
    std::string report;  // ReportKey of the fields
    callback::CallbackFields fields;
    std::vector<Waiter> waiters;  // guarded by CallbackHandler::mu_
    completion::ReportedObject reported;  // of `fields`; set before the lookup
    // Written by the lookup on the pool thread, read by `done` after it.
    v1::Upload intent;
    std::vector<v1::Upload> others;  // uploads naming the key
    const char* refusal = nullptr;   // metric reason when the lookup refused
    absl::Status detail;             // what to log for it
    bool repeat = false;             // COMPLETED by this very report
  };
  // How one flight ends.
  struct Outcome {
    http::Response answer;
    std::string result;  // metric labels
    std::string reason;
    absl::Status detail;  // logged when not OK
    bool decided = false;  // keep in the replay cache
    bool failure = false;  // charge each sender's budget
  };

  // A refusal answered at once, before any flight.
  void Reject(const std::string& peer, const http::Responder& respond, absl::string_view kind,
              const absl::Status& st, int http_status);
  // Confirmation on: lookup, then HEAD (callback_confirm.cc).
  void Confirm(std::shared_ptr<Flight> flight);
  absl::Status Lookup(Flight& flight);
  void AfterHead(const std::shared_ptr<Flight>& flight, const absl::Status& confirmed,
                 const ossapi::ObjectFacts& facts);
  // The report → ledger (callback_confirm.cc).
  void Complete(std::shared_ptr<Flight> flight);
  // Ends the flight: answers every waiter, caches, charges, counts, logs.
  void Finish(const std::shared_ptr<Flight>& flight, Outcome outcome) ABSL_LOCKS_EXCLUDED(mu_);
  Outcome Refused(const char* reason, absl::Status detail) const;
  Outcome Accepted(const Flight& flight, const char* reason) const;
  // The 200 answer OSS relays to the uploader, plus the extra fields.
  http::Response Success(const callback::CallbackFields& f) const;

  const callback::Verifier& verifier_;
  ledger::Ledger& ledger_;
  const std::map<std::string, std::string> extra_;
  Confirmer* const confirmer_;
  const Options options_;
  common::RealClock real_clock_;
  const common::Clock& clock_;
  metrics::Counter& results_;
  metrics::Histogram& verify_seconds_;
  metrics::Histogram& commit_seconds_;
  metrics::Histogram& confirm_seconds_;
  common::LogRateLimiter reject_log_{5};
  PeerLimiter peers_;

  absl::Mutex mu_;
  ReplayCache replays_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
};

// The object a callback describes, for the completion rules.
completion::ReportedObject ReportedBy(const callback::CallbackFields& f);

// HTTP status for a rejection.
int HttpStatusFor(const absl::Status& st);

}  // namespace uploadbroker::ingest

#endif  // UPLOADBROKER_INGEST_CALLBACK_HANDLER_H_
