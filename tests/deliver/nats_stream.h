// JetStreamClient: the test's own view of a NATS server, with the nats.c
// client: create a stream, read back every message a stream holds (body and
// headers), count them. Independent of NatsTarget (another connection, the
// plain JetStream API). One test thread owns one.
#ifndef UPLOADBROKER_TESTS_DELIVER_NATS_STREAM_H_
#define UPLOADBROKER_TESTS_DELIVER_NATS_STREAM_H_

#include <nats/nats.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace uploadbroker::testing {

struct StoredMessage {
  uint64_t seq = 0;
  std::string subject;
  std::string data;
  std::map<std::string, std::string> headers;
};

class JetStreamClient {
 public:
  JetStreamClient() = default;
  ~JetStreamClient() {
    if (js_ != nullptr) jsCtx_Destroy(js_);
    if (nc_ != nullptr) natsConnection_Destroy(nc_);
  }
  JetStreamClient(const JetStreamClient&) = delete;
  JetStreamClient& operator=(const JetStreamClient&) = delete;

  absl::Status Connect(const std::string& url) {
    natsStatus s = natsConnection_ConnectTo(&nc_, url.c_str());
    if (s == NATS_OK) s = natsConnection_JetStream(&js_, nc_, nullptr);
    return Check(s, static_cast<jsErrCode>(0), "connect");
  }

  // A file-backed stream capturing `subject`, dropping a message whose
  // Nats-Msg-Id it saw within `duplicates`.
  absl::Status AddStream(const std::string& name, const std::string& subject,
                         absl::Duration duplicates = absl::Minutes(2)) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name.c_str();
    const char* subjects[] = {subject.c_str()};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = absl::ToInt64Nanoseconds(duplicates);
    jsErrCode code = static_cast<jsErrCode>(0);
    jsStreamInfo* info = nullptr;
    natsStatus s = js_AddStream(&info, js_, &cfg, nullptr, &code);
    if (info != nullptr) jsStreamInfo_Destroy(info);
    return Check(s, code, "add stream");
  }

  absl::StatusOr<uint64_t> Count(const std::string& stream) {
    jsStreamInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, &code);
    if (s != NATS_OK) return Check(s, code, "stream info");
    uint64_t n = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    return n;
  }

  // Every message of `stream`, in stream order.
  absl::StatusOr<std::vector<StoredMessage>> Messages(const std::string& stream) {
    jsStreamInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, &code);
    if (s != NATS_OK) return Check(s, code, "stream info");
    const uint64_t first = info->State.FirstSeq, last = info->State.LastSeq;
    const uint64_t count = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    std::vector<StoredMessage> out;
    for (uint64_t seq = first; count > 0 && seq <= last; ++seq) {
      natsMsg* msg = nullptr;
      s = js_GetMsg(&msg, js_, stream.c_str(), seq, nullptr, &code);
      if (s == NATS_NOT_FOUND) continue;
      if (s != NATS_OK) return Check(s, code, "get message");
      StoredMessage m;
      m.seq = seq;
      m.subject = natsMsg_GetSubject(msg);
      m.data.assign(natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
      const char** keys = nullptr;
      int n = 0;
      if (natsMsgHeader_Keys(msg, &keys, &n) == NATS_OK) {
        for (int i = 0; i < n; ++i) {
          const char* value = nullptr;
          if (natsMsgHeader_Get(msg, keys[i], &value) == NATS_OK) m.headers[keys[i]] = value;
        }
        free(keys);
      }
      natsMsg_Destroy(msg);
      out.push_back(std::move(m));
    }
    return out;
  }

  natsConnection* connection() { return nc_; }
  jsCtx* js() { return js_; }

 private:
  static absl::Status Check(natsStatus s, jsErrCode code, const char* what) {
    if (s == NATS_OK) return absl::OkStatus();
    return absl::InternalError(absl::StrCat(what, ": ", natsStatus_GetText(s), " (JetStream error ",
                                            static_cast<int>(code), ")"));
  }

  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_DELIVER_NATS_STREAM_H_
