// The durable-subscription RPCs of UploadBrokerService (service.h).
#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/grpc_status.h"
#include "rpc/service.h"
#include "stream/event_filter.h"

namespace uploadbroker::rpc {
namespace {

constexpr size_t kMaxNameBytes = 128;
constexpr uint32_t kMaxAckDeadlineSeconds = 600;
constexpr uint32_t kMaxAttempts = 1000;
constexpr int kMaxCursors = deliver::ConsumeDispatcher::kMaxCursorsPerRequest;

// Waits for a ledger callback (sync-pool threads only).
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

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

absl::Status CheckName(absl::string_view field, const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": at most ", kMaxNameBytes, " bytes"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": only letters, digits, '_', '.' and '-' are allowed"));
    }
  }
  return absl::OkStatus();
}

// The ledger's NotFound, in the one wording every caller gets.
absl::Status Owned(const absl::Status& st, const std::string& name) {
  if (absl::IsNotFound(st)) {
    return absl::NotFoundError(deliver::ConsumeDispatcher::NoSubscription(name));
  }
  return st;
}

void ToProto(const ledger::SubscriptionState& s, uint64_t newest, v1::Subscription* out) {
  out->set_name(s.spec.key.name);
  out->set_caller(s.spec.key.caller);
  *out->mutable_filter() = s.spec.filter;
  out->set_start_after_cursor(s.spec.start_after);
  out->set_ack_deadline_seconds(static_cast<uint32_t>(absl::ToInt64Seconds(s.spec.ack_deadline)));
  out->set_max_delivery_attempts(static_cast<uint32_t>(s.spec.max_delivery_attempts));
  SetTimestamp(s.created_at, out->mutable_created_at());
  out->set_ack_floor(s.ack_floor);
  out->set_acked_above_floor(s.acked_above_floor);
  out->set_leased(s.leased);
  out->set_dead_letters(s.dead);
  out->set_newest_cursor(newest);
  out->set_scanned(s.scanned);
  out->set_target(s.spec.target);
}

}  // namespace

grpc::Status UploadBrokerService::CreateSubscription(grpc::ServerContext* ctx,
                                                     const v1::CreateSubscriptionRequest* req,
                                                     v1::CreateSubscriptionResponse* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return common::ToGrpcStatus(caller.status());
  absl::Status st = CheckName("name", req->name());
  if (!st.ok()) return common::ToGrpcStatus(st);
  // The scope check Subscribe makes (PERMISSION_DENIED outside it).
  absl::StatusOr<stream::EventFilter> filter = stream::EventFilter::Create(req->filter(), **caller);
  if (!filter.ok()) return common::ToGrpcStatus(filter.status());
  if (req->ack_deadline_seconds() > kMaxAckDeadlineSeconds) {
    return common::ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("ack_deadline_seconds: at most ", kMaxAckDeadlineSeconds)));
  }
  if (req->max_delivery_attempts() > kMaxAttempts) {
    return common::ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("max_delivery_attempts: at most ", kMaxAttempts)));
  }
  const int start = req->start();
  if (!v1::StartPosition_IsValid(start)) {
    return common::ToGrpcStatus(
        absl::InvalidArgumentError(absl::StrCat("start: unknown start position ", start)));
  }
  if (start != v1::START_POSITION_AFTER_CURSOR && req->after_cursor() != 0) {
    return common::ToGrpcStatus(absl::InvalidArgumentError(
        "after_cursor: only allowed with start START_POSITION_AFTER_CURSOR"));
  }
  // The start position, resolved as Subscribe resolves it.
  absl::StatusOr<uint64_t> last = ledger_.LastCursor();
  if (!last.ok()) return common::ToGrpcStatus(last.status());
  uint64_t start_after = *last;
  if (start == v1::START_POSITION_EARLIEST || start == v1::START_POSITION_AFTER_CURSOR) {
    absl::StatusOr<uint64_t> first = ledger_.FirstCursor();
    if (!first.ok()) return common::ToGrpcStatus(first.status());
    const uint64_t oldest_after = *first == 0 ? *last : *first - 1;
    if (start == v1::START_POSITION_EARLIEST) {
      start_after = oldest_after;
    } else {
      start_after = req->after_cursor();
      if (start_after > *last) {
        return common::ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
            "after_cursor: ", start_after, " is beyond the newest cursor ", *last)));
      }
      if (start_after < oldest_after) {
        return common::ToGrpcStatus(absl::OutOfRangeError(absl::StrCat(
            "after_cursor: cursor ", start_after, " is older than retention; oldest available is ",
            oldest_after + 1)));
      }
    }
  }
  ledger::SubscriptionSpec spec;
  spec.key = ledger::SubscriptionKey{(*caller)->name, req->name()};
  spec.filter = req->filter();
  spec.start_after = start_after;
  if (req->ack_deadline_seconds() > 0) spec.ack_deadline = absl::Seconds(req->ack_deadline_seconds());
  if (req->max_delivery_attempts() > 0) {
    spec.max_delivery_attempts = static_cast<int>(req->max_delivery_attempts());
  }
  const bool existed = ledger_.GetSubscription(spec.key).ok();
  auto created = Wait<absl::StatusOr<ledger::SubscriptionState>>(
      [&](auto done) { ledger_.CreateSubscription(spec, std::move(done)); });
  if (!created.ok()) return common::ToGrpcStatus(created.status());
  ToProto(*created, *last, resp->mutable_subscription());
  resp->set_created(!existed);
  return grpc::Status::OK;
}

grpc::Status UploadBrokerService::GetSubscription(grpc::ServerContext* ctx,
                                                  const v1::GetSubscriptionRequest* req,
                                                  v1::GetSubscriptionResponse* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return common::ToGrpcStatus(caller.status());
  absl::Status st = CheckName("name", req->name());
  if (!st.ok()) return common::ToGrpcStatus(st);
  auto state = ledger_.GetSubscription(ledger::SubscriptionKey{(*caller)->name, req->name()});
  if (!state.ok()) return common::ToGrpcStatus(Owned(state.status(), req->name()));
  absl::StatusOr<uint64_t> last = ledger_.LastCursor();
  if (!last.ok()) return common::ToGrpcStatus(last.status());
  ToProto(*state, *last, resp->mutable_subscription());
  return grpc::Status::OK;
}

grpc::Status UploadBrokerService::ListSubscriptions(grpc::ServerContext* ctx,
                                                    const v1::ListSubscriptionsRequest*,
                                                    v1::ListSubscriptionsResponse* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return common::ToGrpcStatus(caller.status());
  const std::string& name = (*caller)->name;
  auto all = ledger_.ListSubscriptions(name);
  if (!all.ok()) return common::ToGrpcStatus(all.status());
  absl::StatusOr<uint64_t> last = ledger_.LastCursor();
  if (!last.ok()) return common::ToGrpcStatus(last.status());
  for (const ledger::SubscriptionState& s : *all) {
    if (s.spec.key.caller != name) continue;  // never another caller's
    ToProto(s, *last, resp->add_subscriptions());
  }
  return grpc::Status::OK;
}

grpc::Status UploadBrokerService::DeleteSubscription(grpc::ServerContext* ctx,
                                                     const v1::DeleteSubscriptionRequest* req,
                                                     v1::DeleteSubscriptionResponse*) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return common::ToGrpcStatus(caller.status());
  absl::Status st = CheckName("name", req->name());
  if (!st.ok()) return common::ToGrpcStatus(st);
  ledger::SubscriptionKey key{(*caller)->name, req->name()};
  st = Wait<absl::Status>([&](auto done) { ledger_.DeleteSubscription(key, std::move(done)); });
  return common::ToGrpcStatus(Owned(st, req->name()));
}

grpc::ServerBidiReactor<v1::ConsumeRequest, v1::ConsumeResponse>* UploadBrokerService::Consume(
    grpc::CallbackServerContext* ctx) {
  class Refused final : public grpc::ServerBidiReactor<v1::ConsumeRequest, v1::ConsumeResponse> {
   public:
    explicit Refused(const grpc::Status& status) { Finish(status); }
    void OnDone() override { delete this; }
  };
  auto caller = Caller(ctx);
  if (!caller.ok()) return new Refused(common::ToGrpcStatus(caller.status()));
  if (consume_ == nullptr) {
    return new Refused(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                    "this broker does not serve Consume"));
  }
  return consume_->Consume(ctx, *caller);
}

grpc::Status UploadBrokerService::ListDeadLetters(grpc::ServerContext* ctx,
                                                  const v1::ListDeadLettersRequest* req,
                                                  v1::ListDeadLettersResponse* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return common::ToGrpcStatus(caller.status());
  absl::Status st = CheckName("subscription", req->subscription());
  if (!st.ok()) return common::ToGrpcStatus(st);
  if (req->page_size() < 0 || req->page_size() > 1000) {
    return common::ToGrpcStatus(
        absl::InvalidArgumentError("page_size: must be between 0 and 1000"));
  }
  uint64_t after = 0;
  if (!req->page_token().empty() && !absl::SimpleAtoi(req->page_token(), &after)) {
    return common::ToGrpcStatus(absl::InvalidArgumentError(
        "page_token: not a token from ListDeadLetters; pass next_page_token unchanged"));
  }
  const int limit = req->page_size() == 0 ? 100 : req->page_size();
  ledger::SubscriptionKey key{(*caller)->name, req->subscription()};
  // One more than the page, to know whether there is a next one.
  auto dead = ledger_.ListDeadLetters(key, after, limit + 1);
  if (!dead.ok()) return common::ToGrpcStatus(Owned(dead.status(), req->subscription()));
  const bool more = static_cast<int>(dead->size()) > limit;
  if (more) dead->resize(static_cast<size_t>(limit));
  for (const ledger::DeadLetter& d : *dead) {
    v1::DeadLetter* out = resp->add_dead_letters();
    out->set_cursor(d.cursor);
    SetTimestamp(d.died_at, out->mutable_died_at());
    for (const ledger::FailedAttempt& a : d.attempts) {
      v1::FailedAttempt* fa = out->add_attempts();
      SetTimestamp(a.at, fa->mutable_at());
      fa->set_reason(a.reason);
    }
    auto event = ledger_.ReadEvents(d.cursor - 1, 1);
    if (event.ok() && !event->empty() && event->front().cursor() == d.cursor) {
      *out->mutable_event() = std::move(event->front());
    }
  }
  if (more && !dead->empty()) resp->set_next_page_token(absl::StrCat(dead->back().cursor));
  return grpc::Status::OK;
}

grpc::Status UploadBrokerService::RedriveDeadLetters(grpc::ServerContext* ctx,
                                                     const v1::RedriveDeadLettersRequest* req,
                                                     v1::RedriveDeadLettersResponse* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return common::ToGrpcStatus(caller.status());
  absl::Status st = CheckName("subscription", req->subscription());
  if (!st.ok()) return common::ToGrpcStatus(st);
  if (req->all() == (req->cursors_size() > 0)) {
    return common::ToGrpcStatus(
        absl::InvalidArgumentError("cursors, all: set exactly one (cursors to redrive, or all)"));
  }
  if (req->cursors_size() > kMaxCursors) {
    return common::ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("cursors: ", req->cursors_size(), " given; at most ", kMaxCursors)));
  }
  ledger::SubscriptionKey key{(*caller)->name, req->subscription()};
  std::vector<uint64_t> cursors(req->cursors().begin(), req->cursors().end());
  auto n = Wait<absl::StatusOr<int64_t>>(
      [&](auto done) { ledger_.RedriveDeadLetters(key, cursors, std::move(done)); });
  if (!n.ok()) return common::ToGrpcStatus(Owned(n.status(), req->subscription()));
  if (*n > 0 && consume_ != nullptr) consume_->Nudge(key);
  resp->set_redriven(*n);
  return grpc::Status::OK;
}

}  // namespace uploadbroker::rpc
