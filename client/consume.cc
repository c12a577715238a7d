#include "client/consume.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::client {
namespace {

constexpr uint32_t kPrintInFlight = 100;

int Fail(std::ostream& err, const grpc::Status& st) {
  err << "error: " << absl::StatusCodeToString(static_cast<absl::StatusCode>(st.error_code()))
      << ": " << st.error_message() << "\n";
  return 1;
}

std::string Json(const google::protobuf::Message& m, bool pretty) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = pretty;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  return out;
}

// Writes `input` to `/bin/sh -c command`'s stdin; its exit status (-1 when
// it could not run, 128+N when killed by signal N).
int RunWithInput(const std::string& command, const std::string& input, std::ostream& err) {
  int fds[2];
  if (pipe(fds) != 0) {
    err << "error: pipe: " << std::strerror(errno) << "\n";
    return -1;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    err << "error: fork: " << std::strerror(errno) << "\n";
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(fds[0], STDIN_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[0]);
  size_t off = 0;
  while (off < input.size()) {
    const ssize_t n = write(fds[1], input.data() + off, input.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the command stopped reading: its exit status decides
    off += static_cast<size_t>(n);
  }
  close(fds[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

std::string CloudEventJson(const v1::Delivery& d, const std::string& source) {
  const v1::Event& e = d.event();
  const v1::Upload& upload = e.has_upload_completed() ? e.upload_completed().upload()
                                                      : e.upload_expired().upload();
  const std::string& subject =
      upload.completion().key().empty() ? upload.key() : upload.completion().key();
  nlohmann::json j = {
      {"specversion", "1.0"},
      {"id", d.cloud_event_id()},
      {"source", source},
      {"type", d.cloud_event_type()},
      {"subject", subject},
      {"time", google::protobuf::util::TimeUtil::ToString(e.committed_at())},
      {"datacontenttype", "application/json"},
      {"sequence", absl::StrCat(d.cursor())},
      {"data", nlohmann::json::parse(Json(e, false))},
  };
  return j.dump();
}

int Consume(BrokerClient& client, const ConsumeArgs& args, std::ostream& out, std::ostream& err) {
  if (args.subscription.empty()) {
    err << "usage: ubctl consume NAME [--exec CMD] [--count N] [--max-in-flight N]\n";
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);  // a command that does not read its stdin
  grpc::ClientContext ctx;
  client.Prepare(&ctx, /*with_deadline=*/false);
  auto stream = client.stub().Consume(&ctx);
  v1::ConsumeRequest first;
  first.set_subscription(args.subscription);
  // One at a time for commands: events another consumer could process are
  // not held while this one runs.
  // With --count, no more than it will settle: what it leaves goes back to
  // the subscription as a failed attempt.
  uint32_t in_flight = args.max_in_flight > 0 ? args.max_in_flight
                       : args.exec.empty()    ? kPrintInFlight
                                              : 1;
  if (args.count > 0 && static_cast<uint64_t>(args.count) < in_flight) {
    in_flight = static_cast<uint32_t>(args.count);
  }
  first.set_max_in_flight(in_flight);
  if (!stream->Write(first)) return Fail(err, stream->Finish());
  int64_t settled = 0;
  bool done = args.count > 0 && settled >= args.count;
  v1::ConsumeResponse resp;
  while (!done && stream->Read(&resp)) {
    v1::ConsumeRequest settle;
    for (const v1::Delivery& d : resp.deliveries()) {
      if (done) break;  // the rest goes back to the subscription when the stream ends
      const std::string json = CloudEventJson(d, args.source);
      if (args.exec.empty()) {
        out << json << "\n";
        out.flush();
        settle.add_ack_cursors(d.cursor());
      } else {
        const int status = RunWithInput(args.exec, json + "\n", err);
        if (status == 0) {
          settle.add_ack_cursors(d.cursor());
        } else {
          v1::ConsumeNack* nack = settle.add_nacks();
          nack->set_cursor(d.cursor());
          nack->set_message(status < 0 ? "command could not be run"
                                       : absl::StrCat("command exited with status ", status));
        }
      }
      ++settled;
      done = args.count > 0 && settled >= args.count;
    }
    if ((settle.ack_cursors_size() > 0 || settle.nacks_size() > 0) && !stream->Write(settle)) break;
  }
  if (done) {
    stream->WritesDone();
    while (stream->Read(&resp)) {
    }
  }
  grpc::Status st = stream->Finish();
  if (!st.ok()) return Fail(err, st);
  return 0;
}

int SubscriptionCommand(BrokerClient& client, const std::vector<std::string>& words,
                        v1::CreateSubscriptionRequest create, std::ostream& out,
                        std::ostream& err) {
  const std::string sub = words.empty() ? "" : words[0];
  const std::string name = words.size() > 1 ? words[1] : "";
  grpc::ClientContext ctx;
  client.Prepare(&ctx);
  grpc::Status st;
  if (sub == "create" && words.size() == 2) {
    create.set_name(name);
    v1::CreateSubscriptionResponse resp;
    st = client.stub().CreateSubscription(&ctx, create, &resp);
    if (st.ok()) out << Json(resp, true);
  } else if (sub == "get" && words.size() == 2) {
    v1::GetSubscriptionRequest req;
    req.set_name(name);
    v1::GetSubscriptionResponse resp;
    st = client.stub().GetSubscription(&ctx, req, &resp);
    if (st.ok()) out << Json(resp, true);
  } else if (sub == "list" && words.size() == 1) {
    v1::ListSubscriptionsResponse resp;
    st = client.stub().ListSubscriptions(&ctx, v1::ListSubscriptionsRequest(), &resp);
    if (st.ok()) out << Json(resp, true);
  } else if (sub == "delete" && words.size() == 2) {
    v1::DeleteSubscriptionRequest req;
    req.set_name(name);
    v1::DeleteSubscriptionResponse resp;
    st = client.stub().DeleteSubscription(&ctx, req, &resp);
    if (st.ok()) out << "{}";
  } else {
    err << "usage: ubctl subscription create NAME [filter flags as for watch] [--start S | "
           "--cursor N] [--ack-deadline S] [--max-attempts N] | get NAME | list | delete NAME\n";
    return 2;
  }
  if (!st.ok()) return Fail(err, st);
  out << "\n";
  return 0;
}

int DeadLettersCommand(BrokerClient& client, const std::vector<std::string>& words, bool all,
                       int32_t page_size, const std::string& page_token, std::ostream& out,
                       std::ostream& err) {
  const std::string sub = words.empty() ? "" : words[0];
  grpc::ClientContext ctx;
  client.Prepare(&ctx);
  grpc::Status st;
  if (sub == "list" && words.size() == 2) {
    v1::ListDeadLettersRequest req;
    req.set_subscription(words[1]);
    req.set_page_size(page_size);
    req.set_page_token(page_token);
    v1::ListDeadLettersResponse resp;
    st = client.stub().ListDeadLetters(&ctx, req, &resp);
    if (st.ok()) out << Json(resp, true) << "\n";
  } else if (sub == "redrive" && words.size() >= 2 && (all != (words.size() > 2))) {
    v1::RedriveDeadLettersRequest req;
    req.set_subscription(words[1]);
    req.set_all(all);
    for (size_t i = 2; i < words.size(); ++i) {
      uint64_t cursor = 0;
      if (!absl::SimpleAtoi(words[i], &cursor)) {
        err << "error: '" << words[i] << "' is not a cursor\n";
        return 2;
      }
      req.add_cursors(cursor);
    }
    v1::RedriveDeadLettersResponse resp;
    st = client.stub().RedriveDeadLetters(&ctx, req, &resp);
    if (st.ok()) out << Json(resp, true) << "\n";
  } else {
    err << "usage: ubctl deadletters list NAME [--page-size N] [--page-token T] | "
           "deadletters redrive NAME (CURSOR... | --all)\n";
    return 2;
  }
  return st.ok() ? 0 : Fail(err, st);
}

}  // namespace uploadbroker::client
