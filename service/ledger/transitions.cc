#include "ledger/transitions.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace uploadbroker::ledger {

absl::Status CheckNewIntent(Upload& intent) {
  if (intent.upload_id().empty()) {
    return absl::InvalidArgumentError("intent has no upload_id");
  }
  if ((intent.state() != v1::UPLOAD_STATE_UNSPECIFIED &&
       intent.state() != v1::UPLOAD_STATE_PENDING) ||
      intent.has_completion()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "intent ", intent.upload_id(), " must be new (PENDING, no completion)"));
  }
  intent.set_state(v1::UPLOAD_STATE_PENDING);
  return absl::OkStatus();
}

absl::StatusOr<CompleteResult> CompleteUploadIn(EngineWriter& writer,
                                                const std::string& upload_id,
                                                Completion completion,
                                                const CompletionCheck& check,
                                                absl::Time now) {
  UB_ASSIGN_OR_RETURN(Upload upload, writer.LockIntent(upload_id));
  if (check != nullptr) UB_RETURN_IF_ERROR(check(upload));
  switch (upload.state()) {
    case v1::UPLOAD_STATE_PENDING:
      break;
    case v1::UPLOAD_STATE_COMPLETED: {
      absl::StatusOr<Event> earlier = writer.LoadCompletedEvent(upload_id);
      if (absl::IsNotFound(earlier.status())) {
        // Retention deleted the event; rebuild it from the intent. Its
        // cursor is unknown (0).
        Event rebuilt;
        rebuilt.set_type(v1::EVENT_TYPE_UPLOAD_COMPLETED);
        *rebuilt.mutable_committed_at() = upload.completion().completed_at();
        *rebuilt.mutable_upload_completed()->mutable_upload() = std::move(upload);
        earlier = std::move(rebuilt);
      }
      if (!earlier.ok()) return earlier.status();
      return CompleteResult{*std::move(earlier), /*appended=*/false};
    }
    case v1::UPLOAD_STATE_EXPIRED:
      return absl::FailedPreconditionError(
          absl::StrCat("upload ", upload_id, " has expired"));
    default:
      return absl::DataLossError(absl::StrCat(
          "stored upload ", upload_id, " has invalid state ", upload.state()));
  }
  SetTimestamp(now, completion.mutable_completed_at());
  upload.set_state(v1::UPLOAD_STATE_COMPLETED);
  *upload.mutable_completion() = std::move(completion);
  CompleteResult result;
  result.appended = true;
  result.event.set_type(v1::EVENT_TYPE_UPLOAD_COMPLETED);
  SetTimestamp(now, result.event.mutable_committed_at());
  *result.event.mutable_upload_completed()->mutable_upload() = upload;
  UB_RETURN_IF_ERROR(writer.Settle(upload, now, result.event));
  return result;
}

absl::StatusOr<Event> ExpireUploadIn(EngineWriter& writer, const std::string& upload_id,
                                     v1::ExpiryReason reason, absl::Time now) {
  UB_ASSIGN_OR_RETURN(Upload upload, writer.LockIntent(upload_id));
  if (upload.state() != v1::UPLOAD_STATE_PENDING) {
    return absl::FailedPreconditionError(absl::StrCat(
        "upload ", upload_id, " is ", v1::UploadState_Name(upload.state()),
        ", not PENDING"));
  }
  upload.set_state(v1::UPLOAD_STATE_EXPIRED);
  upload.set_expiry_reason(reason);
  Event event;
  event.set_type(v1::EVENT_TYPE_UPLOAD_EXPIRED);
  SetTimestamp(now, event.mutable_committed_at());
  *event.mutable_upload_expired()->mutable_upload() = upload;
  UB_RETURN_IF_ERROR(writer.Settle(upload, now, event));
  return event;
}

}  // namespace uploadbroker::ledger
