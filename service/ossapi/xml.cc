#include "ossapi/xml.h"

#include <expat.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace uploadbroker::ossapi {
namespace {

// Builds the tree as expat reports elements. `open` holds the open
// elements, root first; a pointer stays valid while its element is open,
// since only a closed element's parent gains further children.
struct Builder {
  XML_Parser parser = nullptr;
  XmlLimits limits;
  XmlNode root;
  bool have_root = false;
  std::vector<XmlNode*> open;
  size_t elements = 0;
  std::string error;  // set when a handler stopped the parser

  void Stop(std::string why) {
    if (error.empty()) error = std::move(why);
    XML_StopParser(parser, XML_FALSE);
  }
  void Start(const char* name) {
    if (!error.empty()) return;
    if (++elements > limits.max_elements) {
      return Stop(absl::StrCat("more than ", limits.max_elements, " elements"));
    }
    if (open.size() >= static_cast<size_t>(limits.max_depth)) {
      return Stop(absl::StrCat("elements nested deeper than ", limits.max_depth));
    }
    XmlNode* node;
    if (open.empty()) {
      node = &root;  // expat itself refuses a second root element
      have_root = true;
    } else {
      open.back()->children.emplace_back();
      node = &open.back()->children.back();
    }
    node->name = name;
    open.push_back(node);
  }
  void End() {
    if (!open.empty()) open.pop_back();
  }
  void Text(const char* s, int len) {
    if (!open.empty()) open.back()->text.append(s, static_cast<size_t>(len));
  }
};

void XMLCALL OnStart(void* data, const XML_Char* name, const XML_Char**) {
  static_cast<Builder*>(data)->Start(name);
}
void XMLCALL OnEnd(void* data, const XML_Char*) { static_cast<Builder*>(data)->End(); }
void XMLCALL OnText(void* data, const XML_Char* s, int len) {
  static_cast<Builder*>(data)->Text(s, len);
}
void XMLCALL OnDoctype(void* data, const XML_Char*, const XML_Char*, const XML_Char*, int) {
  static_cast<Builder*>(data)->Stop("a DOCTYPE is not accepted");
}

}  // namespace

const XmlNode* XmlNode::Child(absl::string_view child_name) const {
  for (const XmlNode& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

std::vector<const XmlNode*> XmlNode::Children(absl::string_view child_name) const {
  std::vector<const XmlNode*> out;
  for (const XmlNode& c : children) {
    if (c.name == child_name) out.push_back(&c);
  }
  return out;
}

std::string XmlNode::ChildText(absl::string_view child_name) const {
  const XmlNode* c = Child(child_name);
  return c == nullptr ? std::string() : c->text;
}

absl::StatusOr<XmlNode> ParseXml(absl::string_view xml, const XmlLimits& limits) {
  if (xml.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("XML document of ", xml.size(), " bytes, over the ", limits.max_bytes,
                     "-byte bound"));
  }
  std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> parser(XML_ParserCreate("UTF-8"),
                                                                       XML_ParserFree);
  if (!parser) return absl::InternalError("XML_ParserCreate failed");
  Builder b;
  b.parser = parser.get();
  b.limits = limits;
  XML_SetUserData(parser.get(), &b);
  XML_SetElementHandler(parser.get(), OnStart, OnEnd);
  XML_SetCharacterDataHandler(parser.get(), OnText);
  XML_SetStartDoctypeDeclHandler(parser.get(), OnDoctype);
  const XML_Status rc =
      XML_Parse(parser.get(), xml.data(), static_cast<int>(xml.size()), /*isFinal=*/1);
  if (!b.error.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("XML refused: ", b.error));
  }
  if (rc != XML_STATUS_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("not well-formed XML: ", XML_ErrorString(XML_GetErrorCode(parser.get())),
                     " at line ", XML_GetCurrentLineNumber(parser.get())));
  }
  if (!b.have_root) return absl::InvalidArgumentError("not well-formed XML: no element");
  return std::move(b.root);
}

}  // namespace uploadbroker::ossapi
