// PeerLimiter: a token bucket per source address, for callbacks that fail
// verification or matching.
//
// Anyone can send the callback endpoint signed callbacks (docs/security.md),
// and each failed one costs an RSA verification and a ledger read. A failure
// takes one token from its sender's bucket; a sender with no token left is
// answered 429 (with Retry-After) before anything is checked, until the
// bucket refills at `per_second`. Callbacks that succeed take nothing, so
// OSS's own addresses only pay for the failures sent through them.
//
// Addresses are IP addresses as http::Request::peer gives them ("ip:port",
// the port is dropped); IPv6 addresses share one bucket per /64, which one
// host can hold whole. At most `max_addresses` buckets are kept: full ones
// are dropped first, then arbitrary ones (a sender can then start afresh,
// which only costs it what a full bucket allows).
//
// Thread-safe. The clock (null: the real one) must outlive the limiter.
#ifndef UPLOADBROKER_INGEST_PEER_LIMITER_H_
#define UPLOADBROKER_INGEST_PEER_LIMITER_H_

#include <cstddef>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace uploadbroker::ingest {

class PeerLimiter {
 public:
  struct Options {
    double per_second = 5;  // tokens regained per second
    double burst = 50;      // bucket size
    size_t max_addresses = 10'000;
  };

  explicit PeerLimiter(Options options, const common::Clock* clock = nullptr);

  // Zero when `peer` may be served now; otherwise how long until its bucket
  // holds a token again.
  absl::Duration Wait(absl::string_view peer) ABSL_LOCKS_EXCLUDED(mu_);
  // Takes a token from `peer`'s bucket (it sent a failing callback).
  void Charge(absl::string_view peer) ABSL_LOCKS_EXCLUDED(mu_);

  // The bucket name for `peer`: its IP address, an IPv6 one cut to its /64.
  static std::string AddressOf(absl::string_view peer);

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time updated;
  };
  void Refill(Bucket& b, absl::Time now) const;
  void MakeRoom(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  common::RealClock real_clock_;
  const common::Clock* const clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace uploadbroker::ingest

#endif  // UPLOADBROKER_INGEST_PEER_LIMITER_H_
