// Helpers for tests that run a real broker and send it OSS callbacks signed
// with a throwaway key the broker trusts through explicit config.
#ifndef UPLOADBROKER_TESTS_TESTING_BROKER_YAML_H_
#define UPLOADBROKER_TESTS_TESTING_BROKER_YAML_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "common/encoding.h"
#include "tests/callback/test_signer.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::testing {

// The x-oss-pub-key-url the tests' simulator key is trusted under. Nothing
// listens there; the key comes from a file.
inline constexpr char kTestKeyUrl[] = "http://127.0.0.1:9/sim_pub_key.pem";

// The development switch and the listen, callback, ledger and credentials sections of a broker config
// for `dir` (ports 0, AccessKey files written there), trusting `signer`.
// `callback_extra` is appended inside the callback map (YAML flow entries).
// The callbacks these tests send describe objects no bucket holds (and the
// buckets' endpoints are not reachable), so confirmation is turned off
// explicitly; tests of confirmation run oss-sim (tests/ingest/confirm_e2e_test.cc).
inline std::string BrokerYamlHead(const TempDir& dir, const callback::TestSigner& signer,
                                  const std::string& callback_url,
                                  const std::string& callback_extra = "") {
  return absl::StrCat(
      "development: true\n",  // the trusted key is named by an http:// URL
      // These tests read /metrics from the callback port (the explicit switch).
      "listen: {grpc: \"127.0.0.1:0\", http: \"127.0.0.1:0\", metrics_on_public_port: true}\n",
      "callback: {url: \"", callback_url, "\", trusted_key_url: \"", kTestKeyUrl,
      "\", trusted_key_file: ", dir.WriteFile("sim.pem", signer.PublicPem()),
      ", confirm_completions: false", callback_extra, "}\n",
      "ledger: {path: ", dir.File("ledger.db"), "}\n",
      "credentials: {access_key_id_file: ", dir.WriteFile("ak", "LTAI5tTestId"),
      ", access_key_secret_file: ", dir.WriteFile("sk", "test-secret"), "}\n");
}

// A raw HTTP/1.1 callback request as OSS sends it: POST `target`, signed
// over `signed_path_and_query` + "\n" + `body`.
inline std::string SignedCallback(const callback::TestSigner& signer, const std::string& target,
                                  const std::string& signed_path_and_query, const std::string& body,
                                  const std::string& content_type = "application/json",
                                  const std::string& key_url = kTestKeyUrl) {
  return absl::StrCat(
      "POST ", target, " HTTP/1.1\r\nHost: broker.example.com\r\nConnection: close\r\n",
      "Authorization: ", signer.Authorization(absl::StrCat(signed_path_and_query, "\n", body)), "\r\n",
      "x-oss-pub-key-url: ", common::Base64Encode(key_url), "\r\n",
      "Content-Type: ", content_type, "\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
}

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_TESTING_BROKER_YAML_H_
