// SPDX-License-Identifier: Apache-2.0
// The wire form of events: CloudEvents 1.0 JSON (structured mode) in and out,
// RFC 3339 times, base64, and the JSON bodies of the HTTP API
// (docs/api/http.md). Shared by the server, the CLI and the fuzz targets, so
// an event means the same thing on every path into the store.
//
// Everything here parses input from outside the process: it never asserts on
// input, it returns kInvalidArgument with a message naming the bad field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "vellum/event.h"
#include "vellum/result.h"

namespace vellum::wire {

// Objects keep their key order: data and metadata are stored as the client
// wrote them (nlohmann::json would sort keys).
using Json = nlohmann::ordered_json;
using OrderedJson = nlohmann::ordered_json;

// ---- Scalars ----

// True for application/json and any "+json" type, parameters ignored.
bool is_json_content_type(std::string_view content_type);

// RFC 3339 in UTC: "2026-11-23T10:47:54Z", or with ".123456789" nanoseconds
// when the fraction is not zero.
std::string format_rfc3339(int64_t unix_ns);
// Parses RFC 3339 ("Z" or a +hh:mm/-hh:mm offset, up to 9 fraction digits).
// std::nullopt if malformed or out of range.
std::optional<int64_t> parse_rfc3339(std::string_view text);

std::string base64_encode(std::string_view bytes);
// std::nullopt if `text` is not standard, padded base64.
std::optional<std::string> base64_decode(std::string_view text);

// "any" | "no_stream" | "stream_exists" | a decimal revision. `where` names
// the source in the error ("expectedRevision", "the Expected-Revision header").
Result<ExpectedRevision> parse_expected_revision(std::string_view text, std::string_view where);
// The same from a JSON value: one of the strings above or a non-negative number.
Result<ExpectedRevision> expected_revision_from_json(const Json& value, std::string_view where);

// ---- Events out ----

// The CloudEvents JSON object of a stored event: specversion, id, type,
// source, subject, time, datacontenttype, data (JSON content) or data_base64
// (anything else, or bytes that are not valid JSON), and the extension
// attributes stream, streamrevision, position, recordedtime, correlationid,
// causationid, schemaversion, metadata.
OrderedJson event_to_json(const RecordedEvent& event);
// event_to_json serialized; invalid UTF-8 in strings is replaced, never fatal.
std::string event_to_json_text(const RecordedEvent& event);
// Serializes any JSON value the same way (one line, invalid UTF-8 replaced).
std::string dump(const OrderedJson& value);

// ---- Events in ----

// The attributes of an event a client may send. Anything else is refused, so
// a misspelt attribute is an error instead of silently lost data.
struct EventParseOptions {
  // Accept (and ignore) the attributes that only the store assigns: stream,
  // streamrevision, position, recordedtime. `vellum import` reads what
  // `vellum export` wrote.
  bool ignore_recorded_attributes = false;
};

// One inbound event object: type (required), data | data_base64, id, subject,
// time, datacontenttype, metadata (an object), correlationid, causationid,
// schemaversion; specversion must be "1.0" when present; source is accepted
// and not stored. `where` prefixes error messages ("events[3]").
Result<EventData> event_from_json(const Json& object, std::string_view where,
                                  const EventParseOptions& options = {});

// ---- Request bodies of the HTTP API ----

// POST /streams/{stream}: {"expectedRevision": ..., "events": [...]}, or a
// bare array of events (also the application/cloudevents-batch+json form,
// and a single application/cloudevents+json object), whose expected revision
// comes from `expected_header` (empty = any).
struct AppendBody {
  ExpectedRevision expected = ExpectedRevision::any();
  std::vector<EventData> events;
};
Result<AppendBody> parse_append_body(std::string_view body, std::string_view content_type,
                                     std::string_view expected_header);

// POST /transactions: {"appends": [{"stream", "expectedRevision", "events"}]}.
Result<std::vector<StreamAppend>> parse_transaction_body(std::string_view body);

// PUT /streams/{stream}/metadata: {"maxAge", "maxCount", "truncateBefore",
// "custom"}; each optional, numbers non-negative, custom any JSON.
Result<StreamMetadata> parse_metadata_body(std::string_view body);
OrderedJson metadata_to_json(const StreamMetadata& metadata);

}  // namespace vellum::wire
