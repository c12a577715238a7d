// Shared by the Subscribe fan-out benchmark servers (bench/fanout_bench.sh):
// the intent and completion every benchmark event carries, so the bare
// server's events have the same shape and size as the broker's.
#ifndef UPLOADBROKER_BENCH_FANOUT_EVENT_H_
#define UPLOADBROKER_BENCH_FANOUT_EVENT_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::bench {

inline void SetTime(absl::Time t, google::protobuf::Timestamp* ts) {
  const int64_t ns = absl::ToUnixNanos(t);
  ts->set_seconds(ns / 1'000'000'000);
  ts->set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
}

inline std::string BenchId(int64_t n) { return absl::StrCat("bench-", n); }

// A pending intent of caller "bench" in bucket "bench".
inline v1::Upload BenchIntent(const std::string& id) {
  v1::Upload u;
  u.set_upload_id(id);
  u.set_state(v1::UPLOAD_STATE_PENDING);
  u.set_caller("bench");
  u.set_bucket("bench");
  u.set_key("uploads/bench/" + id + ".jpg");
  u.set_max_size(10 << 20);
  u.add_content_types("image/jpeg");
  (*u.mutable_metadata())["user"] = "42";
  SetTime(absl::Now(), u.mutable_created_at());
  SetTime(absl::Now() + absl::Hours(1), u.mutable_expires_at());
  u.set_method(v1::UPLOAD_METHOD_POST);
  return u;
}

// What an OSS callback reports for `intent`.
inline v1::Completion BenchCompletion(const v1::Upload& intent) {
  v1::Completion c;
  c.set_key(intent.key());
  c.set_size(123456);
  c.set_etag("\"5B3C1A2E053D763E1B002CC607C5A0FE\"");
  c.set_content_type("image/jpeg");
  c.set_crc64("1234567890123456789");
  c.set_client_ip("203.0.113.7");
  c.set_request_id("5C06A3B67B8B5A3DA422299D");
  c.set_operation("PostObject");
  c.set_source(v1::COMPLETION_SOURCE_CALLBACK);
  return c;
}

}  // namespace uploadbroker::bench

#endif  // UPLOADBROKER_BENCH_FANOUT_EVENT_H_
