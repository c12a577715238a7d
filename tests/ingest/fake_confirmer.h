// FakeConfirmer: an in-process ingest::Confirmer for the fuzz harness and
// handler tests. No network: it runs the caller's lookup and then answers
// at once, on the calling thread, with whatever `verdict` says about the
// reported object (OK when unset). An accepted object was last written
// `written_at` (default: now). heads() counts the HEADs it would have sent
// (lookups that agreed).
#ifndef UPLOADBROKER_TESTS_INGEST_FAKE_CONFIRMER_H_
#define UPLOADBROKER_TESTS_INGEST_FAKE_CONFIRMER_H_

#include <atomic>
#include <functional>
#include <utility>

#include "absl/time/clock.h"
#include "ingest/confirmer.h"

namespace uploadbroker::testing {

class FakeConfirmer final : public ingest::Confirmer {
 public:
  explicit FakeConfirmer(std::function<absl::Status(const completion::ReportedObject&)> verdict = nullptr)
      : verdict_(std::move(verdict)) {}

  void Confirm(const completion::ReportedObject& object, Lookup lookup, Done done) override {
    ++calls_;
    if (lookup) {
      if (absl::Status looked = lookup(); !looked.ok()) {
        done(looked, ossapi::ObjectFacts{});
        return;
      }
    }
    ++heads_;
    ossapi::ObjectFacts facts;
    facts.size = object.size;
    facts.etag = object.etag;
    facts.content_type = object.content_type;
    facts.last_modified = written_at_ == absl::InfinitePast() ? absl::Now() : written_at_;
    absl::Status verdict = verdict_ ? verdict_(object) : absl::OkStatus();
    done(verdict, verdict.ok() ? facts : ossapi::ObjectFacts{});
  }
  int calls() const { return calls_.load(); }
  int heads() const { return heads_.load(); }
  void set_written_at(absl::Time t) { written_at_ = t; }

 private:
  const std::function<absl::Status(const completion::ReportedObject&)> verdict_;
  std::atomic<int> calls_{0};
  std::atomic<int> heads_{0};
  absl::Time written_at_ = absl::InfinitePast();
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_INGEST_FAKE_CONFIRMER_H_
