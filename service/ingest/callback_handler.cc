#include "ingest/callback_handler.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log_safe.h"
#include "nlohmann/json.hpp"
#include "policy/callback_param.h"
#include "spdlog/spdlog.h"

namespace uploadbroker::ingest {
namespace {

const std::vector<double> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                             0.025,  0.05,  0.1,    0.25,  0.5,  1};

std::string ErrorBody(absl::string_view kind, absl::string_view reason) {
  return nlohmann::json{{"error", kind}, {"reason", reason}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A confirmation's refusal: the metric's reason and the HTTP status. A 503
// tells OSS (and so the uploader: 203 CallbackFailed) that nothing was
// decided; the reconciler settles the intent later.
std::pair<const char*, int> ConfirmRefusal(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kPermissionDenied: return {"unknown_bucket", 403};
    case absl::StatusCode::kNotFound: return {"object_missing", 409};
    case absl::StatusCode::kFailedPrecondition: return {"object_mismatch", 409};
    case absl::StatusCode::kResourceExhausted: return {"confirm_busy", 503};
    default: return {"unconfirmed", 503};
  }
}

// Checks the Content-Type against the one type the broker issues.
absl::Status CheckBodyType(absl::string_view content_type) {
  absl::string_view media_type =
      absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';')));
  if (absl::EqualsIgnoreCase(media_type, policy::kCallbackBodyType)) return absl::OkStatus();
  if (media_type.empty()) return absl::InvalidArgumentError("Content-Type: missing");
  std::string shown(media_type.substr(0, 64));
  for (char& c : shown) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return absl::InvalidArgumentError(absl::StrCat("Content-Type: '", shown, "' is not the ",
                                                 policy::kCallbackBodyType,
                                                 " the broker's callback parameter asks for"));
}

}  // namespace

completion::ReportedObject ReportedBy(const callback::CallbackFields& f) {
  completion::ReportedObject o;
  o.bucket = f.bucket;
  o.key = f.object;
  o.size = f.size;
  o.etag = f.etag;
  o.content_type = f.mime_type;
  o.crc64 = f.crc64;
  o.content_md5 = f.content_md5;
  o.image_height = f.image_height;
  o.image_width = f.image_width;
  o.image_format = f.image_format;
  o.client_ip = f.client_ip;
  o.request_id = f.req_id;
  o.operation = f.operation;
  return o;
}

int HttpStatusFor(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

CallbackHandler::CallbackHandler(const callback::Verifier& verifier, ledger::Ledger& ledger,
                                 metrics::Registry& metrics,
                                 std::map<std::string, std::string> extra, Confirmer* confirmer)
    : verifier_(verifier),
      ledger_(ledger),
      extra_(std::move(extra)),
      confirmer_(confirmer),
      results_(metrics.AddCounter("upload_broker_callbacks_total",
                                  "OSS callbacks answered, by result and reason",
                                  {"result", "reason"})),
      verify_seconds_(metrics.AddHistogram("upload_broker_callback_verify_seconds",
                                           "Time to verify a callback signature", {},
                                           kLatencyBuckets)),
      commit_seconds_(metrics.AddHistogram("upload_broker_callback_commit_seconds",
                                           "Time from verified callback to durable commit", {},
                                           kLatencyBuckets)),
      confirm_seconds_(metrics.AddHistogram("upload_broker_callback_confirm_seconds",
                                            "Time to confirm a callback's object with HeadObject",
                                            {}, kLatencyBuckets)) {}

void CallbackHandler::Reject(absl::string_view peer, const http::Responder& respond,
                             absl::string_view kind, const absl::Status& st) {
  Reject(peer, respond, kind, st, HttpStatusFor(st));
}

void CallbackHandler::Reject(absl::string_view peer, const http::Responder& respond,
                             absl::string_view kind, const absl::Status& st, int http_status) {
  results_.Inc({"rejected", std::string(kind)});
  // The message quotes what the caller sent (keys, types, ids): escaped.
  uint64_t suppressed = 0;
  if (reject_log_.Admit(&suppressed)) {
    spdlog::warn("callback rejected from {}: {}: {}{}", common::LogSafe(peer), std::string(kind),
                 common::LogSafe(st.message(), common::kLogSafeMessageBytes),
                 suppressed > 0 ? absl::StrCat(" (", suppressed, " more rejections not logged)") : "");
  }
  http::Response r;
  r.status = http_status;
  r.body = ErrorBody(kind, st.message());
  respond(std::move(r));
}

http::Response CallbackHandler::Success(const std::string& upload_id, const std::string& bucket,
                                        const std::string& key, int64_t size,
                                        const std::string& etag) const {
  nlohmann::json j;
  for (const auto& [k, v] : extra_) j[k] = v;
  j["upload_id"] = upload_id;
  j["bucket"] = bucket;
  j["key"] = key;
  j["size"] = size;
  j["etag"] = etag;
  http::Response r;
  r.status = 200;
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

void CallbackHandler::Handle(http::Request req, http::Responder respond) {
  if (req.method != "POST") {
    Reject(req.peer, respond, "method", absl::InvalidArgumentError("callbacks must be POST"));
    return;
  }
  absl::Time start = absl::Now();
  absl::Status verified = verifier_.Verify(
      req.query_raw, req.body, absl::StripAsciiWhitespace(req.Header("authorization")),
      absl::StripAsciiWhitespace(req.Header("x-oss-pub-key-url")),
      absl::StripAsciiWhitespace(req.Header("x-oss-signature-version")));
  verify_seconds_.Observe({}, absl::ToDoubleSeconds(absl::Now() - start));
  if (!verified.ok()) {
    Reject(req.peer, respond, "signature", verified);
    return;
  }
  if (absl::Status type = CheckBodyType(req.Header("content-type")); !type.ok()) {
    Reject(req.peer, respond, "content_type", type, 415);
    return;
  }
  absl::StatusOr<callback::CallbackFields> fields = callback::ParseCallbackBody(req.Header("content-type"), req.body);
  if (!fields.ok()) {
    Reject(req.peer, respond, "body", fields.status());
    return;
  }
  if (confirmer_ == nullptr) {
    Complete(std::move(req.peer), *std::move(fields), std::move(respond));
    return;
  }
  // The HEAD runs on the confirmer's pool; its answer continues there.
  completion::ReportedObject reported = ReportedBy(*fields);
  auto call = std::make_shared<std::pair<std::string, callback::CallbackFields>>(
      std::move(req.peer), *std::move(fields));
  absl::Time confirm_start = absl::Now();
  confirmer_->Confirm(reported, [this, call, respond = std::move(respond),
                                 confirm_start](absl::Status confirmed) {
    confirm_seconds_.Observe({}, absl::ToDoubleSeconds(absl::Now() - confirm_start));
    if (!confirmed.ok()) {
      auto [kind, status] = ConfirmRefusal(confirmed);
      Reject(call->first, respond, kind, confirmed, status);
      return;
    }
    Complete(std::move(call->first), std::move(call->second), respond);
  });
}

void CallbackHandler::Complete(std::string peer, callback::CallbackFields fields,
                               http::Responder respond) {
  // The intent is checked by the committer, in the transaction that
  // completes it (no separate read): `mismatch` keeps the check's verdict,
  // written on the ledger's thread before `done` runs there.
  // The answer to a first completion is built here, off the committer's
  // critical path: the check guarantees the completed intent then carries
  // exactly these values, for a first completion and a repeat alike.
  struct Pending {
    std::string peer;
    callback::CallbackFields fields;
    absl::Status mismatch;
    bool repeat = false;  // the intent was already completed
    http::Response answer;
  };
  auto pending = std::make_shared<Pending>(Pending{std::move(peer), std::move(fields), absl::OkStatus(), false, {}});
  const callback::CallbackFields& f = pending->fields;
  pending->answer = Success(f.upload_id, f.bucket, f.object, f.size, f.etag);
  std::string upload_id = pending->fields.upload_id;
  v1::Completion completion =
      completion::ToCompletion(ReportedBy(pending->fields), v1::COMPLETION_SOURCE_CALLBACK);
  absl::Time commit_start = absl::Now();
  ledger_.CompleteUpload(
      std::move(upload_id), std::move(completion),
      [pending](const v1::Upload& intent) {
        pending->mismatch = completion::CheckAgainstIntent(ReportedBy(pending->fields), intent);
        pending->repeat = intent.state() == v1::UPLOAD_STATE_COMPLETED &&
                          intent.completion().key() == pending->fields.object &&
                          intent.completion().etag() == pending->fields.etag;
        return pending->mismatch;
      },
      [this, pending, respond = std::move(respond), commit_start](
          absl::StatusOr<ledger::CompleteResult> result) {
        if (!pending->mismatch.ok()) {  // nothing was written
          Reject(pending->peer, respond, pending->repeat ? "repeat_mismatch" : "intent_mismatch",
                 pending->mismatch);
          return;
        }
        if (!result.ok()) {
          Reject(pending->peer, respond,
                 result.status().code() == absl::StatusCode::kNotFound ? "unknown_upload" : "ledger",
                 result.status());
          return;
        }
        commit_seconds_.Observe({}, absl::ToDoubleSeconds(absl::Now() - commit_start));
        const v1::Upload& upload = result->event.upload_completed().upload();
        results_.Inc({"accepted", result->appended ? "recorded" : "duplicate"});
        if (!result->appended) {
          spdlog::info("duplicate callback for {} answered again", common::LogSafe(upload.upload_id()));
        }
        respond(std::move(pending->answer));
      });
}

}  // namespace uploadbroker::ingest
