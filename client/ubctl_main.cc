// ubctl: command-line client for upload-broker.
//
//   ubctl [flags] policy  --bucket B [--key K | --key-prefix P] ...
//   ubctl [flags] presign --bucket B --key K --content-type T ...
//   ubctl [flags] upload FILE --bucket B [--key K | --key-prefix P] [--presigned]
//                        [--content-type T] [--meta k=v] [--v1] [--allow-overwrite]
//                        [--multipart] [--multipart-threshold N] [--part-size N]
//                        [--parallel N] [--retries N] [--state-file F] [--ttl S]
//   ubctl [flags] multipart list [FILE] [--bucket B] [--key-prefix P]
//   ubctl [flags] multipart abort UPLOAD_ID|FILE
//   ubctl [flags] get ID
//   ubctl [flags] list [--bucket B] [--key-prefix P]
//   ubctl [flags] watch [--buckets a,b] [--key-prefixes p,q] [--meta k=v] [--callers c]
//                       [--types completed,expired] [--start latest|earliest]
//                       [--cursor N] [--cursor-file F] [--max-receive-bytes N]
//   ubctl [flags] subscription create NAME [watch's filter flags] [--start S | --cursor N]
//                 [--ack-deadline S] [--max-attempts N]
//   ubctl [flags] subscription get NAME | list | delete NAME
//   ubctl [flags] consume NAME [--exec CMD] [--count N] [--max-in-flight N]
//   ubctl [flags] deadletters list NAME | redrive NAME (CURSOR... | --all)
//   ubctl [flags] verify-callback (--request-file F | --path-and-query Q ...)
//
// Flags are spelled in kebab case (--content-type); snake case
// (--content_type) works too. `ubctl --help` lists them all.
//
// Results print as JSON on stdout; errors print "error: CODE: message" on
// stderr with exit status 1 (2 for usage errors).
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "client/broker_client.h"
#include "client/api_key_file.h"
#include "client/channel.h"
#include "client/consume.h"
#include "client/multipart_admin.h"
#include "client/upload.h"
#include "client/verify_callback.h"
#include "client/watch.h"
#include "google/protobuf/util/json_util.h"
#include "runtime/cli.h"

ABSL_FLAG(std::string, broker, "", "Broker gRPC address (default $UB_BROKER or localhost:50051)");
ABSL_FLAG(std::string, api_key, "",
          "API key (default $UB_API_KEY). Visible to every local user in `ps` while ubctl runs: "
          "prefer --api-key-file or $UB_API_KEY");
ABSL_FLAG(std::string, api_key_file, "",
          "File holding the API key (one line; a trailing newline is ignored; at most 64 KiB). "
          "Preferred: the key stays off the command line");
ABSL_FLAG(bool, tls, false, "Connect to the broker over TLS (implied by --ca, --cert, --cert-key)");
ABSL_FLAG(std::string, ca, "", "TLS: PEM file of the CA(s) to trust for the broker's certificate (default: system roots)");
ABSL_FLAG(std::string, cert, "", "Mutual TLS: PEM client certificate chain (with --cert-key); may replace --api-key");
// Not --key: that flag is the object key.
ABSL_FLAG(std::string, cert_key, "", "Mutual TLS: PEM private key of --cert");
ABSL_FLAG(std::string, bucket, "", "Bucket name");
ABSL_FLAG(std::string, key, "", "Exact object key");
ABSL_FLAG(std::string, key_prefix, "", "Key prefix the uploader may choose under (policy)");
ABSL_FLAG(std::string, content_type, "", "Content-Type (presign: required; policy: comma-separated list)");
ABSL_FLAG(int64_t, min_size, 0, "Smallest accepted size in bytes (policy)");
ABSL_FLAG(int64_t, max_size, 0, "Largest accepted size in bytes (policy)");
ABSL_FLAG(int64_t, content_length, 0, "Exact size in bytes, signed into the URL (presign)");
ABSL_FLAG(int64_t, ttl, 0,
          "Validity in seconds (default: the broker's default, clamped to the caller's max_ttl). "
          "upload --multipart: it bounds the whole upload, resumes included; an upload not "
          "completed in time starts over");
ABSL_FLAG(std::vector<std::string>, meta, {}, "Metadata as k=v,k=v");
ABSL_FLAG(bool, v1, false, "Sign with OSS signature V1 instead of V4");
ABSL_FLAG(bool, allow_overwrite, false, "policy, presign, upload: let the upload replace an existing object");
ABSL_FLAG(std::string, state, "", "list: only this state (pending, completed, expired)");
ABSL_FLAG(int32_t, page_size, 0, "list: page size");
ABSL_FLAG(std::string, path_and_query, "", "verify-callback: request path and query as OSS sent them");
ABSL_FLAG(std::string, callback_path, "", "verify-callback: public callback path OSS signed (default: from --path-and-query)");
ABSL_FLAG(std::string, authorization, "", "verify-callback: Authorization header value");
ABSL_FLAG(std::string, pub_key_url, "", "verify-callback: x-oss-pub-key-url header value (base64) or plain URL");
ABSL_FLAG(std::string, signature_version, "", "verify-callback: x-oss-signature-version header value");
ABSL_FLAG(std::string, body_file, "", "verify-callback: file holding the raw body");
ABSL_FLAG(std::string, request_file, "", "verify-callback: raw captured HTTP request (instead of the above)");
ABSL_FLAG(std::string, trusted_key_file, "", "verify-callback: extra trusted public key PEM (simulator)");
ABSL_FLAG(std::string, trusted_key_url, "", "verify-callback: the URL that names --trusted-key-file");
ABSL_FLAG(bool, presigned, false, "upload: PUT to a presigned URL instead of a POST form");
ABSL_FLAG(bool, multipart, false,
          "upload: multipart upload (parallel parts, retries, resume by running it again)");
ABSL_FLAG(int64_t, multipart_threshold, int64_t{64} << 20,
          "upload: files larger than this many bytes go multipart automatically (0: only above "
          "5 GiB, the most one PUT or POST carries); smaller files are streamed, not read into "
          "memory");
ABSL_FLAG(int64_t, part_size, 0, "upload: multipart part size in bytes (0: the broker picks)");
ABSL_FLAG(int32_t, parallel, 4, "upload: multipart parts in flight at once");
ABSL_FLAG(int32_t, retries, 3, "upload: further attempts per multipart part");
ABSL_FLAG(std::string, state_file, "",
          "upload --multipart, multipart: where the resume state is kept (default FILE.ubupload, "
          "or $XDG_STATE_HOME/ubctl/ when FILE's directory is not writable)");
ABSL_FLAG(std::string, page_token, "", "list: page token");
ABSL_FLAG(std::vector<std::string>, buckets, {}, "watch: only these buckets (a,b; --bucket adds one)");
ABSL_FLAG(std::vector<std::string>, key_prefixes, {}, "watch: only keys under any of these prefixes (p1,p2)");
ABSL_FLAG(std::vector<std::string>, callers, {}, "watch: only uploads issued to these callers");
ABSL_FLAG(std::vector<std::string>, types, {}, "watch: only these event types (completed,expired)");
ABSL_FLAG(std::string, start, "latest", "watch: where to start without a cursor (latest, earliest)");
ABSL_FLAG(int64_t, cursor, -1, "watch: start after this cursor");
ABSL_FLAG(std::string, cursor_file, "", "watch: resume from and save the cursor to this file");
ABSL_FLAG(int32_t, max_receive_bytes, 0,
          "watch: largest message to accept (0: gRPC's 4 MiB; the broker sends at most 1 MiB)");

ABSL_FLAG(std::string, exec, "",
          "consume: run this shell command per event (CloudEvents JSON on stdin); exit 0 acks "
          "the event, anything else nacks it");
ABSL_FLAG(int64_t, count, 0, "consume: stop after this many events (0: run until stopped)");
ABSL_FLAG(int32_t, max_in_flight, 0,
          "consume: events leased at once (default 100 when printing, 1 with --exec)");
ABSL_FLAG(std::string, source, "urn:upload-broker",
          "consume: the CloudEvents `source` printed (the broker's deliveries.source)");
ABSL_FLAG(int32_t, ack_deadline, 0, "subscription create: ack deadline in seconds (default 60)");
ABSL_FLAG(int32_t, max_attempts, 0,
          "subscription create: delivery attempts before an event is a dead letter (default 10)");
ABSL_FLAG(bool, all, false, "deadletters redrive: every dead letter of the subscription");

namespace {

using uploadbroker::client::BrokerClient;
namespace v1 = uploadbroker::v1;

constexpr char kUsage[] =
    "ubctl [flags] COMMAND [ARGS]\n"
    "Commands:\n"
    "  policy    issue a signed PostObject form (JSON on stdout)\n"
    "  presign   issue a presigned PUT URL with the headers to send\n"
    "  upload FILE  upload a file through the broker's policy (or --presigned URL, or\n"
    "            --multipart: parallel presigned parts; run it again to resume: parts\n"
    "            OSS holds are kept only if their MD5 matches the file, a file whose\n"
    "            size or mtime changed starts over and the old upload is aborted)\n"
    "  multipart list [FILE]  pending multipart uploads and the parts OSS holds (with\n"
    "            FILE: the one its resume state names)\n"
    "  multipart abort UPLOAD_ID|FILE  abort one; OSS deletes its parts (FILE: the\n"
    "            upload its resume state names, and the state file is removed)\n"
    "  get ID    show one upload\n"
    "  list      list uploads in your scope\n"
    "  verify-callback  check an OSS callback's signature and say why it fails\n"
    "  watch     print finished uploads as they happen, one JSON line each\n"
    "  subscription create|get|list|delete  durable subscriptions kept by the broker\n"
    "  consume NAME  print a subscription's events (CloudEvents JSON lines) and ack\n"
    "            them, or --exec CMD per event: ack on exit 0, nack otherwise\n"
    "  deadletters list|redrive NAME  events set aside after max attempts\n"
    "The broker address comes from --broker or $UB_BROKER, the API key from\n"
    "--api-key-file or $UB_API_KEY (or --api-key, which `ps` shows to every local\n"
    "user). --tls (with --ca) connects over TLS; --cert and\n"
    "--cert-key add a client certificate (mutual TLS).";

std::string FromFlagOrEnv(const std::string& flag, const char* env, const char* def) {
  if (!flag.empty()) return flag;
  const char* v = std::getenv(env);
  return v != nullptr && *v != '\0' ? v : def;
}

int PrintJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  std::cout << out;
  return 0;
}

int Fail(const absl::Status& st) {
  std::cerr << "error: " << absl::StatusCodeToString(st.code()) << ": " << st.message() << "\n";
  return 1;
}

template <typename Map>
int FillMetadata(Map* md) {
  for (const std::string& kv : absl::GetFlag(FLAGS_meta)) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first.empty()) {
      std::cerr << "error: --meta entries must be key=value\n";
      return 2;
    }
    (*md)[p.first] = p.second;
  }
  return 0;
}

v1::SignatureVersion Version() {
  return absl::GetFlag(FLAGS_v1) ? v1::SIGNATURE_VERSION_V1 : v1::SIGNATURE_VERSION_V4;
}

int Policy(BrokerClient& c) {
  v1::CreatePostPolicyRequest req;
  req.set_bucket(absl::GetFlag(FLAGS_bucket));
  req.set_key(absl::GetFlag(FLAGS_key));
  req.set_key_prefix(absl::GetFlag(FLAGS_key_prefix));
  req.set_min_size(absl::GetFlag(FLAGS_min_size));
  req.set_max_size(absl::GetFlag(FLAGS_max_size));
  std::string types = absl::GetFlag(FLAGS_content_type);
  if (!types.empty()) {
    for (absl::string_view t : absl::StrSplit(types, ',')) req.add_content_types(std::string(t));
  }
  req.set_ttl_seconds(absl::GetFlag(FLAGS_ttl));
  req.set_signature_version(Version());
  req.set_allow_overwrite(absl::GetFlag(FLAGS_allow_overwrite));
  if (int rc = FillMetadata(req.mutable_metadata())) return rc;
  auto resp = c.CreatePostPolicy(req);
  return resp.ok() ? PrintJson(*resp) : Fail(resp.status());
}

int Presign(BrokerClient& c) {
  v1::CreatePresignedPutRequest req;
  req.set_bucket(absl::GetFlag(FLAGS_bucket));
  req.set_key(absl::GetFlag(FLAGS_key));
  req.set_content_type(absl::GetFlag(FLAGS_content_type));
  req.set_content_length(absl::GetFlag(FLAGS_content_length));
  req.set_ttl_seconds(absl::GetFlag(FLAGS_ttl));
  req.set_signature_version(Version());
  req.set_allow_overwrite(absl::GetFlag(FLAGS_allow_overwrite));
  if (int rc = FillMetadata(req.mutable_metadata())) return rc;
  auto resp = c.CreatePresignedPut(req);
  return resp.ok() ? PrintJson(*resp) : Fail(resp.status());
}

int List(BrokerClient& c) {
  v1::ListUploadsRequest req;
  if (!absl::GetFlag(FLAGS_bucket).empty()) req.add_buckets(absl::GetFlag(FLAGS_bucket));
  req.set_key_prefix(absl::GetFlag(FLAGS_key_prefix));
  std::string state = absl::GetFlag(FLAGS_state);
  if (state == "pending") req.set_state(v1::UPLOAD_STATE_PENDING);
  else if (state == "completed") req.set_state(v1::UPLOAD_STATE_COMPLETED);
  else if (state == "expired") req.set_state(v1::UPLOAD_STATE_EXPIRED);
  else if (!state.empty()) {
    std::cerr << "error: --state must be pending, completed or expired\n";
    return 2;
  }
  req.set_page_size(absl::GetFlag(FLAGS_page_size));
  req.set_page_token(absl::GetFlag(FLAGS_page_token));
  auto resp = c.ListUploads(req);
  return resp.ok() ? PrintJson(*resp) : Fail(resp.status());
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args =
      uploadbroker::runtime::ParseCommandLine(argc, argv, {"ubctl", kUsage, __FILE__});
  if (args.size() < 2) {
    std::cerr << kUsage << "\n";
    return 2;
  }
  std::string cmd = args[1];
  if (cmd == "verify-callback") {
    uploadbroker::client::VerifyCallbackArgs a;
    a.path_and_query = absl::GetFlag(FLAGS_path_and_query);
    a.callback_path = absl::GetFlag(FLAGS_callback_path);
    a.authorization = absl::GetFlag(FLAGS_authorization);
    a.pub_key_url = absl::GetFlag(FLAGS_pub_key_url);
    a.signature_version = absl::GetFlag(FLAGS_signature_version);
    a.body_file = absl::GetFlag(FLAGS_body_file);
    a.request_file = absl::GetFlag(FLAGS_request_file);
    a.trusted_key_file = absl::GetFlag(FLAGS_trusted_key_file);
    a.trusted_key_url = absl::GetFlag(FLAGS_trusted_key_url);
    return uploadbroker::client::VerifyCallback(a, std::cout, std::cerr);
  }
  uploadbroker::client::ChannelSecurity security;
  security.tls = absl::GetFlag(FLAGS_tls);
  security.ca_file = absl::GetFlag(FLAGS_ca);
  security.cert_file = absl::GetFlag(FLAGS_cert);
  security.key_file = absl::GetFlag(FLAGS_cert_key);
  auto credentials = uploadbroker::client::MakeChannelCredentials(security);
  if (!credentials.ok()) {
    std::cerr << "error: " << credentials.status().message() << "\n";
    return 2;
  }
  std::string api_key = FromFlagOrEnv(absl::GetFlag(FLAGS_api_key), "UB_API_KEY", "");
  if (!absl::GetFlag(FLAGS_api_key_file).empty()) {
    if (!absl::GetFlag(FLAGS_api_key).empty()) {
      std::cerr << "error: give one of --api-key and --api-key-file\n";
      return 2;
    }
    auto from_file = uploadbroker::client::ReadApiKeyFile(absl::GetFlag(FLAGS_api_key_file));
    if (!from_file.ok()) {
      std::cerr << "error: " << from_file.status().message() << "\n";
      return 2;
    }
    api_key = *std::move(from_file);
  } else if (!absl::GetFlag(FLAGS_api_key).empty()) {
    std::cerr << "note: --api-key shows in `ps` to every local user; prefer --api-key-file PATH "
                 "or $UB_API_KEY\n";
  }
  BrokerClient client(FromFlagOrEnv(absl::GetFlag(FLAGS_broker), "UB_BROKER", "localhost:50051"),
                      *credentials, api_key);
  if (cmd == "upload") {
    uploadbroker::client::UploadArgs a;
    a.target = FromFlagOrEnv(absl::GetFlag(FLAGS_broker), "UB_BROKER", "localhost:50051");
    a.credentials = *credentials;
    a.api_key = api_key;
    a.file = args.size() > 2 ? args[2] : "";
    a.bucket = absl::GetFlag(FLAGS_bucket);
    a.key = absl::GetFlag(FLAGS_key);
    a.key_prefix = absl::GetFlag(FLAGS_key_prefix);
    a.content_type = absl::GetFlag(FLAGS_content_type);
    a.metadata = absl::GetFlag(FLAGS_meta);
    a.ttl_seconds = absl::GetFlag(FLAGS_ttl);
    a.max_size = absl::GetFlag(FLAGS_max_size);
    a.presigned = absl::GetFlag(FLAGS_presigned);
    a.v1 = absl::GetFlag(FLAGS_v1);
    a.multipart = absl::GetFlag(FLAGS_multipart);
    a.multipart_threshold = absl::GetFlag(FLAGS_multipart_threshold);
    a.part_size = absl::GetFlag(FLAGS_part_size);
    a.parallel = absl::GetFlag(FLAGS_parallel);
    a.retries = absl::GetFlag(FLAGS_retries);
    a.state_file = absl::GetFlag(FLAGS_state_file);
    a.allow_overwrite = absl::GetFlag(FLAGS_allow_overwrite);
    a.progress = isatty(STDERR_FILENO) != 0;
    return uploadbroker::client::Upload(a, std::cout, std::cerr);
  }
  if (cmd == "watch") {
    uploadbroker::client::WatchArgs a;
    a.target = FromFlagOrEnv(absl::GetFlag(FLAGS_broker), "UB_BROKER", "localhost:50051");
    a.credentials = *credentials;
    a.api_key = api_key;
    a.buckets = absl::GetFlag(FLAGS_buckets);
    if (!absl::GetFlag(FLAGS_bucket).empty()) a.buckets.push_back(absl::GetFlag(FLAGS_bucket));
    a.key_prefixes = absl::GetFlag(FLAGS_key_prefixes);
    if (!absl::GetFlag(FLAGS_key_prefix).empty()) a.key_prefixes.push_back(absl::GetFlag(FLAGS_key_prefix));
    a.metadata = absl::GetFlag(FLAGS_meta);
    a.callers = absl::GetFlag(FLAGS_callers);
    a.types = absl::GetFlag(FLAGS_types);
    a.start = absl::GetFlag(FLAGS_start);
    a.cursor = absl::GetFlag(FLAGS_cursor);
    a.cursor_file = absl::GetFlag(FLAGS_cursor_file);
    a.max_receive_bytes = absl::GetFlag(FLAGS_max_receive_bytes);
    return uploadbroker::client::Watch(a, std::cout, std::cerr);
  }
  if (cmd == "multipart") {
    const std::string sub = args.size() > 2 ? args[2] : "";
    const std::string what = args.size() > 3 ? args[3] : "";
    if (sub == "list" && args.size() <= 4) {
      return uploadbroker::client::ListMultipart(
          client, absl::GetFlag(FLAGS_bucket), absl::GetFlag(FLAGS_key_prefix), what,
          absl::GetFlag(FLAGS_state_file), std::cout, std::cerr);
    }
    if (sub == "abort" && args.size() == 4) {
      return uploadbroker::client::AbortMultipart(client, what, absl::GetFlag(FLAGS_state_file),
                                                  std::cout, std::cerr);
    }
    std::cerr << "usage: ubctl multipart list [FILE] | ubctl multipart abort UPLOAD_ID|FILE\n";
    return 2;
  }
  if (cmd == "subscription") {
    std::vector<std::string> words(args.begin() + 2, args.end());
    v1::CreateSubscriptionRequest create;
    if (!words.empty() && words[0] == "create") {
      uploadbroker::client::WatchArgs w;
      w.buckets = absl::GetFlag(FLAGS_buckets);
      if (!absl::GetFlag(FLAGS_bucket).empty()) w.buckets.push_back(absl::GetFlag(FLAGS_bucket));
      w.key_prefixes = absl::GetFlag(FLAGS_key_prefixes);
      if (!absl::GetFlag(FLAGS_key_prefix).empty()) {
        w.key_prefixes.push_back(absl::GetFlag(FLAGS_key_prefix));
      }
      w.metadata = absl::GetFlag(FLAGS_meta);
      w.callers = absl::GetFlag(FLAGS_callers);
      w.types = absl::GetFlag(FLAGS_types);
      w.start = absl::GetFlag(FLAGS_start);
      w.cursor = absl::GetFlag(FLAGS_cursor);
      // The same filter and start flags as watch.
      auto sub = uploadbroker::client::WatchRequest(w);
      if (!sub.ok()) {
        std::cerr << "error: " << sub.status().message() << "\n";
        return 2;
      }
      *create.mutable_filter() = sub->filter();
      create.set_start(sub->start());
      create.set_after_cursor(sub->after_cursor());
      if (absl::GetFlag(FLAGS_ack_deadline) < 0 || absl::GetFlag(FLAGS_max_attempts) < 0) {
        std::cerr << "error: --ack-deadline and --max-attempts must not be negative\n";
        return 2;
      }
      create.set_ack_deadline_seconds(static_cast<uint32_t>(absl::GetFlag(FLAGS_ack_deadline)));
      create.set_max_delivery_attempts(static_cast<uint32_t>(absl::GetFlag(FLAGS_max_attempts)));
    }
    return uploadbroker::client::SubscriptionCommand(client, words, create, std::cout, std::cerr);
  }
  if (cmd == "consume") {
    if (args.size() != 3 || absl::GetFlag(FLAGS_max_in_flight) < 0) {
      std::cerr << "usage: ubctl consume NAME [--exec CMD] [--count N] [--max-in-flight N]\n";
      return 2;
    }
    uploadbroker::client::ConsumeArgs a;
    a.subscription = args[2];
    a.exec = absl::GetFlag(FLAGS_exec);
    a.count = absl::GetFlag(FLAGS_count);
    a.max_in_flight = static_cast<uint32_t>(absl::GetFlag(FLAGS_max_in_flight));
    a.source = absl::GetFlag(FLAGS_source);
    return uploadbroker::client::Consume(client, a, std::cout, std::cerr);
  }
  if (cmd == "deadletters") {
    std::vector<std::string> words(args.begin() + 2, args.end());
    return uploadbroker::client::DeadLettersCommand(client, words, absl::GetFlag(FLAGS_all),
                                                    absl::GetFlag(FLAGS_page_size),
                                                    absl::GetFlag(FLAGS_page_token), std::cout,
                                                    std::cerr);
  }
  if (cmd == "policy") return Policy(client);
  if (cmd == "presign") return Presign(client);
  if (cmd == "list") return List(client);
  if (cmd == "get") {
    if (args.size() != 3) {
      std::cerr << "usage: ubctl get UPLOAD_ID\n";
      return 2;
    }
    auto resp = client.GetUpload(args[2]);
    return resp.ok() ? PrintJson(*resp) : Fail(resp.status());
  }
  std::cerr << "unknown command '" << cmd << "'\n" << kUsage << "\n";
  return 2;
}
