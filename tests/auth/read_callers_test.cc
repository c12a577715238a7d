// Whose uploads a caller may read: its own, those of the callers its
// read_callers names, or all with "*" — the only way to read records that
// carry no caller (written before callers were recorded).
#include "auth/identity.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uploadbroker::auth {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

Identity Caller(std::string name, std::vector<std::string> readers = {}) {
  Identity id;
  id.name = std::move(name);
  id.read_callers = std::move(readers);
  return id;
}

TEST(ReadCallers, ACallerReadsOnlyItsOwnUploadsByDefault) {
  const Identity app = Caller("app");
  EXPECT_TRUE(MayRead(app, "app"));
  EXPECT_FALSE(MayRead(app, "batch"));
  EXPECT_FALSE(MayRead(app, ""));
  EXPECT_FALSE(MayRead(app, "ap"));
  EXPECT_THAT(ReadableCallers(app), ElementsAre("app"));
}

TEST(ReadCallers, ReadCallersAddNamedCallers) {
  const Identity reports = Caller("reports", {"app", "batch"});
  EXPECT_TRUE(MayRead(reports, "reports"));
  EXPECT_TRUE(MayRead(reports, "app"));
  EXPECT_TRUE(MayRead(reports, "batch"));
  EXPECT_FALSE(MayRead(reports, "other"));
  EXPECT_FALSE(MayRead(reports, ""));
  EXPECT_THAT(ReadableCallers(reports), ElementsAre("reports", "app", "batch"));
}

TEST(ReadCallers, StarReadsEveryUploadIncludingOnesWithoutACaller) {
  const Identity auditor = Caller("auditor", {"*"});
  EXPECT_TRUE(MayRead(auditor, "app"));
  EXPECT_TRUE(MayRead(auditor, ""));
  EXPECT_THAT(ReadableCallers(auditor), IsEmpty());  // no caller filter
}

}  // namespace
}  // namespace uploadbroker::auth
