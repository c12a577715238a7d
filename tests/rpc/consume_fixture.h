// Helpers for the durable-subscription tests: completions made the way OSS
// makes them (a policy, then a signed callback), and a Consume stream
// driven from the test.
#ifndef UPLOADBROKER_TESTS_RPC_CONSUME_FIXTURE_H_
#define UPLOADBROKER_TESTS_RPC_CONSUME_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/broker_client.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/callback/test_signer.h"
#include "tests/http/raw_client.h"
#include "tests/testing/broker_yaml.h"

namespace uploadbroker::testing {

// Issues a policy for `key` in `bucket` on grpc_port and sends the callback
// OSS would send to http_port (path /cb). The upload id, or "" on failure.
inline std::string CompleteUpload(client::BrokerClient& client, int http_port,
                                  const callback::TestSigner& signer, const std::string& bucket,
                                  const std::string& key) {
  v1::CreatePostPolicyRequest req;
  req.set_bucket(bucket);
  req.set_key(key);
  auto resp = client.CreatePostPolicy(req);
  EXPECT_TRUE(resp.ok()) << resp.status();
  if (!resp.ok()) return "";
  std::string body = nlohmann::json{{"upload_id", resp->upload_id()}, {"bucket", bucket},
                                    {"object", key}, {"etag", "\"E\""}, {"size", 5},
                                    {"mimeType", "image/png"}}
                         .dump();
  std::string request = SignedCallback(signer, "/cb", "/cb", body);
  auto c = http::RawClient::Connect(http_port);
  if (c == nullptr || !c->Send(request)) return "";
  auto reply = c->ReadResponse(absl::Seconds(30));
  EXPECT_TRUE(reply.has_value());
  if (!reply.has_value() || reply->status != 200) return "";
  return resp->upload_id();
}

// A Consume stream read by the test.
class ConsumeStream {
 public:
  ConsumeStream(const std::string& target, const std::string& api_key,
                const std::string& subscription, uint32_t max_in_flight = 0)
      : stub_(v1::UploadBroker::NewStub(
            grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))) {
    if (!api_key.empty()) ctx_.AddMetadata("authorization", "Bearer " + api_key);
    stream_ = stub_->Consume(&ctx_);
    v1::ConsumeRequest first;
    first.set_subscription(subscription);
    first.set_max_in_flight(max_in_flight);
    stream_->Write(first);
  }
  ~ConsumeStream() {
    if (!finished_) {
      ctx_.TryCancel();
      Finish();
    }
  }

  // The next message's deliveries (empty when the stream ended).
  std::vector<v1::Delivery> Next() {
    v1::ConsumeResponse resp;
    if (!stream_->Read(&resp)) return {};
    return {resp.deliveries().begin(), resp.deliveries().end()};
  }
  // Reads until `n` deliveries arrived (or the stream ended).
  std::vector<v1::Delivery> Take(size_t n) {
    std::vector<v1::Delivery> out;
    while (out.size() < n) {
      std::vector<v1::Delivery> more = Next();
      if (more.empty()) {
        ADD_FAILURE() << "the stream ended after " << out.size() << " of " << n
                      << " deliveries: " << WaitForEnd().error_message();
        break;
      }
      out.insert(out.end(), more.begin(), more.end());
    }
    return out;
  }
  bool Send(const v1::ConsumeRequest& req) { return stream_->Write(req); }
  bool Ack(const std::vector<uint64_t>& cursors) {
    v1::ConsumeRequest req;
    for (uint64_t c : cursors) req.add_ack_cursors(c);
    return Send(req);
  }
  void Cancel() { ctx_.TryCancel(); }
  // Half-closes and waits for the status.
  grpc::Status Finish() {
    if (finished_) return status_;
    stream_->WritesDone();
    v1::ConsumeResponse drain;
    while (stream_->Read(&drain)) {
    }
    status_ = stream_->Finish();
    finished_ = true;
    return status_;
  }
  // Reads until the broker ends the stream; its status.
  grpc::Status WaitForEnd() {
    v1::ConsumeResponse drain;
    while (stream_->Read(&drain)) {
    }
    status_ = stream_->Finish();
    finished_ = true;
    return status_;
  }

 private:
  std::unique_ptr<v1::UploadBroker::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ConsumeRequest, v1::ConsumeResponse>> stream_;
  bool finished_ = false;
  grpc::Status status_;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_RPC_CONSUME_FIXTURE_H_
