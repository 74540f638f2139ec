// SPDX-License-Identifier: Apache-2.0
// Declarative projections: key-value read models described in the server's
// config file ([[projections]], docs/api/http.md "Projections"), so that
// users of any language get a queryable read model without writing C++.
//
// Each one is a kv-sink projection (vellum/projection.h): every event of its
// source is mapped to a key (its subject, its stream, or a JSON pointer into
// its CloudEvents JSON) and reduced into that key's value, which is JSON text:
//   latest  the event's CloudEvents JSON object
//   merge   the event's data applied as an RFC 7386 JSON merge patch
//   count   the number of events with that key
// Events without a key (no subject, pointer absent or not a string/number),
// and for `merge` events whose data is not JSON, are skipped: they have no
// effect, and the projection moves past them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vellum/event.h"
#include "vellum/projection.h"
#include "vellum/result.h"
#include "vellum/toolkit_db.h"

namespace vellum::server {

enum class ProjectionKey : uint8_t { kSubject, kStream, kJsonPointer };
enum class ProjectionReduce : uint8_t { kLatest, kMerge, kCount };

// The longest key a declared projection stores; an event whose key would be
// longer is skipped (a JSON pointer can select up to a whole event's data).
inline constexpr size_t kDeclaredKeyBytesMax = 1024;

struct DeclaredProjection {
  std::string name;
  ProjectionSource source;
  ProjectionKey key = ProjectionKey::kSubject;
  std::string key_pointer;                      // kJsonPointer only: RFC 6901, e.g. "/data/userId"
  std::vector<std::string> key_pointer_tokens;  // its reference tokens, unescaped
  ProjectionReduce reduce = ProjectionReduce::kLatest;
};

// The fields of one [[projections]] table as written in the config file.
struct DeclaredProjectionFields {
  std::string name;
  std::string stream;
  EventFilter filter;
  std::string key;     // "subject" | "stream" | a JSON pointer ("/...")
  std::string reduce;  // "latest" | "merge" | "count"
};

// Checks and converts the fields. Errors: kInvalidArgument naming `where`
// ("projections[2]") and the bad field: a bad name, a stream source combined
// with filters, a malformed JSON pointer, an unknown key or reduce.
Result<DeclaredProjection> parse_declared_projection(const DeclaredProjectionFields& fields,
                                                     std::string_view where);

// Applies one event to the read model: what the kv sink's handler does.
// Errors: only those of `view` (a value that is not the JSON its reduce
// wrote is kDataLoss: the read model was changed behind the projection's back).
Status apply_declared_projection(const DeclaredProjection& projection, const EventRef& event,
                                 KvView& view);

// The spec to pass to Projections::add: a kv sink in `db` (which must outlive
// the projection) running apply_declared_projection, started when added.
ProjectionSpec make_declared_projection_spec(const DeclaredProjection& projection, ToolkitDb& db);

const char* projection_reduce_name(ProjectionReduce reduce);

}  // namespace vellum::server
