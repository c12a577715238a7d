# NATS JetStream target tests: a real `nats-server -js` per test
# (tests/testing/nats_server.h), read back with nats.c (nats_stream.h).
ub_test(nats_target_test SOURCES nats_target_test.cc
        DEPS ub_deliver ub_testing PkgConfig::LIBNATS absl::synchronization)
