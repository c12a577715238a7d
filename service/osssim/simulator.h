// Simulator: a local stand-in for Alibaba Cloud OSS for the operations the
// broker brokers (oss-protocol.md §1-5): PostObject, PutObject (presigned
// V1/V4 or V1/V4 Authorization header; both honour x-oss-forbid-overwrite
// with 409 FileAlreadyExists, storing nothing and sending no callback),
// HeadObject/GetObject, GetObjectACL (x-oss-object-acl is stored as sent,
// and refused unless one of OSS's four values), ListObjectsV2, multipart upload (Initiate, UploadPart, ListParts,
// Complete with a callback or x-oss-complete-all, Abort; see
// upload_store.h; forbid-overwrite honoured at Initiate and Complete), upload
// callbacks signed with the simulator's own key, and its public key at
// GET /sim_pub_key.pem. Buckets are path-style (/<bucket>/<key>) or, when
// the Host is <bucket>.<vhost_domain> (e.g. devbucket.localhost:9000, which
// curl resolves to loopback), virtual-hosted. Any other Host is ignored:
// SDKs in path-style mode may still send a cloud Host name.
//
// Bodies: PutObject, UploadPart and PostObject bodies are streamed to a
// StagedFile under <data_dir>/.staging while their MD5 and CRC-64 are
// computed (at most max_object_bytes; memory stays bounded whatever the
// size), then checked and renamed into place with their metadata, or
// deleted; other bodies (XML) are read into memory within max_body_bytes.
// HeadObject, GetObjectACL, ListObjectsV2 and the callback's facts come from
// the stored metadata, never from the object's bytes; GetObject streams from
// the file. Objects persist in data_dir across restarts (see object_store.h);
// multipart uploads in progress do not.
//
// Requests run on a small worker pool (a callback can block up to 5 s per
// URL). Create/Shutdown/destructor from outside the workers.
#ifndef UPLOADBROKER_OSSSIM_SIMULATOR_H_
#define UPLOADBROKER_OSSSIM_SIMULATOR_H_

#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "http/server.h"
#include "osssim/callback.h"
#include "osssim/object_store.h"
#include "osssim/post_policy_check.h"
#include "osssim/request_auth.h"
#include "osssim/sim_key.h"
#include "osssim/staged_file.h"
#include "osssim/upload_store.h"

namespace uploadbroker::osssim {

struct SimulatorOptions {
  std::string listen = "127.0.0.1:0";
  std::string data_dir;  // required; created if missing
  SimCredentials credentials;
  std::string key_file;  // RSA key PEM (made if absent); empty: in-memory key
  std::string vhost_domain = "localhost";  // see above
  // Bodies held in memory (CompleteMultipartUpload XML and the like).
  size_t max_body_bytes = 16 * 1024 * 1024;
  // Streamed bodies (PutObject, UploadPart, PostObject): OSS's 5 GiB.
  uint64_t max_object_bytes = uint64_t{5} * 1024 * 1024 * 1024;
  int workers = 4;
  absl::Duration callback_timeout = absl::Seconds(5);
  // Trust the PEM CAs in this file, instead of the system's, for https://
  // callback URLs (a test CA). Development only: real OSS trusts public CAs.
  std::string callback_ca_file;
};

class Simulator {
 public:
  static absl::StatusOr<std::unique_ptr<Simulator>> Create(SimulatorOptions options);
  ~Simulator();

  int port() const { return server_->port(); }
  // http://127.0.0.1:<port>/sim_pub_key.pem: sent as x-oss-pub-key-url.
  std::string public_key_url() const;
  std::string public_key_pem() const { return key_.PublicPem(); }
  void Shutdown();
  // Multipart uploads initiated and neither completed nor aborted.
  size_t multipart_uploads_in_progress() const { return uploads_.InProgress(); }

 private:
  Simulator(SimulatorOptions options, SimKey key);
  // http::ServerOptions::stream_body: a StagedFile for the body of a PUT to
  // an object (PutObject, UploadPart) or a PostObject, else null (memory).
  // Runs on a server thread.
  std::shared_ptr<http::BodySink> StreamBody(const http::Request& head);
  // The request's body as a finished StagedFile: the streamed one, or one
  // made from Request::body (a body too small to have been streamed). For a
  // PostObject (`form`) it starts with FormEntityHead and has no MD5.
  absl::StatusOr<std::shared_ptr<StagedFile>> StagedBody(const http::Request& req, bool form);
  // Content-MD5 (when sent) must be the base64 MD5 of the body received:
  // 400 InvalidDigest otherwise, as OSS.
  static std::optional<OssError> CheckContentMd5(const http::Request& req,
                                                 const StagedFile& body);
  // Bucket and key from the Host and path (path-style or virtual-hosted).
  std::optional<OssError> ParseTarget(const http::Request& req, std::string* bucket,
                                      std::string* key) const;
  http::Response Route(const http::Request& req);
  http::Response PostObject(const http::Request& req, const std::string& bucket,
                            const std::string& request_id);
  http::Response PutObject(const http::Request& req, const std::string& bucket,
                           const std::string& key, const std::string& request_id);
  // GET /<key>?acl: the ACL the object was written with (AccessControlPolicy
  // XML; HeadObject does not report it, as in OSS).
  http::Response GetObjectAcl(const http::Request& req, const std::string& bucket,
                              const std::string& key, const std::string& request_id);
  // GET /?list-type=2 (simulator_list.cc).
  http::Response ListObjects(const http::Request& req, const std::string& bucket,
                             const QueryParams& query, const std::string& request_id);
  // HeadObject (metadata only) and GetObject (streamed from the file).
  http::Response ReadObject(const http::Request& req, const std::string& bucket,
                            const std::string& key, const std::string& request_id);
  // Multipart upload (simulator_multipart.cc).
  http::Response InitiateUpload(const http::Request& req, const std::string& bucket,
                                const std::string& key, const QueryParams& query,
                                const std::string& request_id);
  http::Response UploadPart(const http::Request& req, const std::string& bucket,
                            const std::string& key, const QueryParams& query,
                            const std::string& request_id);
  http::Response ListParts(const http::Request& req, const std::string& bucket,
                           const std::string& key, const QueryParams& query,
                           const std::string& request_id);
  http::Response CompleteUpload(const http::Request& req, const std::string& bucket,
                                const std::string& key, const QueryParams& query,
                                const std::string& request_id);
  http::Response AbortUpload(const http::Request& req, const std::string& bucket,
                             const std::string& key, const QueryParams& query,
                             const std::string& request_id);
  // The callback a PutObject or CompleteMultipartUpload carries, in the
  // x-oss-callback(-var) headers or the callback(-var) query parameters (not
  // both). Leaves `callback` empty when there is none.
  static std::optional<OssError> RequestCallback(const http::Request& req,
                                                 const QueryParams& query,
                                                 std::optional<CallbackParam>& callback,
                                                 std::map<std::string, std::string>& custom);
  // x-oss-object-acl (a PUT or InitiateMultipartUpload header, or a
  // PostObject field): one of OSS's four values, else InvalidArgument;
  // absent means "default" (the bucket's).
  static std::optional<OssError> ParseObjectAcl(const std::string& value, std::string* acl);
  // Runs the callback (if any) for a stored object and builds the answer.
  http::Response Finish(const std::optional<CallbackParam>& callback,
                        const std::map<std::string, std::string>& custom_vars,
                        const ObjectInfo& info, const std::string& bucket,
                        const std::string& key, const std::string& operation,
                        const http::Request& req, const std::string& request_id,
                        http::Response no_callback_answer);

  SimulatorOptions options_;
  SimKey key_;
  ObjectStore store_;
  UploadStore uploads_;
  boost::asio::thread_pool pool_;
  std::unique_ptr<http::Server> server_;
};

}  // namespace uploadbroker::osssim

#endif  // UPLOADBROKER_OSSSIM_SIMULATOR_H_
