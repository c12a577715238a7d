// ParseXml: the tree it builds (nesting, text, entities, helpers) and what
// it refuses (malformed input, DOCTYPEs, documents over its bounds).
#include "ossapi/xml.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uploadbroker::ossapi {
namespace {

using ::testing::HasSubstr;

TEST(ParseXml, BuildsNestedElements) {
  absl::StatusOr<XmlNode> root = ParseXml(R"(<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult>
  <Bucket>b</Bucket>
  <Part><PartNumber>1</PartNumber><Size>5</Size></Part>
  <Part><PartNumber>2</PartNumber><Size>7</Size><Owner><ID>x</ID></Owner></Part>
  <IsTruncated>false</IsTruncated>
</ListPartsResult>)");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->name, "ListPartsResult");
  EXPECT_EQ(root->ChildText("Bucket"), "b");
  EXPECT_EQ(root->ChildText("IsTruncated"), "false");
  EXPECT_EQ(root->ChildText("Missing"), "");
  EXPECT_EQ(root->Child("Missing"), nullptr);
  std::vector<const XmlNode*> parts = root->Children("Part");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0]->ChildText("PartNumber"), "1");
  EXPECT_EQ(parts[1]->ChildText("Size"), "7");
  ASSERT_NE(parts[1]->Child("Owner"), nullptr);
  EXPECT_EQ(parts[1]->Child("Owner")->ChildText("ID"), "x");
  // Only direct children: ID is a grandchild of Part.
  EXPECT_EQ(parts[1]->Child("ID"), nullptr);
  EXPECT_TRUE(root->Children("Nothing").empty());
}

TEST(ParseXml, DecodesEntitiesAndKeepsLeafTextExact) {
  absl::StatusOr<XmlNode> root = ParseXml(
      "<Error><Code>A&amp;B</Code><ETag>&quot;35A2&quot;</ETag>"
      "<Message> &lt;x&gt; &apos;y&apos; &#34;&#x4F60; </Message><Empty/></Error>");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->ChildText("Code"), "A&B");
  EXPECT_EQ(root->ChildText("ETag"), "\"35A2\"");
  EXPECT_EQ(root->ChildText("Message"), " <x> 'y' \"\xE4\xBD\xA0 ");
  ASSERT_NE(root->Child("Empty"), nullptr);
  EXPECT_EQ(root->ChildText("Empty"), "");
}

TEST(ParseXml, CdataIsText) {
  absl::StatusOr<XmlNode> root = ParseXml("<a><b><![CDATA[<not&a tag>]]></b></a>");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->ChildText("b"), "<not&a tag>");
}

TEST(ParseXml, RefusesMalformed) {
  for (const char* bad : {"", "   ", "not xml", "<a><b></a>", "<a>", "<a></a><b></b>",
                          "<a>&nosuch;</a>", "<a x=1></a>", "<html><body>502 Bad Gateway"}) {
    absl::StatusOr<XmlNode> root = ParseXml(bad);
    ASSERT_FALSE(root.ok()) << bad;
    EXPECT_EQ(root.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(root.status().message(), HasSubstr("not well-formed XML")) << bad;
  }
}

TEST(ParseXml, RefusesDoctype) {
  absl::StatusOr<XmlNode> root = ParseXml(
      "<!DOCTYPE a [<!ENTITY x \"xxxxxxxx\"><!ENTITY y \"&x;&x;&x;&x;\">]><a>&y;</a>");
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(root.status().message(), HasSubstr("DOCTYPE"));
}

TEST(ParseXml, RefusesTooDeep) {
  XmlLimits limits;
  limits.max_depth = 4;
  EXPECT_TRUE(ParseXml("<a><b><c><d/></c></b></a>", limits).ok());
  absl::StatusOr<XmlNode> root = ParseXml("<a><b><c><d><e/></d></c></b></a>", limits);
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(root.status().message(), HasSubstr("deeper than 4"));

  // The default bound stops a deeply nested document.
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += "<a>";
  for (int i = 0; i < 10000; ++i) deep += "</a>";
  root = ParseXml(deep);
  ASSERT_FALSE(root.ok());
  EXPECT_THAT(root.status().message(), HasSubstr("deeper than"));
}

TEST(ParseXml, RefusesTooBig) {
  XmlLimits limits;
  limits.max_bytes = 16;
  EXPECT_TRUE(ParseXml("<a>012345678</a>", limits).ok());  // 16 bytes
  absl::StatusOr<XmlNode> root = ParseXml("<a>0123456789</a>", limits);
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(root.status().message(), HasSubstr("over the 16-byte bound"));

  limits = XmlLimits();
  limits.max_elements = 3;
  EXPECT_TRUE(ParseXml("<a><b/><b/></a>", limits).ok());
  root = ParseXml("<a><b/><b/><b/></a>", limits);
  ASSERT_FALSE(root.ok());
  EXPECT_THAT(root.status().message(), HasSubstr("more than 3 elements"));

  // The default byte bound matches SendSigned's 4 MiB answer cap.
  std::string big = "<a>" + std::string((4 << 20) + 1, 'x') + "</a>";
  root = ParseXml(big);
  ASSERT_FALSE(root.ok());
  EXPECT_THAT(root.status().message(), HasSubstr("bytes, over the"));
}

}  // namespace
}  // namespace uploadbroker::ossapi
