// The ledger's state rules, the same on every engine: what creating,
// completing and expiring an upload may do to the stored intent and which
// event it appends. Internal to ledger/; GroupCommitLedger runs them on its
// committer, inside an operation's savepoint, over an EngineWriter's
// primitives. Results and errors are those Ledger's methods document.
#ifndef UPLOADBROKER_LEDGER_TRANSITIONS_H_
#define UPLOADBROKER_LEDGER_TRANSITIONS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ledger/engine.h"

namespace uploadbroker::ledger {

// InvalidArgument unless `intent` is new (an id, PENDING or no state, no
// completion); sets its state to PENDING.
absl::Status CheckNewIntent(Upload& intent);
absl::StatusOr<CompleteResult> CompleteUploadIn(EngineWriter& writer,
                                                const std::string& upload_id,
                                                Completion completion,
                                                const CompletionCheck& check,
                                                absl::Time now);
absl::StatusOr<Event> ExpireUploadIn(EngineWriter& writer, const std::string& upload_id,
                                     v1::ExpiryReason reason, absl::Time now);

// Parses a stored record; DataLoss naming `what` if it does not parse.
template <typename Message>
absl::Status ParseStored(absl::string_view bytes, Message& message, absl::string_view what) {
  if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat("stored record of ", what, " is corrupt"));
  }
  return absl::OkStatus();
}

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_TRANSITIONS_H_
