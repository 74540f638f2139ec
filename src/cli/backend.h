// SPDX-License-Identifier: Apache-2.0
// Where a `vellum` subcommand gets its events: the embedded store in --data,
// or a running server at --url. Both answer with the same values (events in
// the printed JSON form, vellum Errors), so a subcommand is written once and
// its output and exit codes do not depend on the mode.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>

#include "cli/cli_common.h"
#include "cli/http_client.h"

namespace vellum::cli {

class RemoteBackend;

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Result<AppendResult> append(const std::string& stream, ExpectedRevision expected,
                                      std::span<const EventData> events) = 0;
  // Several streams in one atomic commit, in order (Store::append_multi).
  virtual Result<std::vector<AppendResult>> append_multi(std::span<const StreamAppend> appends) = 0;
  // One page of a read; options as for Store::read_stream / Store::read_all.
  virtual Result<Page> read_stream(const std::string& stream, const ReadStreamOptions& options) = 0;
  virtual Result<Page> read_all(const ReadAllOptions& options) = 0;
  // last_revision, soft_deleted and tombstoned; the metadata only embedded.
  virtual Result<StreamInfo> stream_info(const std::string& stream) = 0;
  // Where the log ends now for a reader of what `filter` selects: a read_all
  // with this as as_of_position sees every such event committed so far and
  // nothing later. Embedded: the head of the whole log.
  virtual Result<uint64_t> head_position(const EventFilter& filter) = 0;

  // The embedded store, or nullptr with --url.
  virtual Store* store() { return nullptr; }
  // The server connection, or nullptr without --url.
  virtual RemoteBackend* remote() { return nullptr; }
};

// The server at --url, through its HTTP API (src/server/api.cc).
class RemoteBackend final : public Backend {
 public:
  explicit RemoteBackend(std::unique_ptr<HttpClient> http) : http_(std::move(http)) {}

  Result<AppendResult> append(const std::string& stream, ExpectedRevision expected,
                              std::span<const EventData> events) override;
  Result<std::vector<AppendResult>> append_multi(std::span<const StreamAppend> appends) override;
  Result<Page> read_stream(const std::string& stream, const ReadStreamOptions& options) override;
  Result<Page> read_all(const ReadAllOptions& options) override;
  Result<StreamInfo> stream_info(const std::string& stream) override;
  Result<uint64_t> head_position(const EventFilter& filter) override;
  RemoteBackend* remote() override { return this; }

  // A long poll: the stream's events from revision `from` as soon as there
  // are any, or an empty page after `wait_ms`. `next` is always set.
  Result<Page> poll_stream(const std::string& stream, uint64_t from, uint32_t max_count,
                           uint32_t wait_ms);
  // GET /metrics: every sample without labels, by name (needs an admin key
  // when the server has API keys).
  Result<std::map<std::string, double>> metrics();

  HttpClient& http() { return *http_; }

 private:
  std::unique_ptr<HttpClient> http_;
};

// The server at global.url if one is given, else the store in
// global.data_dir (created only if `create_if_missing`).
Result<std::unique_ptr<Backend>> open_backend(const GlobalOptions& global, bool create_if_missing);

// The JSON object that sends `event` to the server: what wire::event_from_json
// accepts. The data goes as data_base64 so its bytes arrive exactly as given
// (the server would otherwise re-serialize JSON data with sorted keys).
nlohmann::ordered_json event_data_to_json(const EventData& event);

}  // namespace vellum::cli
