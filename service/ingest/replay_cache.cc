#include "ingest/replay_cache.h"

namespace uploadbroker::ingest {

std::optional<http::Response> ReplayCache::Find(const std::string& signature, absl::Time now) {
  auto it = entries_.find(signature);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    Erase(signature);
    return std::nullopt;
  }
  return it->second.answer;
}

void ReplayCache::Remember(const std::string& signature, const http::Response& answer,
                           absl::Time now) {
  if (options_.max_entries == 0) return;
  Erase(signature);
  // Expired entries are at the front (one ttl for all): drop them, then the
  // oldest while full.
  while (!order_.empty() &&
         (entries_.size() >= options_.max_entries || entries_.at(order_.front()).expires <= now)) {
    Erase(order_.front());
  }
  order_.push_back(signature);
  entries_.emplace(signature, Entry{answer, now + options_.ttl, std::prev(order_.end())});
}

void ReplayCache::Erase(const std::string& signature) {
  auto it = entries_.find(signature);
  if (it == entries_.end()) return;
  order_.erase(it->second.order);
  entries_.erase(it);
}

}  // namespace uploadbroker::ingest
