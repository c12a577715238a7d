# The NATS JetStream push target (nats_target.cc) on the nats.c client
# (Debian's libnats-dev), found through pkg-config; part of ub_deliver.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBNATS REQUIRED IMPORTED_TARGET GLOBAL libnats)
target_sources(ub_deliver PRIVATE nats_target.cc)
target_link_libraries(ub_deliver PUBLIC PkgConfig::LIBNATS absl::flat_hash_map)
