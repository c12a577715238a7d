// oss-sim with a 5 GiB object, OSS's largest PutObject (ctest label
// "large"; exclude with -LE large; about 30 s and 5 GiB of /tmp): the PUT
// streams (the simulator's peak resident memory stays under 100 MiB while
// it receives 5 GiB), the ETag is the MD5 of what was sent, and a HEAD of
// the 5 GiB object answers as fast as one of 1 KiB (both under 50 ms): HEAD
// reads metadata, never the object.
#include <algorithm>
#include <atomic>
#include <iostream>
#include <thread>

#include "gtest/gtest.h"
#include "tests/osssim/sim_process.h"

namespace uploadbroker::osssim {
namespace {

using testing::Answer;
using testing::Curl;
using testing::SignedUrl;
using testing::SimProcess;

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kBig = 5 * kGiB;  // OSS's largest PutObject

TEST(OssSimLarge, FiveGibPutStreamsAndHeadDoesNotGrowWithSize) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  uploadbroker::testing::TempDir dir;
  SimProcess sim(dir.File("sim"));
  ASSERT_NE(sim.port(), 0) << sim.StderrSoFar();
  const int64_t hwm_before = sim.StatusKib("VmHWM");

  std::atomic<bool> done{false};
  std::atomic<int64_t> hwm_during{0};
  std::thread sampler([&] {
    while (!done) {
      hwm_during = std::max<int64_t>(hwm_during, sim.StatusKib("VmHWM"));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::string sent_md5;
  Answer put = Curl("PUT", SignedUrl(sim.port(), "PUT", "big.bin"), kBig, &sent_md5);
  done = true;
  sampler.join();
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.headers["etag"], absl::StrCat("\"", sent_md5, "\""));
  const int64_t hwm_after = sim.StatusKib("VmHWM");
  std::cout << "5 GiB PUT: " << put.seconds << " s; sim VmHWM " << hwm_before << " KiB before, "
            << hwm_after << " KiB after\n";
  EXPECT_LT(hwm_after, 100 * 1024) << "peak resident memory of the simulator, KiB";

  ASSERT_EQ(Curl("PUT", SignedUrl(sim.port(), "PUT", "small.bin"), 1024).status, 200);
  for (const char* key : {"small.bin", "big.bin"}) {
    double worst = 0;
    for (int i = 0; i < 20; ++i) {
      Answer head = Curl("HEAD", SignedUrl(sim.port(), "HEAD", key));
      ASSERT_EQ(head.status, 200);
      worst = std::max(worst, head.seconds);
    }
    std::cout << "HEAD " << key << ": worst of 20 " << worst * 1000 << " ms\n";
    EXPECT_LT(worst, 0.050) << key;
  }
  EXPECT_EQ(Curl("HEAD", SignedUrl(sim.port(), "HEAD", "big.bin")).headers["content-length"],
            absl::StrCat(kBig));
}

}  // namespace
}  // namespace uploadbroker::osssim
