# ub_component(NAME SOURCES ... DEPS ...): one folder = one static library.
# Headers are included from the service/ root, e.g. "policy/post_policy.h".
function(ub_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(ub_${name} STATIC ${ARG_SOURCES})
  target_include_directories(ub_${name} PUBLIC ${PROJECT_SOURCE_DIR}/service)
  target_link_libraries(ub_${name} PUBLIC ${ARG_DEPS} PRIVATE ub_warnings)
endfunction()

# ub_test(NAME SOURCES ... DEPS ...): one GoogleTest binary, discovered by ctest.
# NO_PRETTY_VALUES: a parameterized case is named Suite.Test/<name> (give the
# suite a name generator), not after its printed parameter, which for a
# struct is its raw bytes and makes ctest lines hundreds of characters long.
function(ub_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main ub_warnings)
  target_compile_definitions(${name} PRIVATE UB_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30 NO_PRETTY_VALUES)
endfunction()
