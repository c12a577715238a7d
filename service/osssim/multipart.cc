#include "osssim/multipart.h"

#include <gmime/gmime.h>

#include <fcntl.h>

#include <memory>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace uploadbroker::osssim {
namespace {

struct GObjectUnref {
  void operator()(void* p) const {
    if (p != nullptr) g_object_unref(p);
  }
};
template <typename T>
using GPtr = std::unique_ptr<T, GObjectUnref>;

void InitGMimeOnce() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

// Appended to every body before GMime parses it. A form ends with its close
// delimiter, and the CRLF after that is optional (RFC 2046 §5.1.1:
// `close-delimiter transport-padding [CRLF epilogue]`; Node 18's fetch sends
// none, curl and Node 20 send one). When the close delimiter ends the stream
// without a line end, GMime leaves the CR of the CRLF that belongs to the
// delimiter in the last part's content (the file gained a byte). After a
// line end this is at most an empty epilogue, which is ignored.
constexpr char kAfterBody[] = "\r\n";

absl::Status Invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("multipart/form-data: ", what));
}

std::string PartContent(GMimePart* part) {
  GMimeDataWrapper* wrapper = g_mime_part_get_content(part);  // borrowed
  if (wrapper == nullptr) return "";
  GPtr<GMimeStream> out(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(wrapper, out.get());
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

absl::Status CheckContentType(absl::string_view content_type) {
  if (!absl::StartsWithIgnoreCase(absl::StripLeadingAsciiWhitespace(content_type),
                                  "multipart/form-data") ||
      !absl::StrContains(absl::AsciiStrToLower(content_type), "boundary=")) {
    return Invalid("Content-Type is not multipart/form-data with a boundary");
  }
  for (char c : content_type) {
    if (c == '\r' || c == '\n') return Invalid("bad Content-Type");
  }
  return absl::OkStatus();
}

// Copies the decoded content of `part` into `out` a piece at a time (what
// g_mime_data_wrapper_write_to_stream does, into a StagedFile).
absl::Status CopyContent(GMimePart* part, StagedFile& out) {
  GMimeDataWrapper* wrapper = g_mime_part_get_content(part);  // borrowed
  if (wrapper == nullptr) return absl::OkStatus();
  GMimeStream* raw = g_mime_data_wrapper_get_stream(wrapper);  // borrowed
  GPtr<GMimeStream> filtered(g_mime_stream_filter_new(raw));
  switch (g_mime_data_wrapper_get_encoding(wrapper)) {
    case GMIME_CONTENT_ENCODING_BASE64:
    case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
    case GMIME_CONTENT_ENCODING_UUENCODE: {
      GPtr<GMimeFilter> decoder(
          g_mime_filter_basic_new(g_mime_data_wrapper_get_encoding(wrapper), FALSE));
      g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered.get()), decoder.get());
      break;
    }
    default:
      break;
  }
  g_mime_stream_reset(raw);
  std::string buffer(256 * 1024, '\0');
  while (true) {
    ssize_t n = g_mime_stream_read(filtered.get(), buffer.data(), buffer.size());
    if (n < 0) return absl::InternalError("cannot read the staged form");
    if (n == 0) break;
    if (absl::Status s = out.Write(absl::string_view(buffer.data(), n)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// Parses the MIME entity in `stream`. With `file` set, the last part named
// `file` goes there and earlier ones are skipped (see ParseFormFile).
absl::StatusOr<std::vector<FormPart>> ParseEntity(GMimeStream* stream, const FormLimits& limits,
                                                  StagedFile* file) {
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream));
  // The default, stated: part content stays in the (seekable) stream.
  g_mime_parser_set_persist_stream(parser.get(), TRUE);
  GPtr<GMimeObject> root(g_mime_parser_construct_part(parser.get(), nullptr));
  if (root == nullptr || !GMIME_IS_MULTIPART(root.get())) return Invalid("body does not parse");
  GMimeMultipart* multipart = GMIME_MULTIPART(root.get());
  int count = g_mime_multipart_get_count(multipart);
  if (count <= 0) return Invalid("no parts");
  if (static_cast<size_t>(count) > limits.max_parts) return Invalid("too many parts");

  std::vector<FormPart> parts;
  size_t fields_bytes = 0;
  for (int i = 0; i < count; ++i) {
    GMimeObject* object = g_mime_multipart_get_part(multipart, i);  // borrowed
    if (!GMIME_IS_PART(object)) return Invalid("nested multipart is not allowed");
    GMimeContentDisposition* disposition = g_mime_object_get_content_disposition(object);
    const char* name = disposition == nullptr
                           ? nullptr
                           : g_mime_content_disposition_get_parameter(disposition, "name");
    if (name == nullptr || *name == '\0') return Invalid("a part has no form-data name");
    FormPart part;
    part.name = name;
    if (part.name.size() > limits.max_name_bytes) return Invalid("a field name is too long");
    const char* filename = g_mime_content_disposition_get_parameter(disposition, "filename");
    if (filename != nullptr) part.filename = filename;
    const char* type = g_mime_object_get_header(object, "Content-Type");
    if (type != nullptr) part.content_type = std::string(absl::StripAsciiWhitespace(type));
    const bool is_file = absl::EqualsIgnoreCase(part.name, "file");
    if (is_file && file != nullptr) {
      if (i == count - 1) {
        if (absl::Status s = CopyContent(GMIME_PART(object), *file); !s.ok()) return s;
      }
    } else {
      part.value = PartContent(GMIME_PART(object));
    }
    if (!is_file) {
      if (part.value.size() > limits.max_value_bytes) {
        return Invalid(absl::StrCat("field ", part.name, " is too long"));
      }
      fields_bytes += part.value.size();
      if (fields_bytes > limits.max_fields_bytes) return Invalid("form fields are too long");
    }
    parts.push_back(std::move(part));
  }
  return parts;
}

}  // namespace

std::string FormEntityHead(absl::string_view content_type) {
  return absl::StrCat("Content-Type: ", content_type, "\r\n\r\n");
}

absl::StatusOr<std::vector<FormPart>> ParseFormData(absl::string_view content_type,
                                                    absl::string_view body,
                                                    const FormLimits& limits) {
  if (absl::Status s = CheckContentType(content_type); !s.ok()) return s;
  InitGMimeOnce();
  // GMime parses MIME entities: give it the body behind its Content-Type
  // (and a line end after it: see kAfterBody).
  std::string entity = absl::StrCat(FormEntityHead(content_type), body, kAfterBody);
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(entity.data(), entity.size()));
  return ParseEntity(stream.get(), limits, nullptr);
}

absl::StatusOr<std::vector<FormPart>> ParseFormFile(absl::string_view content_type,
                                                    const std::string& path, StagedFile& file,
                                                    const FormLimits& limits) {
  if (absl::Status s = CheckContentType(content_type); !s.ok()) return s;
  InitGMimeOnce();
  GError* error = nullptr;
  GPtr<GMimeStream> stream(g_mime_stream_fs_open(path.c_str(), O_RDONLY, 0, &error));
  if (stream == nullptr) {
    if (error != nullptr) g_error_free(error);
    return absl::InternalError("cannot open the staged form");
  }
  // The staged file, then kAfterBody (a seekable concatenation, so the
  // persistent parse still reads the file part in place).
  GPtr<GMimeStream> entity(g_mime_stream_cat_new());
  GPtr<GMimeStream> after(g_mime_stream_mem_new_with_buffer(kAfterBody, sizeof(kAfterBody) - 1));
  if (g_mime_stream_cat_add_source(GMIME_STREAM_CAT(entity.get()), stream.get()) != 0 ||
      g_mime_stream_cat_add_source(GMIME_STREAM_CAT(entity.get()), after.get()) != 0) {
    return absl::InternalError("cannot read the staged form");
  }
  return ParseEntity(entity.get(), limits, &file);
}

}  // namespace uploadbroker::osssim
