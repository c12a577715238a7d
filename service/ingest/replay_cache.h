// ReplayCache: the answers recently given to verified callbacks, by their
// signature, so a repeated callback is answered again without a ledger read
// or a HeadObject.
//
// The signature covers the callback's path, query and body, so two verified
// callbacks with one signature asked the same thing and get the same answer.
// Only decided answers are kept (a 200, or a 409 refusal), never "try
// later" ones. At most `max_entries`, each for `ttl`; when full, the oldest
// goes first.
//
// Not thread-safe: the CallbackHandler guards it with its own mutex.
#ifndef UPLOADBROKER_INGEST_REPLAY_CACHE_H_
#define UPLOADBROKER_INGEST_REPLAY_CACHE_H_

#include <cstddef>
#include <list>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "http/message.h"

namespace uploadbroker::ingest {

class ReplayCache {
 public:
  struct Options {
    size_t max_entries = 10'000;
    absl::Duration ttl = absl::Minutes(10);
  };

  explicit ReplayCache(Options options) : options_(options) {}

  // The answer given to `signature` within the last ttl, if any.
  std::optional<http::Response> Find(const std::string& signature, absl::Time now);
  // Keeps `answer` for `signature` (replacing an older one).
  void Remember(const std::string& signature, const http::Response& answer, absl::Time now);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    http::Response answer;
    absl::Time expires;
    std::list<std::string>::iterator order;
  };
  void Erase(const std::string& signature);

  const Options options_;
  absl::flat_hash_map<std::string, Entry> entries_;
  std::list<std::string> order_;  // oldest first
};

}  // namespace uploadbroker::ingest

#endif  // UPLOADBROKER_INGEST_REPLAY_CACHE_H_
