#include "ingest/callback_handler.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/log_safe.h"
#include "nlohmann/json.hpp"
#include "policy/callback_param.h"
#include "spdlog/spdlog.h"

namespace uploadbroker::ingest {
namespace {

const std::vector<double> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                             0.025,  0.05,  0.1,    0.25,  0.5,  1};

std::string ErrorBody(absl::string_view kind, absl::string_view reason) {
  return nlohmann::json{{"error", kind}, {"reason", reason}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// What makes two callbacks the same report: the fields a completion keeps.
std::string ReportKey(const callback::CallbackFields& f) {
  return absl::StrCat(f.upload_id.size(), ":", f.upload_id, f.bucket.size(), ":", f.bucket,
                      f.object.size(), ":", f.object, f.size, ":", f.etag.size(), ":", f.etag,
                      f.mime_type.size(), ":", f.mime_type, f.operation.size(), ":", f.operation);
}

// Checks the Content-Type against the one type the broker issues.
absl::Status CheckBodyType(absl::string_view content_type) {
  absl::string_view media_type =
      absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';')));
  if (absl::EqualsIgnoreCase(media_type, policy::kCallbackBodyType)) return absl::OkStatus();
  if (media_type.empty()) return absl::InvalidArgumentError("Content-Type: missing");
  std::string shown(media_type.substr(0, 64));
  for (char& c : shown) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return absl::InvalidArgumentError(absl::StrCat("Content-Type: '", shown, "' is not the ",
                                                 policy::kCallbackBodyType,
                                                 " the broker's callback parameter asks for"));
}

}  // namespace

completion::ReportedObject ReportedBy(const callback::CallbackFields& f) {
  completion::ReportedObject o;
  o.bucket = f.bucket;
  o.key = f.object;
  o.size = f.size;
  o.etag = f.etag;
  o.content_type = f.mime_type;
  o.crc64 = f.crc64;
  o.content_md5 = f.content_md5;
  o.image_height = f.image_height;
  o.image_width = f.image_width;
  o.image_format = f.image_format;
  o.client_ip = f.client_ip;
  o.request_id = f.req_id;
  o.operation = f.operation;
  return o;
}

int HttpStatusFor(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

CallbackHandler::CallbackHandler(const callback::Verifier& verifier, ledger::Ledger& ledger,
                                 metrics::Registry& metrics,
                                 std::map<std::string, std::string> extra, Confirmer* confirmer,
                                 Options options)
    : verifier_(verifier),
      ledger_(ledger),
      extra_(std::move(extra)),
      confirmer_(confirmer),
      options_(options),
      clock_(options.clock != nullptr ? *options.clock : real_clock_),
      results_(metrics.AddCounter("upload_broker_callbacks_total",
                                  "OSS callbacks answered, by result and reason",
                                  {"result", "reason"})),
      verify_seconds_(metrics.AddHistogram("upload_broker_callback_verify_seconds",
                                           "Time to verify a callback signature", {},
                                           kLatencyBuckets)),
      commit_seconds_(metrics.AddHistogram("upload_broker_callback_commit_seconds",
                                           "Time from verified callback to durable commit", {},
                                           kLatencyBuckets)),
      confirm_seconds_(metrics.AddHistogram("upload_broker_callback_confirm_seconds",
                                            "Time to look up and confirm a callback's upload "
                                            "(ledger reads, HeadObject)",
                                            {}, kLatencyBuckets)),
      peers_(options.peers, options.clock),
      replays_(options.replay) {}

void CallbackHandler::Reject(const std::string& peer, const http::Responder& respond,
                             absl::string_view kind, const absl::Status& st, int http_status) {
  results_.Inc({"rejected", std::string(kind)});
  peers_.Charge(peer);
  // The message quotes what the caller sent (keys, types, ids): escaped.
  uint64_t suppressed = 0;
  if (reject_log_.Admit(&suppressed)) {
    spdlog::warn("callback rejected from {}: {}: {}{}", common::LogSafe(peer), std::string(kind),
                 common::LogSafe(st.message(), common::kLogSafeMessageBytes),
                 suppressed > 0 ? absl::StrCat(" (", suppressed, " more rejections not logged)") : "");
  }
  http::Response r;
  r.status = http_status;
  r.body = ErrorBody(kind, st.message());
  respond(std::move(r));
}

http::Response CallbackHandler::Success(const callback::CallbackFields& f) const {
  nlohmann::json j;
  for (const auto& [k, v] : extra_) j[k] = v;
  j["upload_id"] = f.upload_id;
  j["bucket"] = f.bucket;
  j["key"] = f.object;
  j["size"] = f.size;
  j["etag"] = f.etag;
  http::Response r;
  r.status = 200;
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

void CallbackHandler::Handle(http::Request req, http::Responder respond) {
  if (absl::Duration wait = peers_.Wait(req.peer); wait > absl::ZeroDuration()) {
    results_.Inc({"rejected", "rate_limited"});
    http::Response r;
    r.status = 429;
    r.headers.emplace_back("Retry-After",
                           absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(wait, absl::Seconds(1))))));
    r.body = ErrorBody("rate_limited", "too many failed callbacks from this address; retry later");
    respond(std::move(r));
    return;
  }
  if (req.method != "POST") {
    Reject(req.peer, respond, "method", absl::InvalidArgumentError("callbacks must be POST"), 400);
    return;
  }
  absl::Time start = absl::Now();
  std::string signature(absl::StripAsciiWhitespace(req.Header("authorization")));
  absl::Status verified = verifier_.Verify(
      req.query_raw, req.body, signature,
      absl::StripAsciiWhitespace(req.Header("x-oss-pub-key-url")),
      absl::StripAsciiWhitespace(req.Header("x-oss-signature-version")));
  verify_seconds_.Observe({}, absl::ToDoubleSeconds(absl::Now() - start));
  if (!verified.ok()) {
    Reject(req.peer, respond, "signature", verified, HttpStatusFor(verified));
    return;
  }
  if (absl::Status type = CheckBodyType(req.Header("content-type")); !type.ok()) {
    Reject(req.peer, respond, "content_type", type, 415);
    return;
  }
  absl::StatusOr<callback::CallbackFields> fields = callback::ParseCallbackBody(req.Header("content-type"), req.body);
  if (!fields.ok()) {
    Reject(req.peer, respond, "body", fields.status(), HttpStatusFor(fields.status()));
    return;
  }
  std::string report = ReportKey(*fields);
  std::shared_ptr<Flight> flight;
  std::optional<http::Response> replayed;
  bool busy = false;
  {
    absl::MutexLock lock(&mu_);
    replayed = replays_.Find(signature, clock_.Now());
    if (!replayed) {
      auto it = flights_.find(fields->upload_id);
      if (it == flights_.end()) {
        flight = std::make_shared<Flight>();
        flight->report = std::move(report);
        flight->fields = *std::move(fields);
        flight->waiters.push_back(Waiter{req.peer, signature, std::move(respond)});
        flights_.emplace(flight->fields.upload_id, flight);
      } else if (it->second->report == report) {
        it->second->waiters.push_back(Waiter{req.peer, signature, std::move(respond)});
        return;  // answered with the flight's decision
      } else {
        busy = true;
      }
    }
  }
  if (replayed) {
    const bool accepted = replayed->status == 200;
    results_.Inc({accepted ? "accepted" : "rejected", "replay"});
    if (!accepted) peers_.Charge(req.peer);
    respond(*std::move(replayed));
    return;
  }
  if (busy) {
    Reject(req.peer, respond, "upload_busy",
           absl::UnavailableError("another callback for this upload is being decided"), 503);
    return;
  }
  if (confirmer_ == nullptr) {
    Complete(std::move(flight));
  } else {
    Confirm(std::move(flight));
  }
}

void CallbackHandler::Finish(const std::shared_ptr<Flight>& flight, Outcome outcome) {
  std::vector<Waiter> waiters;
  {
    absl::MutexLock lock(&mu_);
    auto it = flights_.find(flight->fields.upload_id);
    if (it != flights_.end() && it->second == flight) flights_.erase(it);
    waiters.swap(flight->waiters);
    // Cached under the same lock that ends the flight: a copy arriving now
    // finds either the flight or the answer, never a fresh decision.
    if (outcome.decided) {
      for (const Waiter& w : waiters) replays_.Remember(w.signature, outcome.answer, clock_.Now());
    }
  }
  if (!outcome.detail.ok()) {
    uint64_t suppressed = 0;
    if (reject_log_.Admit(&suppressed)) {
      spdlog::warn("callback rejected from {}: {}: {}{}{}",
                   common::LogSafe(waiters.empty() ? "" : waiters.front().peer), outcome.reason,
                   common::LogSafe(outcome.detail.message(), common::kLogSafeMessageBytes),
                   waiters.size() > 1 ? absl::StrCat(" (", waiters.size(), " copies)") : "",
                   suppressed > 0 ? absl::StrCat(" (", suppressed, " more rejections not logged)") : "");
    }
  }
  bool first = true;
  for (Waiter& w : waiters) {
    // A copy that shared the first one's decision is counted as "joined".
    results_.Inc({outcome.result, first ? outcome.reason : std::string("joined")});
    first = false;
    if (outcome.failure) peers_.Charge(w.peer);
    w.respond(outcome.answer);
  }
}

CallbackHandler::Outcome CallbackHandler::Refused(const char* reason, absl::Status detail) const {
  Outcome o;
  o.answer.status = 409;
  o.answer.body = kRejectedBody;
  o.result = "rejected";
  o.reason = reason;
  o.detail = std::move(detail);
  o.decided = true;
  o.failure = true;
  return o;
}

CallbackHandler::Outcome CallbackHandler::Accepted(const Flight& flight, const char* reason) const {
  Outcome o;
  o.answer = Success(flight.fields);
  o.result = "accepted";
  o.reason = reason;
  o.decided = true;
  return o;
}

}  // namespace uploadbroker::ingest
