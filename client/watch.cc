#include "client/watch.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/subscriber.h"
#include "google/protobuf/util/json_util.h"

namespace uploadbroker::client {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<v1::SubscribeRequest> WatchRequest(const WatchArgs& a) {
  v1::SubscribeRequest req;
  v1::EventFilter& f = *req.mutable_filter();
  for (const std::string& b : a.buckets) f.add_buckets(b);
  for (const std::string& p : a.key_prefixes) f.add_key_prefixes(p);
  for (const std::string& c : a.callers) f.add_callers(c);
  for (const std::string& kv : a.metadata) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first.empty() || kv.find('=') == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("--meta: '", kv, "' is not key=value"));
    }
    (*f.mutable_metadata())[p.first] = p.second;
  }
  for (const std::string& t : a.types) {
    if (t == "completed") {
      f.add_types(v1::EVENT_TYPE_UPLOAD_COMPLETED);
    } else if (t == "expired") {
      f.add_types(v1::EVENT_TYPE_UPLOAD_EXPIRED);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--types: '", t, "' is not 'completed' or 'expired'"));
    }
  }
  if (a.cursor >= 0) {
    req.set_start(v1::START_POSITION_AFTER_CURSOR);
    req.set_after_cursor(static_cast<uint64_t>(a.cursor));
  } else if (a.start.empty() || a.start == "latest") {
    req.set_start(v1::START_POSITION_LATEST);
  } else if (a.start == "earliest") {
    req.set_start(v1::START_POSITION_EARLIEST);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--start: '", a.start, "' is not 'latest' or 'earliest'"));
  }
  return req;
}

absl::StatusOr<std::optional<uint64_t>> ReadCursorFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return std::optional<uint64_t>();
    return Errno("cannot read cursor file", path);
  }
  std::stringstream text;
  text << in.rdbuf();
  uint64_t cursor = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text.str()), &cursor)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cursor file ", path, " does not hold a cursor (a decimal number)"));
  }
  return std::optional<uint64_t>(cursor);
}

absl::Status WriteCursorFile(const std::string& path, uint64_t cursor) {
  // Written beside the target, synced, then renamed over it: a crash leaves
  // the old cursor or the new one, never a torn file.
  const std::string tmp = path + ".tmp";
  const std::string text = absl::StrCat(cursor, "\n");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot write cursor file", tmp);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok) return Errno("cannot write cursor file", tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Errno("cannot replace cursor file", path);
  return absl::OkStatus();
}

int Watch(const WatchArgs& args, std::ostream& out, std::ostream& err) {
  auto fail = [&err](const absl::Status& st, int code) {
    err << "error: " << absl::StatusCodeToString(st.code()) << ": " << st.message() << "\n";
    return code;
  };
  absl::StatusOr<v1::SubscribeRequest> request = WatchRequest(args);
  if (!request.ok()) return fail(request.status(), 2);
  if (!args.cursor_file.empty()) {
    absl::StatusOr<std::optional<uint64_t>> saved = ReadCursorFile(args.cursor_file);
    if (!saved.ok()) return fail(saved.status(), 1);
    if (saved->has_value()) {
      request->set_start(v1::START_POSITION_AFTER_CURSOR);
      request->set_after_cursor(**saved);
    }
  }

  Subscriber::Options options;
  options.target = args.target;
  options.credentials = args.credentials;
  options.api_key = args.api_key;
  options.request = *request;
  options.max_receive_message_bytes = args.max_receive_bytes;
  if (!args.cursor_file.empty()) {
    // Record the start at once, so a restart before the first event still
    // resumes where this run began.
    options.on_connected = [&](uint64_t start) {
      absl::Status st = WriteCursorFile(args.cursor_file, start);
      if (!st.ok()) err << "warning: " << st.message() << "\n";
    };
  }
  options.on_retry = [&err](const absl::Status& st, absl::Duration delay) {
    err << "stream ended (" << absl::StatusCodeToString(st.code()) << ": " << st.message()
        << "); reconnecting in " << absl::FormatDuration(delay) << "\n";
  };
  Subscriber subscriber(options);

  google::protobuf::util::JsonPrintOptions json;
  json.preserve_proto_field_names = true;
  absl::Status st = subscriber.Run([&](const v1::Event& event) -> absl::Status {
    std::string line;
    auto printed = google::protobuf::util::MessageToJsonString(event, &line, json);
    if (!printed.ok()) return absl::InternalError(printed.ToString());
    out << line << "\n";
    out.flush();
    if (!out) return absl::UnavailableError("cannot write to standard output");
    if (!args.cursor_file.empty()) return WriteCursorFile(args.cursor_file, event.cursor());
    return absl::OkStatus();
  });
  return st.ok() ? 0 : fail(st, 1);
}

}  // namespace uploadbroker::client
