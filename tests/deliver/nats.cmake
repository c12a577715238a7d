# NATS JetStream target tests: a real `nats-server -js` per test
# (tests/testing/nats_server.h), read back with nats.c (nats_stream.h).
ub_test(nats_target_test SOURCES nats_target_test.cc
        DEPS ub_deliver ub_testing PkgConfig::LIBNATS absl::synchronization)
# Through kill -9 of the broker driving the target (tests/testing/broker_process.h).
ub_test(nats_kill_test SOURCES nats_kill_test.cc
        DEPS ub_client ub_common ub_callback ub_testing PkgConfig::LIBNATS OpenSSL::Crypto
             nlohmann_json::nlohmann_json CURL::libcurl absl::synchronization)
target_compile_definitions(nats_kill_test PRIVATE UB_BROKER_BIN="$<TARGET_FILE:upload-broker>")
add_dependencies(nats_kill_test upload-broker)
