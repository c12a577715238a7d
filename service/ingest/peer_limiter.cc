#include "ingest/peer_limiter.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace uploadbroker::ingest {

PeerLimiter::PeerLimiter(Options options, const common::Clock* clock)
    : options_(options), clock_(clock != nullptr ? clock : &real_clock_) {}

std::string PeerLimiter::AddressOf(absl::string_view peer) {
  size_t colon = peer.rfind(':');
  absl::string_view ip = colon == absl::string_view::npos ? peer : peer.substr(0, colon);
  if (!ip.empty() && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  unsigned char v6[16];
  std::string text(ip);
  if (text.find(':') != std::string::npos && inet_pton(AF_INET6, text.c_str(), v6) == 1) {
    std::memset(v6 + 8, 0, 8);
    char out[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, v6, out, sizeof out) != nullptr) return absl::StrCat(out, "/64");
  }
  return text;
}

void PeerLimiter::Refill(Bucket& b, absl::Time now) const {
  const double gained = absl::ToDoubleSeconds(now - b.updated) * options_.per_second;
  if (gained > 0) {
    b.tokens = std::min(options_.burst, b.tokens + gained);
    b.updated = now;
  }
}

absl::Duration PeerLimiter::Wait(absl::string_view peer) {
  const std::string address = AddressOf(peer);
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(address);
  if (it == buckets_.end()) return absl::ZeroDuration();
  Refill(it->second, now);
  if (it->second.tokens >= 1) return absl::ZeroDuration();
  return absl::Seconds((1 - it->second.tokens) / options_.per_second);
}

void PeerLimiter::Charge(absl::string_view peer) {
  std::string address = AddressOf(peer);
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(address);
  if (it == buckets_.end()) {
    if (buckets_.size() >= options_.max_addresses) MakeRoom(now);
    it = buckets_.emplace(std::move(address), Bucket{options_.burst, now}).first;
  }
  Refill(it->second, now);
  it->second.tokens = std::max(0.0, it->second.tokens - 1);
}

void PeerLimiter::MakeRoom(absl::Time now) {
  // Full buckets say nothing a new one would not; drop them first.
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    Refill(it->second, now);
    if (it->second.tokens >= options_.burst) {
      buckets_.erase(it++);
    } else {
      ++it;
    }
  }
  while (buckets_.size() >= options_.max_addresses) buckets_.erase(buckets_.begin());
}

}  // namespace uploadbroker::ingest
