# ub_warnings: warning flags, linked by every project target.
add_library(ub_warnings INTERFACE)
target_compile_options(ub_warnings INTERFACE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  target_compile_options(ub_warnings INTERFACE -Wthread-safety)
endif()
if(UB_WERROR)
  target_compile_options(ub_warnings INTERFACE -Werror)
endif()
# Sanitizers apply to every target compiled in this tree (libraries, the
# generated protobuf code, tests and the binaries tests spawn), so they are
# directory-wide options rather than ub_warnings' interface. Debian's gRPC,
# protobuf, Abseil etc. stay uninstrumented; ASan and UBSan allow that.
# scripts/sanitize.sh builds and runs the whole suite this way.
if(UB_ASAN)
  add_compile_options(-fsanitize=address -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address)
endif()
if(UB_UBSAN)
  add_compile_options(-fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=undefined)
endif()
