#include "deliver/cloud_event.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "stream/event_filter.h"

namespace uploadbroker::deliver {

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

namespace {

// The event's attributes as one JSON object without `data`, which is
// spliced in verbatim (it is JSON text already; parsing it again only to
// print it back would double the cost of every delivery).
std::string WithData(const CloudEvent& e) {
  nlohmann::ordered_json j;
  j["specversion"] = "1.0";
  j["id"] = e.id;
  j["source"] = e.source;
  j["type"] = e.type;
  j["subject"] = e.subject;
  j["time"] = Rfc3339(e.time);
  j["datacontenttype"] = e.datacontenttype;
  j["sequence"] = absl::StrCat(e.sequence);
  std::string out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (e.data.empty()) return out;
  out.pop_back();  // the closing brace
  absl::StrAppend(&out, ",\"data\":", e.data, "}");
  return out;
}

}  // namespace

absl::StatusOr<CloudEvent> ToCloudEvent(const v1::Event& event, absl::string_view source) {
  const char* suffix = nullptr;
  switch (event.payload_case()) {
    case v1::Event::kUploadCompleted: suffix = "completed"; break;
    case v1::Event::kUploadExpired: suffix = "expired"; break;
    case v1::Event::PAYLOAD_NOT_SET:
      return absl::InvalidArgumentError(
          absl::StrCat("event ", event.cursor(), " has no payload (no CloudEvent for it)"));
  }
  const v1::Upload& upload = stream::UploadOf(event);
  CloudEvent ce;
  ce.id = absl::StrCat(upload.upload_id(), ".", suffix);
  ce.source = source.empty() ? std::string(kDefaultSource) : std::string(source);
  ce.type = absl::StrCat("com.uploadbroker.upload.", suffix);
  ce.subject = stream::ObjectKeyOf(upload);
  ce.time = absl::FromUnixSeconds(event.committed_at().seconds()) +
            absl::Nanoseconds(event.committed_at().nanos());
  ce.sequence = event.cursor();
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = false;  // lowerCamelCase, protobuf's JSON mapping
  auto st = google::protobuf::util::MessageToJsonString(event, &ce.data, options);
  if (!st.ok()) {
    return absl::InternalError(absl::StrCat("event ", event.cursor(),
                                            ": no JSON mapping: ", st.ToString()));
  }
  return ce;
}

std::string StructuredJson(const CloudEvent& event) { return WithData(event); }

std::string BatchJson(const std::vector<CloudEvent>& events) {
  std::string out = "[";
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += WithData(events[i]);
  }
  out.push_back(']');
  return out;
}

}  // namespace uploadbroker::deliver
