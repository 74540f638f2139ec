// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: everything the server parses from a client. The bytes
// are an HTTP/1.1 request as it arrives on a socket: Beast's parser (with
// the server's header and body limits), then the request target (path
// segments, percent-decoding, query), then the body through the JSON
// decoders of every endpoint that takes one. No input may crash, trip an
// assertion or read out of bounds; each is either decoded or refused with
// kInvalidArgument. The bytes are also tried as the key (JSON pointer) of a
// declared projection, applied to a fixed event.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "server/api.h"
#include "server/declared_projections.h"
#include "wire/codec.h"

namespace {

namespace http = boost::beast::http;

void decode_body(std::string_view body, std::string_view content_type, std::string_view expected) {
  (void)vellum::wire::parse_append_body(body, content_type, expected);
  (void)vellum::wire::parse_transaction_body(body);
  (void)vellum::wire::parse_metadata_body(body);
  auto json = vellum::wire::Json::parse(body, nullptr, false);
  if (!json.is_discarded()) {
    vellum::wire::EventParseOptions options;
    options.ignore_recorded_attributes = true;
    (void)vellum::wire::event_from_json(json, "fuzz", options);
    (void)vellum::wire::expected_revision_from_json(json, "fuzz");
  }
}

// Keeps values in a map, as the kv sink's view does.
class MapView : public vellum::KvView {
 public:
  vellum::Result<std::optional<std::string>> get(std::string_view key) override {
    auto it = values_.find(std::string(key));
    if (it == values_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  void put(std::string_view key, std::string_view value) override {
    values_[std::string(key)] = std::string(value);
  }
  void erase(std::string_view key) override { values_.erase(std::string(key)); }

 private:
  std::map<std::string, std::string> values_;
};

void try_projection_key(std::string_view key) {
  vellum::server::DeclaredProjectionFields fields;
  fields.name = "fuzz";
  fields.key = std::string(key);
  fields.reduce = "count";
  auto projection = vellum::server::parse_declared_projection(fields, "fuzz");
  if (!projection) return;
  vellum::Uuid id{};
  vellum::EventRef event{id,
                         "s-1",
                         0,
                         0,
                         "T",
                         "application/json",
                         R"({"a":{"b":["x",7,{"":"y"}]},"a/b":1,"m~n":"z"})",
                         {},
                         {},
                         {},
                         "subject",
                         0,
                         0,
                         1,
                         0};
  MapView view;
  (void)vellum::server::apply_declared_projection(*projection, event, view);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 << 10);
  parser.body_limit(1 << 20);
  parser.eager(true);
  boost::beast::error_code error;
  size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), error);
  (void)used;
  if (!error && parser.is_header_done()) {
    const auto& request = parser.get();
    (void)vellum::server::parse_target(request.target());
    std::string content_type(request[http::field::content_type]);
    std::string expected(request["Expected-Revision"]);
    decode_body(request.body(), content_type, expected);
    (void)vellum::wire::parse_expected_revision(expected, "fuzz");
  }
  // The same bytes as a bare body and a bare target reach the decoders
  // without having to be a valid HTTP request first.
  decode_body(bytes, "application/cloudevents+json", "");
  (void)vellum::server::parse_target(bytes);
  (void)vellum::wire::parse_rfc3339(bytes);
  (void)vellum::wire::base64_decode(bytes);
  try_projection_key(bytes);
  return 0;
}
