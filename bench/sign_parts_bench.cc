// SignUploadParts for a whole 10,000-part plan, timed from the client: one
// CreateMultipartUpload (against oss-sim), then RUNS rounds of signing all
// 10,000 parts in ten calls of 1,000 (the most one call signs), sent one
// after another on one channel; prints each round's wall time, the median
// and the answers' size.
//
//   sign_parts_bench --broker 127.0.0.1:PORT --api-key KEY --bucket B --key K [--runs 5]
#include <algorithm>
#include <cstdio>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/time/clock.h"
#include "client/broker_client.h"
#include "runtime/cli.h"

ABSL_FLAG(std::string, broker, "127.0.0.1:50051", "broker gRPC address");
ABSL_FLAG(std::string, api_key, "", "API key");
ABSL_FLAG(std::string, bucket, "", "bucket");
ABSL_FLAG(std::string, key, "uploads/bench/10k-parts.bin", "object key");
ABSL_FLAG(int, runs, 5, "SignUploadParts calls");

int main(int argc, char** argv) {
  uploadbroker::runtime::ParseCommandLine(
      argc, argv, {"sign_parts_bench",
                   "sign_parts_bench --broker 127.0.0.1:PORT --api-key KEY --bucket B --key K "
                   "[--runs 5]\n"
                   "SignUploadParts for a 10,000-part plan (bench/multipart_bench.sh).",
                   __FILE__});
  uploadbroker::client::BrokerClient client(absl::GetFlag(FLAGS_broker),
                                            absl::GetFlag(FLAGS_api_key), absl::Seconds(60));
  uploadbroker::v1::CreateMultipartUploadRequest create;
  create.set_bucket(absl::GetFlag(FLAGS_bucket));
  create.set_key(absl::GetFlag(FLAGS_key));
  create.set_content_type("application/octet-stream");
  create.set_part_size(100 * 1024);
  create.set_total_size(int64_t{10000} * 100 * 1024);
  auto created = client.CreateMultipartUpload(create);
  if (!created.ok()) {
    std::fprintf(stderr, "CreateMultipartUpload: %s\n", created.status().ToString().c_str());
    return 1;
  }
  std::vector<double> ms;
  size_t bytes = 0;
  for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
    absl::Time start = absl::Now();
    int parts = 0;
    bytes = 0;
    for (int batch = 0; batch < 10; ++batch) {
      uploadbroker::v1::SignUploadPartsRequest sign;
      sign.set_upload_id(created->upload_id());
      for (int n = 1; n <= 1000; ++n) sign.add_part_numbers(batch * 1000 + n);
      auto signed_parts = client.SignUploadParts(sign);
      if (!signed_parts.ok()) {
        std::fprintf(stderr, "SignUploadParts: %s\n", signed_parts.status().ToString().c_str());
        return 1;
      }
      parts += signed_parts->parts_size();
      bytes += signed_parts->ByteSizeLong();
    }
    double elapsed = absl::ToDoubleMilliseconds(absl::Now() - start);
    ms.push_back(elapsed);
    std::printf("run %d: %d parts signed in %.1f ms\n", i + 1, parts, elapsed);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("median: %.1f ms for 10000 parts (%.1f us per part), answers %zu bytes\n",
              ms[ms.size() / 2], ms[ms.size() / 2] * 1000 / 10000, bytes);
  (void)client.AbortUpload(created->upload_id());
  return 0;
}
