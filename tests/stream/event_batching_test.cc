// Subscribe with several events per message (max_events_per_message), and
// many streams sharing reads of the log, as a subscriber sees them.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stream/event_batch.h"
#include "stream/event_streamer.h"
#include "tests/stream/test_broker.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::stream {
namespace {

using ::testing::Each;
using ::testing::ElementsAreArray;
using ::testing::Le;
using testing::AppendEvent;
using testing::Range;
using testing::TestBroker;
using testing::UploadSpec;

v1::SubscribeRequest Request(v1::StartPosition start, uint32_t per_message, uint64_t after = 0) {
  v1::SubscribeRequest r;
  r.set_start(start);
  r.set_after_cursor(after);
  r.set_max_events_per_message(per_message);
  return r;
}

// One client stream on its own connection that records how events arrive.
class Sub {
 public:
  Sub(const std::string& target, const v1::SubscribeRequest& req) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stub_ = v1::UploadBroker::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
    ctx_.AddMetadata("authorization", "Bearer key-app");
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    reader_ = stub_->Subscribe(&ctx_, req);
  }

  // Reads messages until n events arrived (or the stream ends); returns the
  // cursors of all events received so far.
  const std::vector<uint64_t>& Read(size_t n) {
    v1::SubscribeResponse resp;
    while (cursors_.size() < n && reader_->Read(&resp)) {
      const size_t before = cursors_.size();
      if (resp.has_event()) {
        ++single_;
        cursors_.push_back(resp.event().cursor());
      }
      for (const v1::Event& e : resp.events()) cursors_.push_back(e.cursor());
      counts_.push_back(cursors_.size() - before);
      bytes_.push_back(resp.ByteSizeLong());
    }
    return cursors_;
  }

  // Events per message, message sizes, and messages that used `event`.
  const std::vector<size_t>& counts() const { return counts_; }
  const std::vector<size_t>& bytes() const { return bytes_; }
  int single() const { return single_; }
  void Cancel() { ctx_.TryCancel(); }

 private:
  std::unique_ptr<v1::UploadBroker::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> reader_;
  std::vector<uint64_t> cursors_;
  std::vector<size_t> counts_;
  std::vector<size_t> bytes_;
  int single_ = 0;
};

class EventBatchingTest : public ::testing::Test {
 protected:
  void StartBroker(EventStreamer::Options so = {}) {
    TestBroker::Options o;
    o.db_path = dir_.File("ledger.db");
    o.streamer = so;
    broker_ = std::make_unique<TestBroker>(o);
  }
  uint64_t Append(const std::string& id, UploadSpec spec = {}) {
    return AppendEvent(broker_->ledger(), id, spec);
  }
  void AppendMany(const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) Append(absl::StrCat(prefix, i));
  }
  std::unique_ptr<Sub> Subscribe(const v1::SubscribeRequest& req) {
    return std::make_unique<Sub>(broker_->target(), req);
  }

  testing::TempDir dir_;
  std::unique_ptr<TestBroker> broker_;
};

TEST_F(EventBatchingTest, OptedInSubscriberGetsTheBacklogInFewerMessagesInOrder) {
  EventStreamer::Options so;
  so.batch_size = 16;  // the backlog spans several reads of the log
  StartBroker(so);
  AppendMany("a", 100);
  auto batched = Subscribe(Request(v1::START_POSITION_EARLIEST, 32));
  auto legacy = Subscribe(Request(v1::START_POSITION_EARLIEST, 0));
  EXPECT_THAT(batched->Read(100), ElementsAreArray(Range(1, 100)));
  EXPECT_THAT(legacy->Read(100), ElementsAreArray(Range(1, 100)));

  // Several events per message, never more than asked for, always in
  // `events`; the subscriber that did not ask gets one per message.
  EXPECT_EQ(batched->single(), 0);
  EXPECT_THAT(batched->counts(), Each(Le(32u)));
  EXPECT_LT(batched->counts().size(), 20u);
  EXPECT_EQ(legacy->single(), 100);
  EXPECT_EQ(legacy->counts().size(), 100u);

  // Live events still arrive as they commit.
  Append("live");
  EXPECT_THAT(batched->Read(101).back(), 101u);
  EXPECT_THAT(legacy->Read(101).back(), 101u);
}

TEST_F(EventBatchingTest, ResumingAfterACursorInsideAMessageGivesNoGapAndNoRepeat) {
  StartBroker();
  AppendMany("a", 40);
  auto first = Subscribe(Request(v1::START_POSITION_EARLIEST, 100));
  first->Read(40);
  ASSERT_GT(first->counts().front(), 10u);  // the backlog came in big messages
  first->Cancel();
  // The subscriber processed only part of a message before it went away.
  auto second = Subscribe(Request(v1::START_POSITION_AFTER_CURSOR, 100, 7));
  EXPECT_THAT(second->Read(33), ElementsAreArray(Range(8, 40)));
}

TEST_F(EventBatchingTest, FiltersApplyToEveryEventOfAMessage) {
  EventStreamer::Options so;
  so.batch_size = 8;
  StartBroker(so);
  std::vector<uint64_t> wanted;
  for (int i = 0; i < 60; ++i) {
    UploadSpec spec;
    spec.key = absl::StrCat(i % 3 == 0 ? "uploads/app/keep/" : "uploads/app/skip/", i);
    uint64_t cursor = Append(absl::StrCat("f", i), spec);
    if (i % 3 == 0) wanted.push_back(cursor);
  }
  v1::SubscribeRequest req = Request(v1::START_POSITION_EARLIEST, 5);
  req.mutable_filter()->add_key_prefixes("uploads/app/keep/");
  auto sub = Subscribe(req);
  EXPECT_THAT(sub->Read(wanted.size()), ElementsAreArray(wanted));
  EXPECT_THAT(sub->counts(), Each(Le(5u)));
}

TEST_F(EventBatchingTest, MessagesStayUnderTheSizeLimit) {
  StartBroker();
  UploadSpec big;
  big.metadata["blob"] = std::string(300 << 10, 'x');  // ~300 KiB per event
  for (int i = 0; i < 10; ++i) Append(absl::StrCat("big", i), big);
  auto sub = Subscribe(Request(v1::START_POSITION_EARLIEST, 100));
  EXPECT_THAT(sub->Read(10), ElementsAreArray(Range(1, 10)));
  EXPECT_THAT(sub->bytes(), Each(Le(kMaxMessageBytes)));
  EXPECT_GT(sub->counts().front(), 1u);  // still more than one event each
}

TEST_F(EventBatchingTest, ManyBusyStreamsEachGetEveryEventOnceInOrder) {
  // Small batches and few kept batches: streams that finish writing at
  // different times ask for the same batches, or for evicted ones.
  EventStreamer::Options so;
  so.batch_size = 4;
  so.shared_batches = 3;
  StartBroker(so);
  AppendMany("old", 20);
  std::vector<std::unique_ptr<Sub>> subs;
  std::vector<uint64_t> first;
  for (int i = 0; i < 30; ++i) {
    const auto start = i % 3 == 0   ? Request(v1::START_POSITION_EARLIEST, 0)
                       : i % 3 == 1 ? Request(v1::START_POSITION_AFTER_CURSOR, 7, 10)
                                    : Request(v1::START_POSITION_AFTER_CURSOR, 1, 20);
    subs.push_back(Subscribe(start));
    first.push_back(start.start() == v1::START_POSITION_EARLIEST ? 1 : start.after_cursor() + 1);
  }
  std::thread producer([&] { AppendMany("new", 150); });
  for (size_t i = 0; i < subs.size(); ++i) {
    EXPECT_THAT(subs[i]->Read(170 - first[i] + 1), ElementsAreArray(Range(first[i], 170)))
        << "stream " << i;
  }
  producer.join();
}

}  // namespace
}  // namespace uploadbroker::stream
