// oss-sim: a local Alibaba Cloud OSS for development and tests (see
// service/osssim/simulator.h). Thin main: flags -> SimulatorOptions ->
// Simulator::Create -> wait for SIGINT/SIGTERM.
#include <curl/curl.h>

#include <fstream>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "osssim/simulator.h"
#include "runtime/cli.h"
#include "runtime/log_format.h"
#include "runtime/ready_file.h"
#include "runtime/signals.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:9000", "host:port to serve on (port 0: any free port)");
ABSL_FLAG(std::string, data_dir, "oss-sim-data", "Directory objects are stored in");
ABSL_FLAG(std::string, access_key_id, "", "The AccessKey id the simulator accepts");
ABSL_FLAG(std::string, access_key_secret, "", "The AccessKey secret the simulator accepts");
ABSL_FLAG(std::string, access_key_id_file, "", "File holding the AccessKey id (instead of --access-key-id)");
ABSL_FLAG(std::string, access_key_secret_file, "", "File holding the secret (instead of --access-key-secret)");
ABSL_FLAG(std::string, key_file, "",
          "RSA private key PEM that signs callbacks; made if absent, public PEM written to "
          "FILE.pub (empty: a fresh in-memory key)");
ABSL_FLAG(std::string, vhost_domain, "localhost",
          "Host suffix for virtual-hosted buckets (<bucket>.<domain>); other Hosts mean path-style");
ABSL_FLAG(int64_t, max_body_bytes, 16 * 1024 * 1024,
          "Largest request body held in memory (CompleteMultipartUpload XML and the like) in bytes");
ABSL_FLAG(int64_t, max_object_bytes, int64_t{5} * 1024 * 1024 * 1024,
          "Largest streamed body (PutObject, UploadPart, PostObject's file) in bytes; "
          "streamed to disk, never held in memory");
ABSL_FLAG(std::string, callback_ca_file, "",
          "PEM CA file trusted for https:// callback URLs instead of the system's (a test CA; development only)");
ABSL_FLAG(std::string, ready_file, "", "Once serving, write {\"port\":N} to this file");
ABSL_FLAG(uploadbroker::runtime::LogFormat, log_format, uploadbroker::runtime::LogFormat::kText,
          uploadbroker::runtime::kLogFormatHelp);

namespace {

std::string FlagOrFile(const std::string& value, const std::string& file) {
  if (!value.empty() || file.empty()) return value;
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(s.str()));
}

}  // namespace

namespace runtime = uploadbroker::runtime;

int main(int argc, char** argv) {
  runtime::ParseCommandLine(
      argc, argv,
      {"oss-sim",
       "oss-sim --access-key-id ID --access-key-secret SECRET [--listen 127.0.0.1:9000]\n"
       "A local OSS: PostObject, PutObject, HeadObject, multipart upload and upload callbacks.",
       __FILE__});
  runtime::SetLogFormat(absl::GetFlag(FLAGS_log_format));
  curl_global_init(CURL_GLOBAL_DEFAULT);
  runtime::TerminationSignals signals;  // before any thread starts

  uploadbroker::osssim::SimulatorOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.key_file = absl::GetFlag(FLAGS_key_file);
  options.vhost_domain = absl::GetFlag(FLAGS_vhost_domain);
  options.callback_ca_file = absl::GetFlag(FLAGS_callback_ca_file);
  options.max_body_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_body_bytes));
  options.max_object_bytes = static_cast<uint64_t>(absl::GetFlag(FLAGS_max_object_bytes));
  options.credentials.access_key_id =
      FlagOrFile(absl::GetFlag(FLAGS_access_key_id), absl::GetFlag(FLAGS_access_key_id_file));
  options.credentials.access_key_secret = FlagOrFile(absl::GetFlag(FLAGS_access_key_secret),
                                                     absl::GetFlag(FLAGS_access_key_secret_file));
  auto sim = uploadbroker::osssim::Simulator::Create(options);
  if (!sim.ok()) {
    spdlog::critical("cannot start: {}", sim.status().ToString());
    return 2;
  }
  spdlog::info("oss-sim serving on 127.0.0.1:{} (data {}, public key {})", (*sim)->port(),
               options.data_dir, (*sim)->public_key_url());
  const std::string ready_file = absl::GetFlag(FLAGS_ready_file);
  if (!ready_file.empty()) {
    absl::Status written = runtime::WriteReadyFile(ready_file, {{"port", (*sim)->port()}});
    if (!written.ok()) {
      spdlog::critical("--ready-file: {}", written.ToString());
      return 2;
    }
  }
  spdlog::info("received signal {}, stopping", signals.Wait());
  (*sim)->Shutdown();
  curl_global_cleanup();
  return 0;
}
