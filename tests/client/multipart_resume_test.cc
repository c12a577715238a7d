// `ubctl upload --multipart` resumed against a real broker and oss-sim: what
// a user would notice is whether the object in the bucket is byte for byte
// the file. Parts of the file are rewritten between runs (same size, with
// the modification time kept or changed), during a run, and the state file
// is one an older ubctl wrote; in every case the stored object's MD5 must be
// the file's, and an abandoned upload must not stay stored in OSS.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "client/multipart_upload.h"
#include "client/upload.h"
#include "client/upload_common.h"
#include "gmock/gmock.h"
#include "tests/client/broker_sim.h"

namespace uploadbroker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Md5(const std::string& s) { return common::HexEncode(common::Md5(s)); }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Overwrites `data.size()` bytes at `offset` in place (the size stays).
void Rewrite(const std::string& path, int64_t offset, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, data.data(), data.size(), offset), static_cast<ssize_t>(data.size()));
  close(fd);
}

timespec Mtime(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0);
  return st.st_mtim;
}

void SetMtime(const std::string& path, timespec t) {
  timespec times[2] = {t, t};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

class MultipartResumeTest : public testing::BrokerSimTest {
 protected:
  // A 6-part upload of `file` to uploads/<name>, one part at a time.
  client::UploadArgs Args(const std::string& file, const std::string& key) {
    client::UploadArgs args;
    args.target = target();
    args.api_key = kApiKey;
    args.file = file;
    args.bucket = "devbucket";
    args.key = key;
    args.content_type = "video/mp4";
    args.multipart = true;
    args.part_size = kPart;
    args.parallel = 1;
    return args;
  }

  // Runs the upload, stopping after `parts` parts; returns the parts sent.
  std::vector<int> Interrupted(client::UploadArgs args, size_t parts, std::string* err_out) {
    std::vector<int> sent;
    args.on_part_done = [&](int n) {
      sent.push_back(n);
      return sent.size() < parts;
    };
    std::ostringstream out, err;
    EXPECT_EQ(client::Upload(args, out, err), 1) << err.str();
    EXPECT_THAT(err.str(), HasSubstr("run the same command again to resume"));
    if (err_out != nullptr) *err_out = err.str();
    return sent;
  }

  // Runs the upload to the end; returns the parts sent, sorted.
  std::vector<int> Finished(client::UploadArgs args, std::string* err_out) {
    std::vector<int> sent;
    args.on_part_done = [&](int n) {
      sent.push_back(n);
      return true;
    };
    std::ostringstream out, err;
    EXPECT_EQ(client::Upload(args, out, err), 0) << err.str();
    EXPECT_THAT(out.str(), HasSubstr("\"upload_id\""));
    *err_out = err.str();
    std::sort(sent.begin(), sent.end());
    return sent;
  }

  // The upload id the state file of `file` names.
  std::string SavedId(const std::string& file) {
    std::string first = ReadAll(client::ResumeStatePath(file));
    first = first.substr(0, first.find('\n'));
    size_t b = first.find("\"upload_id\":\"") + 13;
    return first.substr(b, first.find('"', b) - b);
  }
};

// The case: killed after parts 1-3, parts 1 and 5 rewritten at the
// same size, and the modification time put back. OSS's ETag for part 1 no
// longer matches the file, so part 1 is sent again; 2 and 3 are kept.
TEST_F(MultipartResumeTest, RewrittenPartsWithTheSameMtimeAreSentAgain) {
  const std::string file = dir_.WriteFile("disk.img", Data(5 * kPart + 99));
  client::UploadArgs args = Args(file, "uploads/disk.img");
  EXPECT_THAT(Interrupted(args, 3, nullptr), ElementsAre(1, 2, 3));
  const timespec before = Mtime(file);
  Rewrite(file, 0, Data(kPart, 1));         // part 1, already in OSS
  Rewrite(file, 4 * kPart, Data(kPart, 2));  // part 5, not yet sent
  SetMtime(file, before);

  std::string err;
  EXPECT_THAT(Finished(args, &err), ElementsAre(1, 4, 5, 6));
  EXPECT_THAT(err, HasSubstr("OSS holds 3 of 6 parts; 2 match the file, 1 differ and will be "
                             "sent again"));
  std::optional<std::string> stored = Stored("uploads/disk.img");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(Md5(*stored), Md5(ReadAll(file)));
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);
  EXPECT_FALSE(std::ifstream(client::ResumeStatePath(file)).good());
}

// The same rewrite with a new modification time: the file's identity
// changed, so the old upload is aborted (its parts leave OSS) and a new one
// sends every part.
TEST_F(MultipartResumeTest, AModifiedFileStartsOverAndAbortsTheOldUpload) {
  const std::string file = dir_.WriteFile("db.bin", Data(5 * kPart + 99));
  client::UploadArgs args = Args(file, "uploads/db.bin");
  Interrupted(args, 3, nullptr);
  const std::string old_id = SavedId(file);
  Rewrite(file, 0, Data(kPart, 1));
  Rewrite(file, 4 * kPart, Data(kPart, 2));
  timespec later = Mtime(file);
  later.tv_sec += 5;
  SetMtime(file, later);

  std::string err;
  EXPECT_THAT(Finished(args, &err), ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_THAT(err, HasSubstr("not resuming upload " + old_id + ": " + file +
                             " was modified since the upload started; starting over"));
  EXPECT_THAT(err, HasSubstr("aborted upload " + old_id));
  auto old = client_->GetUpload(old_id);
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->state(), v1::UPLOAD_STATE_EXPIRED);
  EXPECT_EQ(old->expiry_reason(), v1::EXPIRY_REASON_ABORTED);
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);  // no orphaned parts
  std::optional<std::string> stored = Stored("uploads/db.bin");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(Md5(*stored), Md5(ReadAll(file)));
}

// A file whose size changed starts over too.
TEST_F(MultipartResumeTest, AResizedFileStartsOver) {
  const std::string file = dir_.WriteFile("grow.bin", Data(3 * kPart));
  client::UploadArgs args = Args(file, "uploads/grow.bin");
  Interrupted(args, 2, nullptr);
  dir_.WriteFile("grow.bin", Data(4 * kPart + 7, 3));
  std::string err;
  EXPECT_THAT(Finished(args, &err), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(err, HasSubstr("is now 409607 bytes, it was 307200"));
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);
  EXPECT_EQ(Md5(*Stored("uploads/grow.bin")), Md5(ReadAll(file)));
}

// Rewriting a part that was already sent while the upload runs: the upload
// refuses to complete (no object mixing two versions), and the next run
// starts over and stores the file as it is now.
TEST_F(MultipartResumeTest, AFileChangedDuringTheUploadIsNotCompleted) {
  const std::string file = dir_.WriteFile("live.bin", Data(3 * kPart + 5));
  client::UploadArgs args = Args(file, "uploads/live.bin");
  args.on_part_done = [&](int n) {
    if (n == 2) {
      Rewrite(file, 0, Data(kPart, 4));  // part 1 is already in OSS
      timespec t = Mtime(file);
      t.tv_sec += 2;  // coarse-mtime file systems: make the change visible
      SetMtime(file, t);
    }
    return true;
  };
  std::ostringstream out, err;
  EXPECT_EQ(client::Upload(args, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr(file + " changed while it was being uploaded; not completing"));
  EXPECT_FALSE(Stored("uploads/live.bin").has_value());

  std::string err2;
  EXPECT_THAT(Finished(Args(file, "uploads/live.bin"), &err2), ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(err2, HasSubstr("starting over"));
  EXPECT_EQ(Md5(*Stored("uploads/live.bin")), Md5(ReadAll(file)));
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);
}

// A state file from an older ubctl (bucket, key and size only) cannot prove
// the parts in OSS are this file's: the upload it names is aborted.
TEST_F(MultipartResumeTest, AnOlderStateFileIsNotTrusted) {
  const std::string file = dir_.WriteFile("old.bin", Data(2 * kPart + 1));
  client::UploadArgs args = Args(file, "uploads/old.bin");
  Interrupted(args, 1, nullptr);
  const std::string old_id = SavedId(file);
  dir_.WriteFile("old.bin.ubupload",
                 absl::StrCat("{\"upload_id\":\"", old_id,
                              "\",\"bucket\":\"devbucket\",\"key\":\"uploads/old.bin\","
                              "\"size\":",
                              2 * kPart + 1, "}\n"));
  std::string err;
  EXPECT_THAT(Finished(args, &err), ElementsAre(1, 2, 3));
  EXPECT_THAT(err, HasSubstr("written by an older ubctl"));
  EXPECT_EQ(client_->GetUpload(old_id)->expiry_reason(), v1::EXPIRY_REASON_ABORTED);
  EXPECT_EQ(Md5(*Stored("uploads/old.bin")), Md5(ReadAll(file)));
}

// Hostile state files: garbage, a torn journal line, a journal whose MD5s
// lie. None may make a part be skipped that OSS does not hold as the file.
TEST_F(MultipartResumeTest, HostileStateFilesNeverSkipAWrongPart) {
  const std::string file = dir_.WriteFile("h.bin", Data(3 * kPart + 3));
  client::UploadArgs args = Args(file, "uploads/h.bin");
  dir_.WriteFile("h.bin.ubupload", "\x01garbage{\n");
  Interrupted(args, 2, nullptr);  // garbage: treated as no state
  std::string state = ReadAll(client::ResumeStatePath(file));
  // Lie about part 1's MD5, then tear the last line.
  state += "{\"part\":1,\"md5\":\"00000000000000000000000000000000\"}\n{\"part\":2,\"md";
  dir_.WriteFile("h.bin.ubupload", state);
  const timespec before = Mtime(file);
  Rewrite(file, kPart, Data(kPart, 9));  // part 2 now differs from OSS's copy
  SetMtime(file, before);
  std::string err;
  // Part 1: OSS's ETag is the file's MD5 (the journal's lie does not count);
  // part 2: OSS's copy is not the file's, so it is sent again.
  EXPECT_THAT(Finished(args, &err), ElementsAre(2, 3, 4));
  EXPECT_THAT(err, HasSubstr("1 match the file, 1 differ"));
  EXPECT_EQ(Md5(*Stored("uploads/h.bin")), Md5(ReadAll(file)));
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);
}

// An explicit --state-file keeps the state there, and resuming uses it.
TEST_F(MultipartResumeTest, AnExplicitStateFileIsUsed) {
  const std::string file = dir_.WriteFile("s.bin", Data(3 * kPart + 3));
  client::UploadArgs args = Args(file, "uploads/s.bin");
  args.state_file = dir_.File("elsewhere.state");
  Interrupted(args, 2, nullptr);
  EXPECT_TRUE(std::ifstream(args.state_file).good());
  EXPECT_FALSE(std::ifstream(file + ".ubupload").good());
  std::string err;
  EXPECT_THAT(Finished(args, &err), ElementsAre(3, 4));
  EXPECT_THAT(err, HasSubstr("note: the resume state is kept in " + args.state_file));
  EXPECT_EQ(Md5(*Stored("uploads/s.bin")), Md5(ReadAll(file)));
  EXPECT_FALSE(std::ifstream(args.state_file).good());
}

// A --state-file that cannot be written is refused before anything starts.
TEST_F(MultipartResumeTest, AnUnwritableStateFileIsRefusedLoudly) {
  const std::string file = dir_.WriteFile("u.bin", Data(2 * kPart));
  client::UploadArgs args = Args(file, "uploads/u.bin");
  args.state_file = dir_.WriteFile("not-a-dir", "x") + "/state";  // ENOTDIR, even for root
  std::ostringstream out, err;
  EXPECT_EQ(client::Upload(args, out, err), 2);
  EXPECT_THAT(err.str(), HasSubstr("error: nowhere to keep the resume state: " + args.state_file +
                                   " cannot be written; pass --state-file PATH"));
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);
  EXPECT_THAT(out.str(), Not(HasSubstr("upload_id")));
}

// OSS stored the object but could not call the broker back (203): nothing is
// left to resume, so the state file goes, and a later run naming that upload
// (here through an older state file) must not abort the intent the
// reconciler will record.
TEST_F(MultipartResumeTest, AnObjectStoredWithoutCallbackIsLeftForTheReconciler) {
  const std::string file = dir_.WriteFile("cb.bin", Data(2 * kPart + 5));
  client::UploadArgs args = Args(file, "uploads/cb.bin");
  relay_.SetTarget(1);  // the callback cannot reach the broker
  std::ostringstream out, err;
  EXPECT_EQ(client::Upload(args, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr("OSS could not deliver the upload callback"));
  EXPECT_EQ(Md5(*Stored("uploads/cb.bin")), Md5(ReadAll(file)));
  EXPECT_FALSE(std::ifstream(client::ResumeStatePath(file)).good());
  v1::ListUploadsRequest pending;
  pending.set_state(v1::UPLOAD_STATE_PENDING);
  auto listed = client_->ListUploads(pending);
  ASSERT_TRUE(listed.ok() && listed->uploads_size() == 1) << listed.status();
  const std::string id = listed->uploads(0).upload_id();

  relay_.SetTarget(broker_->http_port());
  dir_.WriteFile("cb.bin.ubupload",
                 absl::StrCat("{\"upload_id\":\"", id,
                              "\",\"bucket\":\"devbucket\",\"key\":\"uploads/cb.bin\",\"size\":",
                              2 * kPart + 5, "}\n"));
  args.allow_overwrite = true;
  std::string err2;
  Finished(args, &err2);
  EXPECT_THAT(err2, Not(HasSubstr("aborted upload")));
  EXPECT_EQ(client_->GetUpload(id)->state(), v1::UPLOAD_STATE_PENDING);
}

// OSS's error documents are read with the project's XML reader: entities
// decoded, only the root's own children, nothing from a document that is
// not XML.
TEST(OssErrorDocument, FieldsAreReadAsXml) {
  const std::string doc =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
      "<Message>a &amp; b &lt;c&gt;</Message><Detail><HostId>h</HostId></Detail></Error>";
  EXPECT_EQ(client::internal::XmlField(doc, "Code"), "AccessDenied");
  EXPECT_EQ(client::internal::XmlField(doc, "Message"), "a & b <c>");
  EXPECT_EQ(client::internal::XmlField(doc, "HostId"), "");
  EXPECT_EQ(client::internal::XmlField("<Error><Code>x</Code>", "Code"), "");
  EXPECT_EQ(client::internal::XmlField("not xml <Code>x</Code>", "Code"), "");
}

// A failed part is tried again after the shared schedule's delays
// (common::Backoff), 0.4 s doubling to at most 6.4 s.
TEST(MultipartRetry, WaitsOnTheSharedBackoffSchedule) {
  const common::Backoff& b = client::UploadArgs().part_retry_backoff;
  EXPECT_EQ(b.Delay(0), absl::Milliseconds(400));
  EXPECT_EQ(b.Delay(1), absl::Milliseconds(800));
  EXPECT_EQ(b.Delay(4), absl::Milliseconds(6400));
  EXPECT_EQ(b.Delay(9), absl::Milliseconds(6400));
}

}  // namespace
}  // namespace uploadbroker
