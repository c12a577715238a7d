// FakeConfirmer: an in-process ingest::Confirmer for the fuzz harness and
// handler tests. No network: it answers at once, on the calling thread, with
// whatever `verdict` says about the reported object (OK when unset).
#ifndef UPLOADBROKER_TESTS_INGEST_FAKE_CONFIRMER_H_
#define UPLOADBROKER_TESTS_INGEST_FAKE_CONFIRMER_H_

#include <atomic>
#include <functional>
#include <utility>

#include "ingest/confirmer.h"

namespace uploadbroker::testing {

class FakeConfirmer final : public ingest::Confirmer {
 public:
  explicit FakeConfirmer(std::function<absl::Status(const completion::ReportedObject&)> verdict = nullptr)
      : verdict_(std::move(verdict)) {}

  void Confirm(const completion::ReportedObject& object,
               std::function<void(absl::Status)> done) override {
    ++calls_;
    done(verdict_ ? verdict_(object) : absl::OkStatus());
  }
  int calls() const { return calls_.load(); }

 private:
  const std::function<absl::Status(const completion::ReportedObject&)> verdict_;
  std::atomic<int> calls_{0};
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_INGEST_FAKE_CONFIRMER_H_
