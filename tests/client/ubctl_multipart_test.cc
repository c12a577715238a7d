// The ubctl binary against a real broker and oss-sim: `multipart list` and
// `multipart abort` on an interrupted upload, --api-key-file, the resume
// state's fallback when the file's directory is read-only, and the
// single-request boundary of --multipart-threshold (streamed, MD5 equal).
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"

#include "client/multipart_upload.h"
#include "client/upload.h"
#include "gmock/gmock.h"
#include "nlohmann/json.hpp"
#include "tests/client/broker_sim.h"
#include "tests/testing/subprocess.h"

namespace uploadbroker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::Exited;
using testing::Subprocess;

std::string Md5(const std::string& s) { return common::HexEncode(common::Md5(s)); }

class UbctlMultipartTest : public testing::BrokerSimTest {
 protected:
  void SetUp() override {
    BrokerSimTest::SetUp();
    key_file_ = dir_.WriteFile("api-key", std::string(kApiKey) + "\n");  // as `echo` writes it
  }

  // ubctl with the broker and the API key file, then `args`.
  Exited Ubctl(std::vector<std::string> args, std::vector<std::string> prefix = {}) {
    std::vector<std::string> all = prefix;
    all.push_back(UB_UBCTL_BIN);
    all.push_back("--broker=" + target());
    all.push_back("--api-key-file=" + key_file_);
    all.insert(all.end(), args.begin(), args.end());
    return Subprocess::Run(all);
  }

  // A 4-part upload of `file` stopped after 2 parts (through the library,
  // which can be stopped at an exact part).
  std::string Interrupt(const std::string& file, const std::string& key) {
    client::UploadArgs args;
    args.target = target();
    args.api_key = kApiKey;
    args.file = file;
    args.bucket = "devbucket";
    args.key = key;
    args.multipart = true;
    args.part_size = kPart;
    args.parallel = 1;
    int sent = 0;
    args.on_part_done = [&](int) { return ++sent < 2; };
    std::ostringstream out, err;
    EXPECT_EQ(client::Upload(args, out, err), 1) << err.str();
    EXPECT_EQ(sim_->multipart_uploads_in_progress(), 1u);
    return client::ResumeStatePath(file);
  }

  std::string key_file_;
};

TEST_F(UbctlMultipartTest, ListShowsAnInterruptedUploadAndAbortByFileEndsIt) {
  const std::string file = dir_.WriteFile("movie.mp4", Data(3 * kPart + 10));
  const std::string state = Interrupt(file, "uploads/movie.mp4");

  Exited all = Ubctl({"multipart", "list"});
  ASSERT_EQ(all.code, 0) << all.err;
  nlohmann::json listed = nlohmann::json::parse(all.out);
  ASSERT_EQ(listed["uploads"].size(), 1u) << all.out;
  const nlohmann::json& u = listed["uploads"][0];
  EXPECT_EQ(u["key"], "uploads/movie.mp4");
  EXPECT_EQ(u["part_count"], 4);
  EXPECT_EQ(u["parts_held"], 2);
  EXPECT_EQ(u["bytes_held"], 2 * kPart);
  const std::string id = u["upload_id"];

  Exited one = Ubctl({"multipart", "list", file});
  ASSERT_EQ(one.code, 0) << one.err;
  nlohmann::json detail = nlohmann::json::parse(one.out);
  EXPECT_EQ(detail["upload_id"], id);
  EXPECT_EQ(detail["state_file"], state);
  EXPECT_EQ(detail["state"], "UPLOAD_STATE_PENDING");
  EXPECT_EQ(detail["file_changed"], false);
  ASSERT_EQ(detail["parts"].size(), 2u);
  EXPECT_EQ(detail["parts"][0]["etag"],
            "\"" + absl::AsciiStrToUpper(Md5(Data(3 * kPart + 10).substr(0, kPart))) + "\"");

  Exited aborted = Ubctl({"multipart", "abort", file});
  ASSERT_EQ(aborted.code, 0) << aborted.err;
  EXPECT_THAT(aborted.out, HasSubstr("\"aborted\": true"));
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);  // OSS dropped the parts
  EXPECT_FALSE(std::ifstream(state).good());
  EXPECT_EQ(client_->GetUpload(id)->expiry_reason(), v1::EXPIRY_REASON_ABORTED);
  Exited none = Ubctl({"multipart", "list"});
  EXPECT_EQ(nlohmann::json::parse(none.out)["uploads"].size(), 0u) << none.out;
}

TEST_F(UbctlMultipartTest, AbortByUploadIdAndItsRefusals) {
  const std::string file = dir_.WriteFile("a.bin", Data(3 * kPart));
  Interrupt(file, "uploads/a.bin");
  Exited listed = Ubctl({"multipart", "list", "--bucket", "devbucket", "--key-prefix", "uploads/a"});
  ASSERT_EQ(listed.code, 0) << listed.err;
  const std::string id = nlohmann::json::parse(listed.out)["uploads"][0]["upload_id"];
  Exited aborted = Ubctl({"multipart", "abort", id});
  EXPECT_EQ(aborted.code, 0) << aborted.err;
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);
  Exited again = Ubctl({"multipart", "abort", id});
  EXPECT_EQ(again.code, 1);
  EXPECT_THAT(again.err, HasSubstr("error: FAILED_PRECONDITION"));
  // The state file still names it; aborting by FILE says it had ended and
  // removes the state file.
  Exited by_file = Ubctl({"multipart", "abort", file});
  EXPECT_EQ(by_file.code, 0) << by_file.err;
  EXPECT_THAT(by_file.err, HasSubstr("had already ended"));
  EXPECT_FALSE(std::ifstream(file + ".ubupload").good());

  EXPECT_EQ(Ubctl({"multipart", "abort", "up_never_issued"}).code, 1);
  EXPECT_EQ(Ubctl({"multipart", "abort"}).code, 2);
  EXPECT_EQ(Ubctl({"multipart", "abort", "a", "b"}).code, 2);
  EXPECT_EQ(Ubctl({"multipart", "frobnicate"}).code, 2);
  EXPECT_EQ(Ubctl({"multipart"}).code, 2);
  Exited no_state = Ubctl({"multipart", "list", file});
  EXPECT_EQ(no_state.code, 1);
  EXPECT_THAT(no_state.err, HasSubstr("no interrupted upload is recorded for " + file));
  Exited junk_state = Ubctl({"multipart", "abort", dir_.WriteFile("junk", "not json\n")});
  EXPECT_EQ(junk_state.code, 1);
}

TEST_F(UbctlMultipartTest, TheApiKeyFileIsTheKey) {
  Exited ok = Ubctl({"list"});
  EXPECT_EQ(ok.code, 0) << ok.err;  // trailing newline stripped
  EXPECT_THAT(ok.err, Not(HasSubstr("--api-key shows in `ps`")));
  key_file_ = dir_.WriteFile("crlf", std::string(kApiKey) + "\r\n");
  EXPECT_EQ(Ubctl({"list"}).code, 0);
  key_file_ = dir_.WriteFile("wrong", "key-other\n");
  Exited wrong = Ubctl({"list"});
  EXPECT_EQ(wrong.code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("UNAUTHENTICATED"));
  // On the command line it works, with a warning.
  Exited flag = Subprocess::Run({UB_UBCTL_BIN, "--broker=" + target(), "--api-key", kApiKey, "list"});
  EXPECT_EQ(flag.code, 0) << flag.err;
  EXPECT_THAT(flag.err, HasSubstr("note: --api-key shows in `ps` to every local user; prefer "
                                  "--api-key-file PATH or $UB_API_KEY"));
}

// Exactly at --multipart-threshold is one request, streamed; one byte more
// goes in parts. Both store the file.
TEST_F(UbctlMultipartTest, TheThresholdIsExclusiveAndBothSidesStoreTheFile) {
  const std::string at = dir_.WriteFile("at.bin", Data(3 * kPart));
  const std::string threshold = absl::StrCat("--multipart-threshold=", 3 * kPart);
  for (const auto& [key, how] : std::vector<std::pair<std::string, std::string>>{
           {"uploads/at-put", "--presigned"}, {"uploads/at-post", "--presigned=false"}}) {
    Exited e = Ubctl({"upload", at, "--bucket", "devbucket", "--key", key, threshold, how});
    ASSERT_EQ(e.code, 0) << e.err;
    EXPECT_THAT(e.err, Not(HasSubstr("uploading in parts")));
    EXPECT_EQ(Md5(*Stored(key)), Md5(Data(3 * kPart)));
  }
  const std::string above = dir_.WriteFile("above.bin", Data(3 * kPart + 1));
  Exited e = Ubctl({"upload", above, "--bucket", "devbucket", "--key", "uploads/above", threshold,
                    absl::StrCat("--part-size=", kPart)});
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_THAT(e.err, HasSubstr("note: 307201 bytes is above --multipart-threshold (307200); "
                               "uploading in parts"));
  EXPECT_EQ(Md5(*Stored("uploads/above")), Md5(Data(3 * kPart + 1)));
}

// FILE's directory is read-only: the state goes under $XDG_STATE_HOME and
// ubctl says where; with nowhere to write it, ubctl refuses before starting.
// Run as an unprivileged user (root writes anywhere).
TEST_F(UbctlMultipartTest, AReadOnlyDirectoryKeepsTheStateUnderXdgStateHome) {
  std::vector<std::string> as_user;
  if (geteuid() == 0) {
    as_user = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    if (access(as_user[0].c_str(), X_OK) != 0) GTEST_SKIP() << "root without setpriv";
  }
  ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
  ASSERT_EQ(chmod(key_file_.c_str(), 0644), 0);
  const std::string ro = dir_.File("ro");
  ASSERT_EQ(mkdir(ro.c_str(), 0755), 0);
  const std::string file = ro + "/clip.mp4";
  { std::ofstream(file, std::ios::binary) << Data(2 * kPart + 1); }
  ASSERT_EQ(chmod(file.c_str(), 0644), 0);
  ASSERT_EQ(chmod(ro.c_str(), 0555), 0);
  const std::string xdg = dir_.File("xdg");
  ASSERT_EQ(mkdir(xdg.c_str(), 0777), 0);
  ASSERT_EQ(chmod(xdg.c_str(), 0777), 0);

  std::vector<std::string> env = as_user;
  env.insert(env.end(), {"/usr/bin/env", "XDG_STATE_HOME=" + xdg});
  Exited e = Ubctl({"upload", file, "--bucket", "devbucket", "--key", "uploads/clip.mp4",
                    "--multipart", absl::StrCat("--part-size=", kPart)},
                   env);
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_THAT(e.err, HasSubstr("note: the resume state is kept in " + xdg + "/ubctl/clip.mp4-"));
  EXPECT_EQ(Md5(*Stored("uploads/clip.mp4")), Md5(Data(2 * kPart + 1)));

  std::vector<std::string> nowhere = as_user;
  nowhere.insert(nowhere.end(), {"/usr/bin/env", "XDG_STATE_HOME=" + key_file_ + "/x"});
  Exited refused = Ubctl({"upload", file, "--bucket", "devbucket", "--key", "uploads/clip2.mp4",
                          "--multipart"},
                         nowhere);
  EXPECT_EQ(refused.code, 2);
  EXPECT_THAT(refused.err, HasSubstr("error: nowhere to keep the resume state: " + file +
                                     ".ubupload cannot be written and neither can "
                                     "$XDG_STATE_HOME/ubctl/; pass --state-file PATH"));
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);  // nothing started
  chmod(ro.c_str(), 0755);
}

}  // namespace
}  // namespace uploadbroker
