#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>

#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "auth/authenticator.h"
#include "callback/verifier.h"
#include "common/clock.h"
#include "common/grpc_keepalive.h"
#include "common/log_safe.h"
#include "common/status_macros.h"
#include "common/url.h"
#include "credentials/credential_provider.h"
#include "deliver/target_driver_config.h"
#include "http/server.h"
#include "ingest/callback_handler.h"
#include "ingest/confirmer.h"
#include "ingest/trusted_keys.h"
#include "issue/issuer.h"
#include "issue/multipart_issuer.h"
#include "ossapi/list_objects.h"
#include "ossapi/multipart_client.h"
#include "ossapi/object_probe.h"
#include "reconcile/reconciler.h"
#include "metrics/registry.h"
#include "rpc/health_service.h"
#include "rpc/refusal_interceptor.h"
#include "rpc/service.h"
#include "server/http_routes.h"
#include "server/open_ledger.h"
#include "spdlog/spdlog.h"
#include "stream/event_streamer.h"
#include "tls/grpc_credentials.h"
#include "tls/ssl_context.h"

namespace uploadbroker::server {
namespace {

const char* StateName(v1::UploadState s) {
  switch (s) {
    case v1::UPLOAD_STATE_PENDING: return "pending";
    case v1::UPLOAD_STATE_COMPLETED: return "completed";
    case v1::UPLOAD_STATE_EXPIRED: return "expired";
    default: return "unknown";
  }
}

class BrokerServer final : public Server {
 public:
  int grpc_port() const override { return grpc_port_; }
  int http_port() const override { return http_server_ ? http_server_->port() : 0; }
  int admin_port() const override { return admin_server_ ? admin_server_->port() : 0; }

  absl::Status ReloadCallers(const config::Config& fresh) override {
    for (const config::Caller& c : fresh.callers) {
      for (const std::string& b : c.buckets) {
        if (config_.FindBucket(b) == nullptr) {
          return absl::InvalidArgumentError(absl::StrCat(
              fresh.source, ": callers: caller '", c.name, "' names bucket '", b,
              "', which the running broker does not have (buckets change only on restart)"));
        }
      }
    }
    auth_->Reload(fresh.callers);
    // Revoked keys, certificate mappings and scopes end the open streams too.
    streamer_->Recheck(*auth_);
    spdlog::info("reloaded the callers section of {}: {} callers (other sections change only on restart)",
                 fresh.source, fresh.callers.size());
    return absl::OkStatus();
  }

  // Drain order: stop reconciling, report not-ready, finish in-flight
  // callbacks, end streams, stop gRPC; the ledger commits what is queued
  // when it is destroyed.
  void Shutdown() override {
    if (draining_.exchange(true)) return;
    spdlog::info("draining: finishing in-flight callbacks and RPCs");
    if (reconciler_) reconciler_->Stop();
    if (push_targets_) push_targets_->Shutdown();  // hands leased events and target leases back
    StopIntentsGauge();
    if (http_server_) http_server_->Shutdown();
    if (admin_server_) admin_server_->Shutdown();
    if (confirmer_) confirmer_->Shutdown();  // answers what still waits for a HEAD
    if (health_) health_->Shutdown();
    if (streamer_) streamer_->Shutdown();  // UNAVAILABLE to every Subscribe stream
    if (grpc_server_) {
      grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
    }
    done_.Notify();
  }

  void Wait() override {
    done_.WaitForNotification();
    if (grpc_server_) grpc_server_->Wait();
  }

  ~BrokerServer() override {
    Shutdown();
    Wait();
  }

  explicit BrokerServer(Options options)
      : options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : &real_clock_),
        config_(options_.config) {}

  absl::Status Start() {
    UB_ASSIGN_OR_RETURN(creds_, credentials::CredentialProvider::Create(config_.credentials, clock_));
    UB_ASSIGN_OR_RETURN(ledger_, OpenLedger(config_, *clock_));
    StartIntentsGauge();
    UB_RETURN_IF_ERROR(StartHttp());
    UB_RETURN_IF_ERROR(StartGrpc());
    StartReconciler();
    // Push targets (deliveries.targets): webhooks and NATS, driven off the log.
    UB_ASSIGN_OR_RETURN(push_targets_, deliver::PushTargets::Create(config_, *ledger_, metrics_, *clock_));
    return absl::OkStatus();
  }

 private:
  absl::Status StartHttp() {
    if (config_.development) {
      spdlog::warn("!!! DEVELOPMENT MODE (development: true): plain-HTTP OSS endpoints and "
                   "simulator callback keys are allowed. Never use it in production. !!!");
    }
    UB_ASSIGN_OR_RETURN(std::vector<callback::TrustedKey> extra, ingest::LoadTrustedKeys(config_));
    for (const auto& k : extra) {
      spdlog::warn("!!! TRUSTING A NON-OSS CALLBACK KEY for x-oss-pub-key-url {} (SPKI sha256 {}). "
                   "Anyone holding its private key can forge upload callbacks. "
                   "Use this only with the local OSS simulator. !!!",
                   k.url, k.key.SpkiSha256Hex());
    }
    absl::StatusOr<common::Url> url = common::ParseUrl(config_.callback_url, common::DotSegments::kKeep);
    if (!url.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(config_.source, ": callback.url: ", url.status().message()));
    }
    absl::StatusOr<callback::Verifier> verifier = callback::Verifier::Create(url->path, std::move(extra));
    if (!verifier.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(config_.source, ": callback.url: ", verifier.status().message()));
    }
    verifier_ = std::make_unique<callback::Verifier>(*std::move(verifier));
    StartConfirmer();
    callbacks_ = std::make_unique<ingest::CallbackHandler>(*verifier_, *ledger_, metrics_,
                                                          config_.callback_response_extra,
                                                          confirmer_.get());
    auto& rejected = metrics_.AddCounter("upload_broker_http_rejected_total",
                                         "HTTP requests refused before routing, by reason", {"reason"});
    // Rendered on the HTTP event loop: it only copies the cached counts.
    metrics_.AddGaugeFn("upload_broker_intents", "Upload intents in the ledger, by state", {"state"},
                        [this] {
                          absl::MutexLock lock(&intents_mu_);
                          return intents_;
                        });
    http::ServerOptions ho;
    ho.listen = config_.http_listen;
    ho.read_timeout = config_.http_read_timeout;
    ho.idle_timeout = config_.http_idle_timeout;
    ho.max_connections = static_cast<int>(config_.http_max_connections);
    ho.max_connections_per_address = static_cast<int>(config_.http_max_connections_per_address);
    ho.on_reject = [&rejected](absl::string_view reason) { rejected.Inc({std::string(reason)}); };
    ho.on_address_refused = [this](absl::string_view address) {
      uint64_t suppressed = 0;
      if (!http_log_limit_.Admit(&suppressed)) return;
      spdlog::warn("HTTP: refused a connection from {}: callback_listener.max_connections_per_address "
                   "({}) reached and none of its connections idle ({} more refusals not logged)",
                   common::LogSafe(address), config_.http_max_connections_per_address, suppressed);
    };
    UB_RETURN_IF_ERROR(ConfigureHttps(ho));
    const bool admin = !config_.admin_listen.empty();
    UB_ASSIGN_OR_RETURN(http_server_,
                        http::Server::Create(ho, MakeHttpRoutes(*callbacks_, *ledger_, metrics_, draining_,
                                                                config_.metrics_on_public_port
                                                                    ? Expose::kEverything
                                                                    : Expose::kCallbacksAndHealth)));
    if (config_.metrics_on_public_port) {
      spdlog::warn("/metrics is served on the public callback port {} "
                   "(listen.metrics_on_public_port: true): anyone who can reach callbacks can read "
                   "it; prefer listen.admin", http_server_->port());
    } else if (!admin) {
      spdlog::info("/metrics is not served: listen.admin is unset (set it to an address only "
                   "Prometheus reaches)");
    }
    if (admin) {
      http::ServerOptions ao;
      ao.listen = config_.admin_listen;
      ao.threads = 1;
      ao.on_reject = ho.on_reject;
      auto created = http::Server::Create(ao, MakeHttpRoutes(*callbacks_, *ledger_, metrics_, draining_,
                                                             Expose::kAdmin));
      if (!created.ok()) {
        return absl::Status(created.status().code(), absl::StrCat(config_.source, ": listen.admin: ",
                                                                  created.status().message()));
      }
      admin_server_ = *std::move(created);
      spdlog::info("admin listening on port {} (/metrics, /healthz, /readyz; /metrics is not on the "
                   "callback port)", admin_server_->port());
    }
    spdlog::info("{} listening on port {} (callbacks verified against path {})",
                 http_tls_ != nullptr ? "HTTPS" : "HTTP", http_server_->port(),
                 verifier_->decoded_path());
    return absl::OkStatus();
  }

  // The one HeadObject client (callbacks and the reconciler), and the
  // confirmer that checks every callback's object with it.
  void StartConfirmer() {
    ingest::HeadObjectConfirmer::Options co;
    object_probe_ = std::make_unique<ossapi::OssObjectProbe>(*creds_, *clock_, co.head_timeout,
                                                             co.threads * 2);
    if (!config_.confirm_completions) {
      spdlog::warn("!!! CALLBACKS ARE NOT CONFIRMED (callback.confirm_completions: false): any OSS "
                   "account can forge a completion for a pending upload by naming it in a callback. "
                   "Turn it back on unless something else checks every completed object. !!!");
      return;
    }
    confirmer_ = std::make_unique<ingest::HeadObjectConfirmer>(config_, *object_probe_, co);
  }

  absl::Status StartGrpc() {
    auto& auth_failures = metrics_.AddCounter(
        "upload_broker_auth_failures_total",
        "gRPC calls refused for a missing, malformed or unknown API key, by reason", {"reason"});
    auth_ = std::make_unique<auth::Authenticator>(
        config_.callers, [this, &auth_failures](absl::string_view reason, absl::string_view peer) {
          auth_failures.Inc({std::string(reason)});
          uint64_t suppressed = 0;
          if (!auth_log_limit_.Admit(&suppressed)) return;
          spdlog::warn("gRPC authentication failed from {}: {} ({} more failures not logged)",
                       common::LogSafe(peer), std::string(reason), suppressed);
        });
    issuer_ = std::make_unique<issue::Issuer>(config_, *creds_, *ledger_, *clock_);
    oss_multipart_ = std::make_unique<ossapi::MultipartClient>(*creds_, *clock_);
    multipart_issuer_ = std::make_unique<issue::MultipartIssuer>(config_, *creds_, *ledger_,
                                                                 *oss_multipart_, *clock_);
    stream::EventStreamer::Options so;
    so.streams_per_caller = static_cast<int>(config_.limits.subscribe_streams_per_caller);
    auto& refused = metrics_.AddCounter(
        "upload_broker_subscribe_refused_total",
        "Subscribe calls refused because the caller had limits.subscribe_streams_per_caller open",
        {"caller"});
    so.on_refused = [&refused, cap = so.streams_per_caller](const std::string& caller) {
      refused.Inc({caller});
      spdlog::warn("Subscribe refused: caller '{}' already has {} streams open "
                   "(limits.subscribe_streams_per_caller)", caller, cap);
    };
    streamer_ = std::make_unique<stream::EventStreamer>(*ledger_, so);
    service_ = std::make_unique<rpc::UploadBrokerService>(*auth_, *issuer_, *multipart_issuer_,
                                                          *ledger_, *streamer_);
    health_ = std::make_unique<rpc::HealthService>([this] { return ledger_->Healthy(); },
                                                   options_.health_poll);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    common::SetServerKeepalive(builder);
    UB_ASSIGN_OR_RETURN(tls::GrpcServerSecurity security, tls::MakeGrpcServerSecurity(config_));
    WarnIfPlaintextOffLoopback();
    // A larger request is RESOURCE_EXHAUSTED before it reaches a handler.
    builder.SetMaxReceiveMessageSize(static_cast<int>(config_.limits.grpc_max_receive_bytes));
    // Refused requests (bad, over a cap or a limit) are counted and logged.
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
    interceptors.push_back(rpc::MakeRefusalInterceptorFactory(metrics_));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
    builder.AddListeningPort(config_.grpc_listen, security.credentials, &grpc_port_);
    builder.RegisterService(service_.get());
    builder.RegisterService(health_.get());
    grpc_server_ = builder.BuildAndStart();
    if (grpc_server_ == nullptr || grpc_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat(config_.source, ": listen.grpc: cannot listen on '", config_.grpc_listen, "'"));
    }
    spdlog::info("gRPC API listening on port {} ({}; config {}, ledger {})", grpc_port_,
                 security.description, config_.source, LedgerName(config_));
    return absl::OkStatus();
  }

  // tls.http: the callback listener serves HTTPS, re-reading the files
  // when they change (checked every tls.reload_interval).
  absl::Status ConfigureHttps(http::ServerOptions& ho) {
    if (config_.http_tls.cert_file.empty()) return absl::OkStatus();
    absl::StatusOr<std::unique_ptr<tls::ReloadingSslContext>> ctx = tls::ReloadingSslContext::Create(
        "tls.http", config_.http_tls.cert_file, config_.http_tls.key_file, config_.tls_reload_interval);
    if (!ctx.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(config_.source, ": ", ctx.status().message()));
    }
    http_tls_ = *std::move(ctx);
    ho.tls = [ctx = http_tls_.get()] { return ctx->Current(); };
    return absl::OkStatus();
  }

  // config/ refuses plaintext gRPC off loopback unless tls.allow_plaintext_grpc.
  void WarnIfPlaintextOffLoopback() const {
    if (!config_.grpc_tls.cert_file.empty() || !config_.allow_plaintext_grpc) return;
    spdlog::warn("!!! PLAINTEXT gRPC (tls.allow_plaintext_grpc: true) on {}: API keys and upload "
                 "authorizations cross the network unencrypted unless TLS is terminated in front "
                 "of the broker. !!!",
                 config_.grpc_listen);
  }

  void StartReconciler() {
    if (!config_.reconcile) {
      spdlog::warn("reconciler off (reconcile.enabled: false): uploads whose callback failed stay PENDING");
      return;
    }
    reconcile::Reconciler::Options ro;
    ro.interval = config_.reconcile_interval;
    ro.grace = config_.reconcile_grace;
    ro.multipart = oss_multipart_.get();
    // Prefix authorizations are settled by listing their prefix.
    lister_ = std::make_unique<ossapi::ObjectLister>(*creds_, *clock_,
                                                     ossapi::ObjectLister::Options{});
    ro.lister = lister_.get();
    reconciler_ = std::make_unique<reconcile::Reconciler>(config_, *ledger_, *object_probe_, metrics_,
                                                          *clock_, ro);
    reconciler_->Start();
  }

  // The intents gauge: counted once now (so the first scrape has numbers),
  // then every intents_gauge_refresh on a thread of its own. A failed count
  // keeps the last good numbers.
  void StartIntentsGauge() {
    RefreshIntents();
    intents_thread_ = std::thread([this] {
      for (;;) {
        {
          absl::MutexLock lock(&intents_mu_);
          intents_mu_.AwaitWithTimeout(absl::Condition(&intents_stop_),
                                       options_.intents_gauge_refresh);
          if (intents_stop_) return;
        }
        RefreshIntents();  // I/O: never under the lock
      }
    });
  }

  void RefreshIntents() ABSL_LOCKS_EXCLUDED(intents_mu_) {
    auto counts = ledger_->CountUploadsByState();
    if (!counts.ok()) {
      spdlog::warn("intents gauge: {}", counts.status().ToString());
      return;
    }
    std::vector<std::pair<metrics::LabelValues, double>> out;
    for (auto s : {v1::UPLOAD_STATE_PENDING, v1::UPLOAD_STATE_COMPLETED, v1::UPLOAD_STATE_EXPIRED}) {
      out.push_back({{StateName(s)}, static_cast<double>((*counts)[s])});
    }
    absl::MutexLock lock(&intents_mu_);
    intents_ = std::move(out);
  }

  void StopIntentsGauge() ABSL_LOCKS_EXCLUDED(intents_mu_) {
    {
      absl::MutexLock lock(&intents_mu_);
      intents_stop_ = true;
    }
    if (intents_thread_.joinable()) intents_thread_.join();
  }

  // Declaration order is construction order; destruction runs backwards, so
  // listeners stop before the components they call.
  const Options options_;
  common::RealClock real_clock_;
  common::Clock* const clock_;
  const config::Config& config_;
  metrics::Registry metrics_;
  // Lines a client can trigger at will are rate-limited (per second).
  common::LogRateLimiter http_log_limit_{5};
  common::LogRateLimiter auth_log_limit_{5};
  std::unique_ptr<credentials::CredentialProvider> creds_;
  std::unique_ptr<ledger::Ledger> ledger_;
  std::unique_ptr<callback::Verifier> verifier_;
  std::unique_ptr<ossapi::OssObjectProbe> object_probe_;
  std::unique_ptr<ingest::HeadObjectConfirmer> confirmer_;  // null when confirmation is off
  std::unique_ptr<ingest::CallbackHandler> callbacks_;
  std::unique_ptr<tls::ReloadingSslContext> http_tls_;
  std::unique_ptr<http::Server> http_server_;
  std::unique_ptr<http::Server> admin_server_;
  std::unique_ptr<auth::Authenticator> auth_;
  std::unique_ptr<issue::Issuer> issuer_;
  std::unique_ptr<ossapi::MultipartClient> oss_multipart_;
  std::unique_ptr<issue::MultipartIssuer> multipart_issuer_;
  std::unique_ptr<stream::EventStreamer> streamer_;
  std::unique_ptr<rpc::UploadBrokerService> service_;
  std::unique_ptr<rpc::HealthService> health_;
  std::unique_ptr<grpc::Server> grpc_server_;
  std::unique_ptr<ossapi::ObjectLister> lister_;
  std::unique_ptr<reconcile::Reconciler> reconciler_;
  std::unique_ptr<deliver::PushTargets> push_targets_;
  int grpc_port_ = 0;
  std::atomic<bool> draining_{false};
  absl::Mutex intents_mu_;
  std::vector<std::pair<metrics::LabelValues, double>> intents_ ABSL_GUARDED_BY(intents_mu_);
  bool intents_stop_ ABSL_GUARDED_BY(intents_mu_) = false;
  std::thread intents_thread_;
  absl::Notification done_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Create(Options options) {
  auto server = std::make_unique<BrokerServer>(std::move(options));
  UB_RETURN_IF_ERROR(server->Start());
  return server;
}

}  // namespace uploadbroker::server
