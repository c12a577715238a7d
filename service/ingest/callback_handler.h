// CallbackHandler: answers OSS upload callbacks.
//
// For each POST: verify OSS's signature (Verifier) → parse the body →
// CompleteUpload of the intent named by the upload_id constant, which checks
// bucket, key, size and type against the stored intent inside the committing
// transaction (completion::CheckAgainstIntent as the CompletionCheck) and, if they match,
// marks it COMPLETED + appends one UploadCompleted event (one durable
// transaction) → only then 200 with Content-Length and a small
// JSON body, which OSS relays to the uploader. A repeated callback for the
// same object gets the same answer and appends nothing. Every rejection is a
// JSON error {"error": kind, "reason": text} with a 4xx/5xx status, a log
// line (escaped, at most 5 a second, the next one counting the ones left
// out: anyone can send callbacks) and a metric, and writes nothing.
//
// Thread-safe; Handle() never blocks on disk: it reads nothing from the
// ledger, and every answer after the body parsed (acceptance or a rejection
// against the intent) is sent from the ledger's commit callback. Referenced objects must outlive the handler.
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
#include "ledger/ledger.h"
#include "metrics/registry.h"

namespace uploadbroker::ingest {

class CallbackHandler {
 public:
  // `extra` holds constant fields added to every success answer.
  CallbackHandler(const callback::Verifier& verifier, ledger::Ledger& ledger,
                  metrics::Registry& metrics,
                  std::map<std::string, std::string> extra);

  void Handle(http::Request request, http::Responder respond);

 private:
  // Rejects with the status derived from `st`; `kind` names the failing stage.
  void Reject(absl::string_view peer, const http::Responder& respond,
              absl::string_view kind, const absl::Status& st);
  // The 200 answer OSS relays to the uploader, plus the extra fields.
  http::Response Success(const std::string& upload_id, const std::string& bucket,
                         const std::string& key, int64_t size, const std::string& etag) const;

  const callback::Verifier& verifier_;
  ledger::Ledger& ledger_;
  const std::map<std::string, std::string> extra_;
  metrics::Counter& results_;
  metrics::Histogram& verify_seconds_;
  metrics::Histogram& commit_seconds_;
  common::LogRateLimiter reject_log_{5};
};

// The object a callback describes, for the completion rules.
completion::ReportedObject ReportedBy(const callback::CallbackFields& f);

// HTTP status for a rejection.
int HttpStatusFor(const absl::Status& st);

}  // namespace uploadbroker::ingest

#endif  // UPLOADBROKER_INGEST_CALLBACK_HANDLER_H_
