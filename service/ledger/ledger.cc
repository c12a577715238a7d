#include "ledger/ledger.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "google/protobuf/io/coded_stream.h"

namespace uploadbroker::ledger {
namespace {

// Calls `start` with a callback that stores its argument, then waits for it.
template <typename Result, typename Start>
Result Wait(Start start) {
  absl::Notification finished;
  Result result;
  start([&](Result r) {
    result = std::move(r);
    finished.Notify();
  });
  finished.WaitForNotification();
  return result;
}

}  // namespace

size_t UploadBytes(const Upload& upload) {
  const size_t size = upload.ByteSizeLong();
  // A one-byte tag (field numbers up to 15) and the length varint.
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(size) + size;
}

absl::StatusOr<std::vector<Event>> Ledger::ReadEvents(uint64_t after, int limit) {
  absl::StatusOr<EventRecords> records =
      ReadEventRecords(after, limit, std::numeric_limits<size_t>::max());
  if (!records.ok()) return records.status();
  std::vector<Event> events(records->entries.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const EventRecords::Entry& e = records->entries[i];
    if (!events[i].ParseFromArray(records->data.data() + e.offset, static_cast<int>(e.size))) {
      return absl::DataLossError(absl::StrCat("stored event at cursor ", e.cursor, " is corrupt"));
    }
  }
  return events;
}

absl::Status CreateIntentSync(Ledger& ledger, Upload intent) {
  return Wait<absl::Status>([&](auto done) {
    ledger.CreateIntent(std::move(intent), std::move(done));
  });
}

absl::StatusOr<CompleteResult> CompleteUploadSync(Ledger& ledger,
                                                  std::string upload_id,
                                                  Completion completion,
                                                  CompletionCheck check) {
  return Wait<absl::StatusOr<CompleteResult>>([&](auto done) {
    ledger.CompleteUpload(std::move(upload_id), std::move(completion), std::move(check),
                          std::move(done));
  });
}

absl::StatusOr<Event> ExpireUploadSync(Ledger& ledger, std::string upload_id,
                                       v1::ExpiryReason reason) {
  return Wait<absl::StatusOr<Event>>([&](auto done) {
    ledger.ExpireUpload(std::move(upload_id), reason, std::move(done));
  });
}

int64_t ToUnixNanos(const google::protobuf::Timestamp& ts) {
  // absl saturates out-of-range values instead of overflowing.
  return absl::ToUnixNanos(absl::FromUnixSeconds(ts.seconds()) +
                           absl::Nanoseconds(ts.nanos()));
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  int64_t seconds = absl::ToUnixSeconds(t);
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

}  // namespace uploadbroker::ledger

// Subscriptions: an engine that does not implement them says so.
namespace uploadbroker::ledger {
namespace {
absl::Status NoSubscriptions() {
  return absl::UnimplementedError("this ledger engine does not hold subscriptions");
}
}  // namespace

void Ledger::CreateSubscription(SubscriptionSpec,
                                std::function<void(absl::StatusOr<SubscriptionState>)> done) {
  done(NoSubscriptions());
}
void Ledger::DeleteSubscription(SubscriptionKey, std::function<void(absl::Status)> done) {
  done(NoSubscriptions());
}
absl::StatusOr<SubscriptionState> Ledger::GetSubscription(const SubscriptionKey&) {
  return NoSubscriptions();
}
absl::StatusOr<std::vector<SubscriptionState>> Ledger::ListSubscriptions(const std::string&) {
  return NoSubscriptions();
}
void Ledger::LeaseEvents(SubscriptionKey, std::string, std::vector<uint64_t>, uint64_t, int,
                         std::function<void(absl::StatusOr<std::vector<Lease>>)> done) {
  done(NoSubscriptions());
}
void Ledger::AckEvents(SubscriptionKey, std::vector<uint64_t>,
                       std::function<void(absl::StatusOr<AckResult>)> done) {
  done(NoSubscriptions());
}
void Ledger::NackEvents(SubscriptionKey, std::vector<uint64_t>, std::string, absl::Duration,
                        std::function<void(absl::StatusOr<AckResult>)> done) {
  done(NoSubscriptions());
}
void Ledger::ExtendLeases(SubscriptionKey, std::string, std::vector<uint64_t>, absl::Duration,
                          std::function<void(absl::StatusOr<std::vector<uint64_t>>)> done) {
  done(NoSubscriptions());
}
absl::StatusOr<std::vector<DeadLetter>> Ledger::ListDeadLetters(const SubscriptionKey&,
                                                                uint64_t, int) {
  return NoSubscriptions();
}
void Ledger::RedriveDeadLetters(SubscriptionKey, std::vector<uint64_t>,
                                std::function<void(absl::StatusOr<int64_t>)> done) {
  done(NoSubscriptions());
}
void Ledger::ClaimTarget(std::string, std::string, absl::Duration,
                         std::function<void(absl::StatusOr<bool>)> done) {
  done(NoSubscriptions());
}
void Ledger::ReleaseTarget(std::string, std::string, std::function<void(absl::Status)> done) {
  done(NoSubscriptions());
}

}  // namespace uploadbroker::ledger
