// ListUploads on each engine: only the asked-for callers' uploads (how the
// broker shows a caller its own uploads), and pages bounded in bytes as
// well as in count, so a page of large records still fits one message.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ledger/ledger_fixture.h"

namespace uploadbroker::ledger {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

std::vector<std::string> Ids(const UploadPage& page) {
  std::vector<std::string> out;
  for (const Upload& u : page.uploads) out.push_back(u.upload_id());
  return out;
}

TEST_P(LedgerContractTest, ListUploadsReturnsOnlyTheNamedCallers) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("a1", "photos", "alice")).ok());
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("b1", "photos", "bob")).ok());
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("c1", "photos", "carol")).ok());
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("n1", "photos", "")).ok());  // no owner recorded

  UploadQuery query;
  query.callers = {"alice"};
  EXPECT_THAT(Ids(*ledger->ListUploads(query)), ElementsAre("a1"));
  query.callers = {"alice", "carol"};
  EXPECT_THAT(Ids(*ledger->ListUploads(query)), ElementsAre("c1", "a1"));
  query.callers = {"nobody"};
  EXPECT_THAT(Ids(*ledger->ListUploads(query)), ElementsAre());
  query.callers = {};  // any caller, the ownerless record included
  EXPECT_THAT(Ids(*ledger->ListUploads(query)), ElementsAre("n1", "c1", "b1", "a1"));
}

// ListUploads' page tokens (#17): a page continues after a named upload,
// and the reader's scope prefixes are applied by the query itself.
TEST_P(LedgerContractTest, ListUploadsContinuesAfterANamedUploadInsideTheScopePrefixes) {
  auto ledger = Open();
  for (const char* id : {"a1", "x1", "a2", "a3", "x2", "a4"}) {
    Upload intent = Intent(id);
    intent.set_key(absl::StrCat(id[0] == 'a' ? "users/a/" : "users/x/", id));
    ASSERT_TRUE(CreateIntentSync(*ledger, intent).ok());
  }
  UploadQuery query;
  query.scope_prefixes = {"users/a/", "nothing/"};
  EXPECT_THAT(Ids(*ledger->ListUploads(query)), ElementsAre("a4", "a3", "a2", "a1"));
  query.limit = 2;
  auto first = ledger->ListUploads(query);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Ids(*first), ElementsAre("a4", "a3"));
  EXPECT_GT(first->next_before_seq, 0);
  query.before_upload_id = "a3";
  auto second = ledger->ListUploads(query);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(Ids(*second), ElementsAre("a2", "a1"));
  EXPECT_EQ(second->next_before_seq, 0);
  // An id that names nothing is no position: nothing before it.
  query.before_upload_id = "never-issued";
  EXPECT_THAT(Ids(*ledger->ListUploads(query)), ElementsAre());
  // Prefixes are bytes, not patterns.
  query = UploadQuery();
  query.scope_prefixes = {"users/%", "users/_/"};
  EXPECT_THAT(Ids(*ledger->ListUploads(query)), ElementsAre());
}

TEST_P(LedgerContractTest, ListUploadsPagesStayWithinTheByteBudgetAndReturnEachUploadOnce) {
  auto ledger = Open();
  // ~37 KB records: 32 metadata values of 1 KiB and a long key.
  constexpr int kUploads = 60;
  for (int i = 0; i < kUploads; ++i) {
    Upload intent = Intent(absl::StrCat("u", i));
    intent.set_key(absl::StrCat("users/", std::string(900, 'k'), i));
    for (int m = 0; m < 32; ++m) {
      (*intent.mutable_metadata())[absl::StrCat("m", m)] = std::string(1024, 'v');
    }
    ASSERT_TRUE(CreateIntentSync(*ledger, intent).ok());
  }
  UploadQuery query;
  query.limit = 1000;
  query.max_bytes = 256 * 1024;
  std::set<std::string> seen;
  int pages = 0;
  do {
    auto page = ledger->ListUploads(query);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_FALSE(page->uploads.empty());
    size_t bytes = 0;
    for (const Upload& u : page->uploads) {
      bytes += UploadBytes(u);
      EXPECT_TRUE(seen.insert(u.upload_id()).second) << u.upload_id() << " listed twice";
    }
    EXPECT_LE(bytes, query.max_bytes);
    // The page is full: one more upload would not have fitted.
    if (page->next_before_seq != 0) EXPECT_GT(bytes + UploadBytes(page->uploads.back()), query.max_bytes);
    query.before_seq = page->next_before_seq;
    ++pages;
  } while (query.before_seq != 0 && pages < 100);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kUploads));
  EXPECT_GE(pages, 9);  // 60 x ~37 KB in 256 KiB pages

  // A budget below one record still returns one upload per page.
  query = UploadQuery();
  query.max_bytes = 100;
  query.limit = 5;
  auto page = ledger->ListUploads(query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->uploads.size(), 1u);
  EXPECT_NE(page->next_before_seq, 0);
}


// One key range in a named bucket (the callback path's look-up of the
// uploads naming a key): newest first and paged the same whether the range
// holds a few uploads (SQLite's engine sorts them after reading) or many.
TEST_P(LedgerContractTest, ListUploadsOfOneKeyRangeAreNewestFirstWhateverTheirNumber) {
  auto ledger = Open();
  // Keys out of creation order, so that index order is not creation order.
  std::vector<std::pair<std::string, std::string>> created;  // id, key
  for (int i = 0; i < 150; ++i) {
    const std::string id = absl::StrCat("k", i);
    Upload intent = Intent(id, i % 7 == 0 ? "videos" : "photos");
    intent.set_key(absl::StrCat("a/x", (i * 37) % 150));
    ASSERT_TRUE(CreateIntentSync(*ledger, intent).ok());
    if (i % 7 != 0) created.emplace_back(id, intent.key());
  }
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("other-key")).ok());
  // a/x: 128 uploads; a/x1: a/x1, a/x10..19, a/x100..149 (52); a/x37: one.
  for (const std::string prefix : {"a/x", "a/x1", "a/x37"}) {
    std::vector<std::string> newest_first;
    for (auto it = created.rbegin(); it != created.rend(); ++it) {
      if (absl::StartsWith(it->second, prefix)) newest_first.push_back(it->first);
    }
    for (const int limit : {1, 5, 40, 200}) {
      UploadQuery query;
      query.buckets = {"photos"};
      query.key_prefix = prefix;
      query.limit = limit;
      std::vector<std::string> listed;
      int pages = 0;
      do {
        auto page = ledger->ListUploads(query);
        ASSERT_TRUE(page.ok()) << page.status();
        EXPECT_LE(page->uploads.size(), static_cast<size_t>(limit));
        for (const std::string& id : Ids(*page)) listed.push_back(id);
        query.before_seq = page->next_before_seq;
      } while (query.before_seq != 0 && ++pages < 500);
      EXPECT_EQ(listed, newest_first) << prefix << ", limit " << limit;
    }
  }
  UploadQuery query;
  query.buckets = {"photos"};
  query.key_prefix = "a/x37";
  EXPECT_THAT(Ids(*ledger->ListUploads(query)), ElementsAre("k1"));  // 37 % 150
  query.before_upload_id = "k1";
  EXPECT_THAT(Ids(*ledger->ListUploads(query)), ElementsAre());
  query.before_upload_id.clear();
  query.key_prefix = "a/x1";  // within the byte budget: one per page
  query.max_bytes = 1;
  auto page = ledger->ListUploads(query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->uploads.size(), 1u);
  EXPECT_NE(page->next_before_seq, 0);
}

}  // namespace
}  // namespace uploadbroker::ledger
