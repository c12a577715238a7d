// CallbackHandler: answers OSS upload callbacks.
//
// For each POST: verify OSS's signature (Verifier) → require the body type
// the broker issues (application/json, policy/callback_param.h; 415
// otherwise) → parse the body → confirm the object is in our bucket as
// reported (Confirmer: a HeadObject on a small pool, so the HTTP threads
// never wait for OSS; 4xx when it is not, 503 when OSS cannot say) →
// CompleteUpload of the intent named by the upload_id constant, which checks
// bucket, key, size and type against the stored intent inside the committing
// transaction (completion::CheckAgainstIntent as the CompletionCheck) and, if they match,
// marks it COMPLETED + appends one UploadCompleted event (one durable
// transaction) → only then 200 with Content-Length and a small
// JSON body, which OSS relays to the uploader. A repeated callback is
// answered 200 again (appending nothing) only when bucket, key, size and
// ETag all equal the stored completion; otherwise 409, still appending
// nothing. Every rejection is a
// JSON error {"error": kind, "reason": text} with a 4xx/5xx status, a log
// line (escaped, at most 5 a second, the next one counting the ones left
// out: anyone can send callbacks) and a metric, and writes nothing.
//
// Thread-safe; Handle() never blocks on disk or OSS: it reads nothing from
// the ledger, the confirmation answers from the confirmer's pool, and every
// answer after that (acceptance or a rejection against the intent) is sent
// from the ledger's commit callback. Referenced objects must outlive the handler.
#ifndef UPLOADBROKER_INGEST_CALLBACK_HANDLER_H_
#define UPLOADBROKER_INGEST_CALLBACK_HANDLER_H_

#include <cstdint>
#include <map>
#include <string>

#include "callback/body.h"
#include "callback/verifier.h"
#include "common/log_safe.h"
#include "completion/completion.h"
#include "http/message.h"
#include "ingest/confirmer.h"
#include "ledger/ledger.h"
#include "metrics/registry.h"

namespace uploadbroker::ingest {

class CallbackHandler {
 public:
  // `extra` holds constant fields added to every success answer.
  // `confirmer` (not owned; nullptr = completions are not confirmed, which
  // the config allows only when written explicitly) must outlive the handler,
  // and its in-flight confirmations must end (Shutdown) before the handler
  // is destroyed.
  CallbackHandler(const callback::Verifier& verifier, ledger::Ledger& ledger,
                  metrics::Registry& metrics,
                  std::map<std::string, std::string> extra, Confirmer* confirmer);

  void Handle(http::Request request, http::Responder respond);

 private:
  // Rejects with the status derived from `st`; `kind` names the failing stage.
  void Reject(absl::string_view peer, const http::Responder& respond,
              absl::string_view kind, const absl::Status& st);
  void Reject(absl::string_view peer, const http::Responder& respond,
              absl::string_view kind, const absl::Status& st, int http_status);
  // The confirmed (or unconfirmed, when confirmation is off) object → ledger.
  void Complete(std::string peer, callback::CallbackFields fields, http::Responder respond);
  // The 200 answer OSS relays to the uploader, plus the extra fields.
  http::Response Success(const std::string& upload_id, const std::string& bucket,
                         const std::string& key, int64_t size, const std::string& etag) const;

  const callback::Verifier& verifier_;
  ledger::Ledger& ledger_;
  const std::map<std::string, std::string> extra_;
  Confirmer* const confirmer_;
  metrics::Counter& results_;
  metrics::Histogram& verify_seconds_;
  metrics::Histogram& commit_seconds_;
  metrics::Histogram& confirm_seconds_;
  common::LogRateLimiter reject_log_{5};
};

// The object a callback describes, for the completion rules.
completion::ReportedObject ReportedBy(const callback::CallbackFields& f);

// HTTP status for a rejection.
int HttpStatusFor(const absl::Status& st);

}  // namespace uploadbroker::ingest

#endif  // UPLOADBROKER_INGEST_CALLBACK_HANDLER_H_
