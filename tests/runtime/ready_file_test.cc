#include "runtime/ready_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::runtime {
namespace {

TEST(WriteReadyFile, WritesOneJsonLineAndNoTempFile) {
  testing::TempDir dir;
  const std::string path = dir.File("ready");
  ASSERT_TRUE(WriteReadyFile(path, {{"grpc_port", 5}, {"http_port", 6}}).ok());
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_EQ(s.str(), "{\"grpc_port\":5,\"http_port\":6}\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(WriteReadyFile, UnwritablePathIsAnErrorNamingIt) {
  absl::Status st = WriteReadyFile("/nonexistent/dir/ready", {{"port", 1}});
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("/nonexistent/dir/ready"),
            absl::string_view::npos)
      << st;
}

}  // namespace
}  // namespace uploadbroker::runtime
