// CallbackHandler's decision for one report (see callback_handler.h, steps
// 6 and 7): the intent looked up first, a HeadObject only for a report that
// could complete a PENDING intent, then the ledger.
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "completion/authorization.h"
#include "ingest/callback_handler.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace uploadbroker::ingest {
namespace {

// The answer when nothing was decided: the same for every cause, so it
// says nothing about the bucket either. OSS shows the uploader 203
// CallbackFailed; the reconciler settles the intent later.
http::Response Undecided() {
  http::Response r;
  r.status = 503;
  r.body = R"({"error":"unconfirmed","reason":"the upload could not be confirmed now; it will be settled later"})";
  return r;
}

}  // namespace

void CallbackHandler::Confirm(std::shared_ptr<Flight> flight) {
  flight->reported = ReportedBy(flight->fields);
  const absl::Time start = absl::Now();
  confirmer_->Confirm(
      flight->reported, [this, flight] { return Lookup(*flight); },
      [this, flight, start](absl::Status confirmed, const ossapi::ObjectFacts& facts) {
        confirm_seconds_.Observe({}, absl::ToDoubleSeconds(absl::Now() - start));
        AfterHead(flight, confirmed, facts);
      });
}

absl::Status CallbackHandler::Lookup(Flight& f) {
  // A status that is not OK stops the confirmer before its HEAD; AfterHead
  // reads the verdict from `f`.
  auto decided = [] { return absl::CancelledError("decided without a HEAD"); };
  // The uploads naming the reported key (for completion::CheckWrittenUnder).
  // For an exact-key intent, the common case, they include the intent
  // itself, so one read serves both; otherwise GetUpload finds it.
  ledger::UploadQuery q;
  q.buckets = {f.fields.bucket};
  q.key_prefix = f.fields.object;
  q.limit = 100;
  bool found = false;
  for (;;) {
    absl::StatusOr<ledger::UploadPage> page = ledger_.ListUploads(q);
    if (!page.ok()) return page.status();
    for (v1::Upload& u : page->uploads) {
      if (u.upload_id() == f.fields.upload_id) {
        f.intent = std::move(u);
        found = true;
      } else {
        f.others.push_back(std::move(u));
      }
    }
    if (page->next_before_seq == 0) break;
    if (static_cast<int>(f.others.size()) >= options_.max_uploads_per_key) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "more than ", options_.max_uploads_per_key, " uploads name this key"));
    }
    q.before_seq = page->next_before_seq;
  }
  if (!found) {
    absl::StatusOr<v1::Upload> intent = ledger_.GetUpload(f.fields.upload_id);
    if (absl::IsNotFound(intent.status())) {
      f.refusal = "unknown_upload";
      f.detail = absl::NotFoundError(absl::StrCat("upload_id: '", f.fields.upload_id, "' was never issued"));
      return decided();
    }
    if (!intent.ok()) return intent.status();  // the ledger could not say: 503
    f.intent = *std::move(intent);
  }
  if (absl::Status fits = completion::CheckAgainstIntent(f.reported, f.intent); !fits.ok()) {
    switch (f.intent.state()) {
      case v1::UPLOAD_STATE_COMPLETED: f.refusal = "settled_elsewhere"; break;
      case v1::UPLOAD_STATE_EXPIRED: f.refusal = "expired"; break;
      default: f.refusal = "intent_mismatch"; break;
    }
    f.detail = fits;
    return decided();
  }
  if (f.intent.state() == v1::UPLOAD_STATE_COMPLETED) {
    f.repeat = true;  // this very report completed it: answered from the ledger
    return decided();
  }
  return absl::OkStatus();
}

void CallbackHandler::AfterHead(const std::shared_ptr<Flight>& flight,
                                const absl::Status& confirmed, const ossapi::ObjectFacts& facts) {
  Flight& f = *flight;
  if (f.repeat) {
    spdlog::info("duplicate callback for {} answered from the ledger", common::LogSafe(f.fields.upload_id));
    Finish(flight, Accepted(f, "duplicate"));
    return;
  }
  if (f.refusal != nullptr) {
    Finish(flight, Refused(f.refusal, f.detail));
    return;
  }
  // What the bucket holds goes to the log and the metric, never the answer.
  switch (confirmed.code()) {
    case absl::StatusCode::kOk: break;
    case absl::StatusCode::kNotFound: Finish(flight, Refused("object_missing", confirmed)); return;
    case absl::StatusCode::kFailedPrecondition:
      Finish(flight, Refused("object_mismatch", confirmed));
      return;
    case absl::StatusCode::kPermissionDenied:
      Finish(flight, Refused("unknown_bucket", confirmed));
      return;
    default: {
      Outcome o;
      o.answer = Undecided();
      o.result = "rejected";
      o.reason = confirmed.code() == absl::StatusCode::kResourceExhausted ? "confirm_busy" : "unconfirmed";
      o.detail = confirmed;
      Finish(flight, std::move(o));
      return;
    }
  }
  if (absl::Status mine = completion::CheckWrittenUnder(f.intent, f.fields.object, facts.etag,
                                                        facts.last_modified, f.others);
      !mine.ok()) {
    Finish(flight, Refused("not_this_authorization", mine));
    return;
  }
  Complete(flight);
}

void CallbackHandler::Complete(std::shared_ptr<Flight> flight) {
  // The intent is checked again by the committer, in the transaction that
  // completes it: `mismatch` keeps the check's verdict, written on the
  // ledger's thread before `done` runs there.
  struct Check {
    absl::Status mismatch;
    v1::UploadState state = v1::UPLOAD_STATE_UNSPECIFIED;
  };
  auto check = std::make_shared<Check>();
  std::string upload_id = flight->fields.upload_id;
  v1::Completion completion =
      completion::ToCompletion(ReportedBy(flight->fields), v1::COMPLETION_SOURCE_CALLBACK);
  const absl::Time commit_start = absl::Now();
  ledger_.CompleteUpload(
      std::move(upload_id), std::move(completion),
      [flight, check](const v1::Upload& intent) {
        check->mismatch = completion::CheckAgainstIntent(ReportedBy(flight->fields), intent);
        check->state = intent.state();
        return check->mismatch;
      },
      [this, flight, check, commit_start](absl::StatusOr<ledger::CompleteResult> result) {
        if (!check->mismatch.ok()) {  // nothing was written
          Finish(flight, Refused(check->state == v1::UPLOAD_STATE_PENDING ? "intent_mismatch"
                                                                          : "settled_elsewhere",
                                 check->mismatch));
          return;
        }
        if (absl::IsNotFound(result.status())) {
          Finish(flight, Refused("unknown_upload", result.status()));
          return;
        }
        if (!result.ok()) {
          Outcome o;
          o.answer.status = HttpStatusFor(result.status());
          o.answer.body = nlohmann::json{{"error", "ledger"}, {"reason", result.status().message()}}.dump(
              -1, ' ', false, nlohmann::json::error_handler_t::replace);
          o.result = "rejected";
          o.reason = "ledger";
          o.detail = result.status();
          Finish(flight, std::move(o));
          return;
        }
        commit_seconds_.Observe({}, absl::ToDoubleSeconds(absl::Now() - commit_start));
        Finish(flight, Accepted(*flight, result->appended ? "recorded" : "duplicate"));
      });
}

}  // namespace uploadbroker::ingest
