#include "common/crypto.h"

#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>
#include <vector>

#include "common/encoding.h"
#include "gtest/gtest.h"

namespace uploadbroker::common {
namespace {

TEST(Crypto, KnownDigests) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Md5("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_EQ(RandomHex(16).size(), 32u);
  EXPECT_NE(RandomHex(16), RandomHex(16));
}

TEST(Md5Hasher, PiecesEqualTheWhole) {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  Md5Hasher hasher;
  for (size_t i = 0; i < data.size(); i += 4099) hasher.Update(absl::string_view(data).substr(i, 4099));
  EXPECT_EQ(hasher.Final(), Md5(data));
  Md5Hasher empty;
  EXPECT_EQ(HexEncode(empty.Final()), "d41d8cd98f00b204e9800998ecf8427e");
}

// Random bytes are drawn in blocks per thread: no value may come out twice,
// within a thread across block refills or between threads.
TEST(RandomHex, NeverRepeatsAcrossBlocksOrThreads) {
  std::vector<std::vector<std::string>> drawn(4);
  std::vector<std::thread> threads;
  for (auto& out : drawn) {
    threads.emplace_back([&out] {
      for (int i = 0; i < 5000; ++i) out.push_back(RandomHex(i % 7 == 0 ? 600 : 10));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& out : drawn) all.insert(out.begin(), out.end());
  EXPECT_EQ(all.size(), 4u * 5000u);
}

// A forked child must not hand out the bytes its parent will use next.
TEST(RandomHex, ForkedChildDrawsFreshBytes) {
  RandomHex(10);  // the parent now holds a partly used block
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string child = RandomHex(10);
    _exit(write(fds[1], child.data(), child.size()) == 20 ? 0 : 1);
  }
  std::string parent = RandomHex(10);
  std::string child(20, '\0');
  ASSERT_EQ(read(fds[0], child.data(), child.size()), 20);
  int status = 0;
  waitpid(pid, &status, 0);
  close(fds[0]);
  close(fds[1]);
  EXPECT_NE(parent, child);
}

// RFC 4231 test cases 1 and 2, RFC 2202 case 2, and the empty key.
TEST(Crypto, HmacsMatchPublishedVectors) {
  EXPECT_EQ(HexEncode(HmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(HexEncode(HmacSha1("Jefe", "what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  EXPECT_EQ(HexEncode(HmacSha256("", "")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(Crypto, PreparedKeySignsLikeTheOneShotHmac) {
  HmacSha256Key key("Jefe");
  EXPECT_EQ(HexEncode(key.Sign("what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(key.Sign("other"), HmacSha256("Jefe", "other"));  // reusable
  EXPECT_EQ(HmacSha256Key("").Sign(""), HmacSha256("", ""));
}

TEST(Crypto, PreparedKeyIsSafeToShareAcrossThreads) {
  HmacSha256Key key("shared");
  const std::string expected = HmacSha256("shared", "message");
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) mismatches[t] += key.Sign("message") != expected;
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

}  // namespace
}  // namespace uploadbroker::common
