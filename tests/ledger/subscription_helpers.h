// Shared by the subscription tests: blocking wrappers over the ledger's
// subscription writes, a spec builder, and a quick way to fill the log.
#ifndef UPLOADBROKER_TESTS_LEDGER_SUBSCRIPTION_HELPERS_H_
#define UPLOADBROKER_TESTS_LEDGER_SUBSCRIPTION_HELPERS_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "ledger/ledger.h"
#include "tests/ledger/ledger_fixture.h"

namespace uploadbroker::ledger {

template <typename T, typename Start>
T Await(Start&& start) {
  absl::Notification finished;
  std::optional<T> out;
  start([&](T value) {
    out.emplace(std::move(value));
    finished.Notify();
  });
  finished.WaitForNotification();
  return std::move(*out);
}

inline SubscriptionSpec Spec(const std::string& name = "orders", const std::string& caller = "app") {
  SubscriptionSpec spec;
  spec.key = {caller, name};
  spec.filter.add_buckets("photos");
  return spec;
}

inline absl::StatusOr<SubscriptionState> CreateSync(Ledger& l, SubscriptionSpec spec) {
  return Await<absl::StatusOr<SubscriptionState>>(
      [&](auto done) { l.CreateSubscription(std::move(spec), std::move(done)); });
}
inline absl::Status DeleteSync(Ledger& l, SubscriptionKey key) {
  return Await<absl::Status>([&](auto done) { l.DeleteSubscription(std::move(key), std::move(done)); });
}
inline absl::StatusOr<std::vector<Lease>> LeaseSync(Ledger& l, const SubscriptionKey& key,
                                                    const std::string& holder,
                                                    std::vector<uint64_t> candidates,
                                                    uint64_t scanned_through, int max = 100) {
  return Await<absl::StatusOr<std::vector<Lease>>>([&](auto done) {
    l.LeaseEvents(key, holder, std::move(candidates), scanned_through, max, std::move(done));
  });
}
inline absl::StatusOr<AckResult> AckSync(Ledger& l, const SubscriptionKey& key,
                                         std::vector<uint64_t> cursors) {
  return Await<absl::StatusOr<AckResult>>(
      [&](auto done) { l.AckEvents(key, std::move(cursors), std::move(done)); });
}
inline absl::StatusOr<AckResult> NackSync(Ledger& l, const SubscriptionKey& key,
                                          std::vector<uint64_t> cursors, std::string reason,
                                          absl::Duration retry_after) {
  return Await<absl::StatusOr<AckResult>>([&](auto done) {
    l.NackEvents(key, std::move(cursors), std::move(reason), retry_after, std::move(done));
  });
}
inline absl::StatusOr<std::vector<uint64_t>> ExtendSync(Ledger& l, const SubscriptionKey& key,
                                                        const std::string& holder,
                                                        std::vector<uint64_t> cursors,
                                                        absl::Duration extension) {
  return Await<absl::StatusOr<std::vector<uint64_t>>>([&](auto done) {
    l.ExtendLeases(key, holder, std::move(cursors), extension, std::move(done));
  });
}
inline absl::StatusOr<int64_t> RedriveSync(Ledger& l, const SubscriptionKey& key,
                                           std::vector<uint64_t> cursors) {
  return Await<absl::StatusOr<int64_t>>(
      [&](auto done) { l.RedriveDeadLetters(key, std::move(cursors), std::move(done)); });
}
inline absl::StatusOr<bool> ClaimSync(Ledger& l, const std::string& name, const std::string& holder,
                                      absl::Duration lease) {
  return Await<absl::StatusOr<bool>>(
      [&](auto done) { l.ClaimTarget(name, holder, lease, std::move(done)); });
}
inline absl::Status ReleaseSync(Ledger& l, const std::string& name, const std::string& holder) {
  return Await<absl::Status>([&](auto done) { l.ReleaseTarget(name, holder, std::move(done)); });
}

inline std::vector<uint64_t> LeasedCursors(const std::vector<Lease>& leases) {
  std::vector<uint64_t> out;
  for (const Lease& l : leases) out.push_back(l.cursor);
  return out;
}

inline std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> out;
  for (uint64_t c = first; c <= last; ++c) out.push_back(c);
  return out;
}

// Appends `n` UploadCompleted events (uploads prefix-0 .. prefix-(n-1)),
// writing asynchronously so that they share batches.
inline void AppendEvents(Ledger& l, int n, const std::string& prefix = "u") {
  for (int phase = 0; phase < 2; ++phase) {
    absl::BlockingCounter left(n);
    for (int i = 0; i < n; ++i) {
      std::string id = absl::StrCat(prefix, "-", i);
      if (phase == 0) {
        l.CreateIntent(Intent(id), [&](absl::Status s) {
          EXPECT_TRUE(s.ok()) << s;
          left.DecrementCount();
        });
      } else {
        l.CompleteUpload(id, Done(), [&](absl::StatusOr<CompleteResult> r) {
          EXPECT_TRUE(r.ok()) << r.status();
          left.DecrementCount();
        });
      }
    }
    left.Wait();
  }
}

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_TESTS_LEDGER_SUBSCRIPTION_HELPERS_H_
