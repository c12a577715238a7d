// Internal to http::Server: the Boost.Beast Body type requests are parsed
// into. Not part of the component's interface.
//
// Once the headers are complete (Beast calls reader::init, only for a
// request that has a body), ServerOptions::stream_body, if set, may pick a
// BodySink: the body then goes to it piece by piece, limited by its
// max_bytes. Otherwise the body is collected in `text`, limited by
// max_body_bytes. The parser's own body_limit must be at least every limit
// used here (the connection sets it to max_body_bytes without stream_body,
// else to the largest value: the reader enforces the per-request limit).
// Used on one loop thread only, like the Connection that owns the parser.
#ifndef UPLOADBROKER_HTTP_ROUTED_BODY_H_
#define UPLOADBROKER_HTTP_ROUTED_BODY_H_

#include <boost/beast/core/buffer_traits.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "http/server.h"

namespace uploadbroker::http::internal {

// The request line and headers of `head` as a Request (no body), `peer` as
// given.
template <class Fields>
Request RequestHead(const boost::beast::http::header<true, Fields>& head,
                    const std::string& peer) {
  Request request;
  request.method = std::string(head.method_string());
  request.target = std::string(head.target());
  size_t question = request.target.find('?');
  request.path_raw = request.target.substr(0, question);
  if (question != std::string::npos) {
    request.query_raw = request.target.substr(question + 1);
  }
  request.headers.reserve(16);
  for (const auto& field : head) {
    request.headers.emplace_back(std::string(field.name_string()),
                                 std::string(field.value()));
  }
  request.peer = peer;
  return request;
}

struct RoutedBody {
  struct value_type {
    // Set by the connection before parsing (not owned).
    const ServerOptions* options = nullptr;
    const std::string* peer = nullptr;
    // The outcome: the body in `text`, or in `sink` (finished once the
    // parser is done).
    std::string text;
    std::shared_ptr<BodySink> sink;
    // Why a sink's Write or Finish failed; the request is then answered 500.
    std::string sink_error;
  };

  class reader {
   public:
    // Beast requires a reader for responses too; only requests use it.
    template <bool isRequest, class Fields>
    reader(boost::beast::http::header<isRequest, Fields>& head, value_type& body)
        : init_([&head, &body] {
            if constexpr (isRequest) {
              if (!body.options->stream_body) return;
              body.sink = body.options->stream_body(RequestHead(head, *body.peer));
            } else {
              (void)head;
            }
          }),
          body_(body) {}

    void init(const boost::optional<uint64_t>& length, boost::system::error_code& ec) {
      ec = {};
      init_();
      limit_ = body_.sink != nullptr ? body_.sink->max_bytes()
                                     : body_.options->max_body_bytes;
      if (length && *length > limit_) {
        ec = boost::beast::http::error::body_limit;
        return;
      }
      if (length && body_.sink == nullptr) body_.text.reserve(*length);
    }

    template <class ConstBufferSequence>
    size_t put(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
      ec = {};
      size_t extra = boost::beast::buffer_bytes(buffers);
      if (extra > limit_ - received_) {
        ec = boost::beast::http::error::body_limit;
        return 0;
      }
      for (auto b : boost::beast::buffers_range_ref(buffers)) {
        absl::string_view piece(static_cast<const char*>(b.data()), b.size());
        if (body_.sink == nullptr) {
          body_.text.append(piece.data(), piece.size());
        } else if (absl::Status s = body_.sink->Write(piece); !s.ok()) {
          return Failed(s, ec);
        }
      }
      received_ += extra;
      return extra;
    }

    void finish(boost::system::error_code& ec) {
      ec = {};
      if (body_.sink == nullptr) return;
      if (absl::Status s = body_.sink->Finish(); !s.ok()) Failed(s, ec);
    }

   private:
    size_t Failed(const absl::Status& status, boost::system::error_code& ec) {
      body_.sink_error = std::string(status.message());
      if (body_.sink_error.empty()) body_.sink_error = "body sink failed";
      ec = boost::system::errc::make_error_code(boost::system::errc::io_error);
      return 0;
    }

    std::function<void()> init_;  // picks the sink from the complete header
    value_type& body_;
    uint64_t limit_ = 0;
    uint64_t received_ = 0;
  };
};

}  // namespace uploadbroker::http::internal

#endif  // UPLOADBROKER_HTTP_ROUTED_BODY_H_
