// ParseXml: the one way ossapi reads XML (OSS's answers: ListObjectsV2,
// InitiateMultipartUpload, ListParts, error documents). expat parses the
// document into a small tree of elements; attributes, comments and
// processing instructions are dropped, entities are decoded, and a document
// with a DOCTYPE is refused (no DTD, so no entity expansion).
//
// Threads: ParseXml is reentrant (one expat parser per call); an XmlNode is
// a plain value, safe to read from several threads once built.
// Errors: InvalidArgument for input that is not well-formed XML, has a
// DOCTYPE, or exceeds XmlLimits (bytes, depth, elements), the message saying
// which; Internal if expat cannot allocate a parser. Callers that read an
// answer from OSS turn these into Unavailable naming the request.
#ifndef UPLOADBROKER_OSSAPI_XML_H_
#define UPLOADBROKER_OSSAPI_XML_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::ossapi {

struct XmlNode {
  std::string name;  // the element's name, as written (no namespace processing)
  // The character data directly inside this element, concatenated,
  // entities decoded, whitespace kept (so a leaf's text is exact).
  std::string text;
  std::vector<XmlNode> children;  // child elements, in document order

  // The first child element named `name`, or nullptr.
  const XmlNode* Child(absl::string_view child_name) const;
  // Every child element named `name`, in document order.
  std::vector<const XmlNode*> Children(absl::string_view child_name) const;
  // The text of the first child named `name`; "" if there is none.
  std::string ChildText(absl::string_view child_name) const;
};

struct XmlLimits {
  size_t max_bytes = 4 << 20;   // the input document
  int max_depth = 32;           // the root element is depth 1
  size_t max_elements = 100000; // in the whole document
};

// The root element of `xml`, or an error as described above.
absl::StatusOr<XmlNode> ParseXml(absl::string_view xml, const XmlLimits& limits = {});

}  // namespace uploadbroker::ossapi

#endif  // UPLOADBROKER_OSSAPI_XML_H_
