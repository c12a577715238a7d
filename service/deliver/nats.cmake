# ub_deliver_nats: the NATS JetStream push target, on the nats.c client
# (Debian's libnats-dev), found through pkg-config. Included by this folder's
# CMakeLists.txt; its own library so that only what delivers to NATS links
# libnats.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBNATS REQUIRED IMPORTED_TARGET GLOBAL libnats)
ub_component(deliver_nats
             SOURCES nats_target.cc
             DEPS ub_common ub_proto PkgConfig::LIBNATS spdlog::spdlog absl::flat_hash_map absl::status
                  absl::statusor absl::strings absl::synchronization absl::time Threads::Threads)
