// SPDX-License-Identifier: Apache-2.0
#include "server/config.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "rooms/room_token.h"
#include "server/demo_files.h"

namespace vellum::server {

namespace {

constexpr std::string_view kDemoDirTomlKey = "demo_dir";

tl::unexpected<Error> invalid(std::string message) {
  return tl::unexpected<Error>(Error{ErrorCode::kInvalidArgument, std::move(message), {}});
}

std::string env_name(std::string_view flag) {
  std::string name = "VELLUM_";
  for (char c : flag) name.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return name;
}

Result<Digest> parse_digest_hex(std::string_view hex, std::string_view where) {
  Digest digest{};
  if (hex.size() != 64) return invalid(fmt::format("{}: sha256 must be 64 hex digits", where));
  for (size_t i = 0; i < 32; i++) {
    unsigned value = 0;
    for (size_t j = 0; j < 2; j++) {
      char c = hex[2 * i + j];
      unsigned nibble = 0;
      if (c >= '0' && c <= '9') {
        nibble = static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        nibble = static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        nibble = static_cast<unsigned>(c - 'A' + 10);
      } else {
        return invalid(fmt::format("{}: sha256 must be 64 hex digits", where));
      }
      value = value * 16 + nibble;
    }
    digest[i] = static_cast<uint8_t>(value);
  }
  return digest;
}

Result<Role> parse_role(std::string_view text, std::string_view where) {
  if (text == "reader") return Role::kReader;
  if (text == "writer") return Role::kWriter;
  if (text == "admin") return Role::kAdmin;
  return invalid(fmt::format("{}: role must be reader, writer or admin, not \"{}\"", where, text));
}

Result<ApiKey> parse_api_key(const toml::table& table, size_t index) {
  std::string where = fmt::format("api_keys[{}]", index);
  for (const auto& [key, value] : table) {
    if (key != "name" && key != "sha256" && key != "role" && key != "streams") {
      return invalid(
          fmt::format("{}: unknown key \"{}\" (name, sha256, role, streams)", where, key.str()));
    }
  }
  ApiKey api_key;
  api_key.name = table["name"].value_or<std::string>(fmt::format("key-{}", index));
  std::optional<std::string> sha = table["sha256"].value<std::string>();
  if (!sha) return invalid(where + ": sha256 (of the token) is required");
  VL_TRY(digest, parse_digest_hex(*sha, where));
  api_key.token_sha256 = digest;
  std::optional<std::string> role = table["role"].value<std::string>();
  if (!role) return invalid(where + ": role is required (reader, writer or admin)");
  VL_TRY(parsed_role, parse_role(*role, where));
  api_key.role = parsed_role;
  const toml::array* streams = table["streams"].as_array();
  if (streams == nullptr || streams->empty()) {
    return invalid(where + ": streams (a list of stream name prefixes, or [\"*\"]) is required");
  }
  for (const toml::node& prefix : *streams) {
    std::optional<std::string> text = prefix.value<std::string>();
    if (!text) return invalid(where + ": streams must hold strings");
    api_key.stream_prefixes.push_back(*text);
  }
  return api_key;
}

Result<std::string> optional_string(const toml::table& table, const char* key,
                                    std::string_view where) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return std::string();
  std::optional<std::string> text = node->value<std::string>();
  if (!text) return invalid(fmt::format("{}: {} must be a string", where, key));
  return *text;
}

Result<DeclaredProjection> parse_projection(const toml::table& table, size_t index) {
  std::string where = fmt::format("projections[{}]", index);
  static constexpr std::string_view kKeys[] = {"name",    "stream",       "category", "types",
                                               "subject", "streamPrefix", "key",      "reduce"};
  for (const auto& [key, value] : table) {
    if (std::find(std::begin(kKeys), std::end(kKeys), key.str()) == std::end(kKeys)) {
      return invalid(fmt::format(
          "{}: unknown key \"{}\" (name, stream, category, types, subject, streamPrefix, key, "
          "reduce)",
          where, key.str()));
    }
  }
  DeclaredProjectionFields fields;
  VL_TRY(name, optional_string(table, "name", where));
  if (name.empty()) return invalid(where + ": name is required");
  fields.name = std::move(name);
  VL_TRY(stream, optional_string(table, "stream", where));
  fields.stream = std::move(stream);
  VL_TRY(category, optional_string(table, "category", where));
  fields.filter.category = std::move(category);
  VL_TRY(subject, optional_string(table, "subject", where));
  fields.filter.subject = std::move(subject);
  VL_TRY(stream_prefix, optional_string(table, "streamPrefix", where));
  fields.filter.stream_prefix = std::move(stream_prefix);
  if (const toml::node* types = table.get("types")) {
    const toml::array* array = types->as_array();
    if (array == nullptr) return invalid(where + ": types must be an array of event types");
    for (const toml::node& type : *array) {
      std::optional<std::string> text = type.value<std::string>();
      if (!text || text->empty()) return invalid(where + ": types must hold non-empty strings");
      fields.filter.types.push_back(*text);
    }
  }
  VL_TRY(key, optional_string(table, "key", where));
  if (key.empty()) {
    return invalid(where + ": key is required (\"subject\", \"stream\" or a JSON pointer)");
  }
  fields.key = std::move(key);
  VL_TRY(reduce, optional_string(table, "reduce", where));
  if (reduce.empty()) return invalid(where + ": reduce is required (latest, merge or count)");
  fields.reduce = std::move(reduce);
  return parse_declared_projection(fields, where);
}

// A secret from the file or, with "<name>_env", from that environment variable.
Result<std::string> secret_value(const toml::table& table, const std::string& where,
                                 const char* name) {
  VL_TRY(literal, optional_string(table, name, where));
  VL_TRY(variable, optional_string(table, (std::string(name) + "_env").c_str(), where));
  if (!literal.empty() && !variable.empty()) {
    return invalid(fmt::format("{}: give {} or {}_env, not both", where, name, name));
  }
  if (variable.empty()) return literal;
  const char* value = std::getenv(variable.c_str());
  if (value == nullptr || *value == '\0') {
    return invalid(fmt::format("{}: the environment variable {} is not set", where, variable));
  }
  return std::string(value);
}

Status parse_room_apps(const toml::node& node, std::vector<RoomApp>& apps) {
  const toml::array* array = node.as_array();
  if (array == nullptr) return invalid("room_apps must be an array of tables");
  for (size_t i = 0; i < array->size(); i++) {
    const toml::table* table = array->get(i)->as_table();
    if (table == nullptr) return invalid("room_apps must be an array of tables");
    std::string where = fmt::format("room_apps[{}]", i);
    for (const auto& [key, value] : *table) {
      static const std::set<std::string_view> kKnown = {"app", "secret", "secret_env",
                                                        "signing_key", "signing_key_env"};
      if (kKnown.count(key.str()) == 0) {
        return invalid(fmt::format(
            "{}: unknown key \"{}\" (app, secret, secret_env, signing_key, signing_key_env)", where,
            key.str()));
      }
    }
    RoomApp app;
    VL_TRY(name, optional_string(*table, "app", where));
    if (name.empty()) return invalid(where + ": app is required");
    app.app = name;
    VL_TRY(secret, secret_value(*table, where, "secret"));
    VL_TRY(signing_key, secret_value(*table, where, "signing_key"));
    if (secret.empty()) return invalid(where + ": a secret (or secret_env) is required");
    // The same rule `vellum room-token` applies: 16 to 1,024 bytes.
    if (Status strong = rooms::check_room_secret(secret); !strong) {
      return invalid(where + ": secret: " + strong.error().message);
    }
    if (!signing_key.empty()) {
      if (Status strong = rooms::check_room_secret(signing_key); !strong) {
        return invalid(where + ": signing_key: " + strong.error().message);
      }
    }
    app.secret = secret;
    app.signing_key = signing_key;
    for (const RoomApp& earlier : apps) {
      if (earlier.app == app.app) return invalid(where + ": app " + app.app + " twice");
    }
    apps.push_back(std::move(app));
  }
  return ok_status();
}

Status parse_projections(const toml::node& node, std::vector<DeclaredProjection>& projections) {
  const toml::array* array = node.as_array();
  if (array == nullptr) return invalid("config file: projections must be an array of tables");
  for (size_t i = 0; i < array->size(); i++) {
    const toml::table* table = array->get(i)->as_table();
    if (table == nullptr) return invalid("config file: projections must be an array of tables");
    VL_TRY(projection, parse_projection(*table, i));
    for (const DeclaredProjection& earlier : projections) {
      if (earlier.name == projection.name) {
        return invalid(
            fmt::format("projections[{}]: the name \"{}\" is already taken", i, projection.name));
      }
    }
    projections.push_back(std::move(projection));
  }
  return ok_status();
}

}  // namespace

const char* role_name(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kWriter:
      return "writer";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

// One option: its CLI11 handle and how to take its value from the TOML file.
struct ServeOptions::Entry {
  std::string key;
  CLI::Option* option = nullptr;
  std::function<Status(const toml::node&)> from_toml;
};

template <class T>
void ServeOptions::add(const char* name, T& target, const char* help) {
  auto entry = std::make_unique<Entry>();
  entry->key = name;
  std::string flag = std::string("--") + name;
  if constexpr (std::is_same_v<T, bool>) {
    entry->option = app_for_add_->add_flag(flag, target, help);
  } else {
    entry->option = app_for_add_->add_option(flag, target, help)->capture_default_str();
  }
  entry->option->envname(env_name(name));
  entry->from_toml = [&target, key = std::string(name)](const toml::node& node) -> Status {
    if constexpr (std::is_same_v<T, std::string>) {
      std::optional<std::string> value = node.value<std::string>();
      if (!value) return invalid(fmt::format("config file: {} must be a string", key));
      target = *value;
    } else if constexpr (std::is_same_v<T, bool>) {
      std::optional<bool> value = node.value<bool>();
      if (!value) return invalid(fmt::format("config file: {} must be true or false", key));
      target = *value;
    } else {
      std::optional<int64_t> value = node.value<int64_t>();
      if (!value || *value < 0 || static_cast<uint64_t>(*value) > std::numeric_limits<T>::max()) {
        return invalid(fmt::format("config file: {} must be a non-negative integer", key));
      }
      target = static_cast<T>(*value);
    }
    return ok_status();
  };
  entries_.push_back(std::move(entry));
}

ServeOptions::ServeOptions(CLI::App& app, ServerConfig& config) : config_(config) {
  app_for_add_ = &app;
  add("listen", config.listen, "Address to listen on, host:port ([::1]:2113 for IPv6)");
  add("threads", config.threads, "I/O threads; 0 = one per core");
  add("tls-cert", config.tls_cert, "TLS certificate chain (PEM); with --tls-key serves HTTPS/WSS");
  add("tls-key", config.tls_key, "TLS private key (PEM)");
  add("insecure", config.insecure,
      "Allow a non-loopback listener without API keys (anyone can read and write)");
  add("max-body-bytes", config.max_body_bytes, "Largest request body (413 beyond)");
  add("max-events-per-append", config.max_events_per_append,
      "Most events in one append or transaction (413 beyond)");
  add("max-header-bytes", config.max_header_bytes, "Largest request line + headers (431 beyond)");
  add("max-connections", config.max_connections,
      "Most open connections; more are answered 503 and closed");
  add("max-subscriptions", config.max_subscriptions,
      "Most open WebSocket subscriptions (one per connection); more get 429");
  add("max-ws-message-bytes", config.max_ws_message_bytes,
      "Largest WebSocket message a client may send (close 1009 beyond)");
  add("idle-timeout-seconds", config.idle_timeout_seconds,
      "Close HTTP connections idle this long, and WebSockets whose peer stops answering pings");
  add("max-wait-ms", config.max_wait_ms, "Longest long-poll wait (waitMs) a request may ask for");
  add("subscriber-queue-bytes", config.subscriber_queue_bytes,
      "Per-subscriber send queue; a slower client is switched to catch-up reads");
  add("demo-dir", config.demo_dir,
      "Serve the files of this directory at /demo/ (a demo or test page on the server's origin)");
  add("shutdown-grace-seconds", config.shutdown_grace_seconds,
      "On SIGTERM/SIGINT, how long to wait for in-flight requests");
  add("rooms-max-participants", config.rooms.max_participants,
      "Rooms: most participants connected to one room (close 4003 beyond)");
  add("rooms-max-events-per-submit", config.rooms.max_events_per_submit,
      "Rooms: most events in one submit");
  add("rooms-max-payload-bytes", config.rooms.max_payload_bytes,
      "Rooms: largest payload of one event, as JSON text");
  add("rooms-submits-per-second", config.rooms.submits_per_second,
      "Rooms: submits per second per connection (token bucket rate)");
  add("rooms-submit-burst", config.rooms.submit_burst, "Rooms: submit bucket size (burst)");
  add("rooms-presence-timeout-ms", config.rooms.presence_timeout_ms,
      "Rooms: a participant whose connection died is marked left after this");
  add("rooms-snapshot-every-events", config.rooms.snapshot_every_events,
      "Rooms: snapshot room state every N events (0 = never)");
  add("rooms-snapshot-idle-ms", config.rooms.snapshot_idle_ms,
      "Rooms: snapshot room state after this long without events (0 = never)");
  add("rooms-catch-up-events-max", config.rooms.catch_up_events_max,
      "Rooms: a joining client further behind gets a snapshot instead of events");
  add("rooms-max-queued-frames", config.rooms.max_queued_frames,
      "Rooms: frames queued for one slow connection before it is closed (4008)");
  add("rooms-threads", config.rooms.threads, "Rooms: threads running room logic");
  app.add_option("--config", config.config_file,
                 "TOML configuration file (also api_keys, projections, room_apps)")
      ->envname("VELLUM_CONFIG");
  app_for_add_ = nullptr;
}

ServeOptions::~ServeOptions() = default;

Status ServeOptions::finish(bool data_dir_given) {
  if (!config_.config_file.empty()) {
    toml::table table;
    try {
      table = toml::parse_file(config_.config_file);
    } catch (const toml::parse_error& error) {
      return invalid(fmt::format("config file {}: line {}: {}", config_.config_file,
                                 error.source().begin.line, error.description()));
    }
    for (const auto& [key, node] : table) {
      std::string_view name = key.str();
      if (name == kDemoDirTomlKey) continue;
      if (name == "api_keys" || name == "data" || name == "projections" || name == "room_apps") {
        continue;
      }
      bool known = false;
      for (const auto& entry : entries_) known = known || entry->key == name;
      if (!known) {
        return invalid(
            fmt::format("config file {}: unknown option \"{}\" (see vellum serve --help)",
                        config_.config_file, name));
      }
    }
    for (const auto& entry : entries_) {
      const toml::node* node = table.get(entry->key);
      // The demo directory is also spelt like a TOML key (demo_dir).
      if (node == nullptr && entry->key == "demo-dir") node = table.get(kDemoDirTomlKey);
      // Flags and environment variables win over the file.
      if (node == nullptr || entry->option->count() > 0) continue;
      VL_RETURN_IF_ERROR(entry->from_toml(*node));
    }
    if (!data_dir_given) {
      if (const toml::node* data = table.get("data")) {
        std::optional<std::string> value = data->value<std::string>();
        if (!value) return invalid("config file: data must be a string");
        config_.data_dir = *value;
      }
    }
    if (const toml::node* keys = table.get("api_keys")) {
      const toml::array* array = keys->as_array();
      if (array == nullptr) return invalid("config file: api_keys must be an array of tables");
      for (size_t i = 0; i < array->size(); i++) {
        const toml::table* key_table = array->get(i)->as_table();
        if (key_table == nullptr)
          return invalid("config file: api_keys must be an array of tables");
        VL_TRY(api_key, parse_api_key(*key_table, i));
        config_.api_keys.push_back(std::move(api_key));
      }
    }
    if (const toml::node* apps = table.get("room_apps")) {
      Status parsed = parse_room_apps(*apps, config_.room_apps);
      if (!parsed) {
        return invalid(
            fmt::format("config file {}: {}", config_.config_file, parsed.error().message));
      }
    }
    if (const toml::node* projections = table.get("projections")) {
      Status parsed = parse_projections(*projections, config_.projections);
      if (!parsed) {
        return invalid(
            fmt::format("config file {}: {}", config_.config_file, parsed.error().message));
      }
    }
  }
  if (!config_.demo_dir.empty()) VL_RETURN_IF_ERROR(check_demo_dir(config_.demo_dir));
  if (config_.tls_cert.empty() != config_.tls_key.empty()) {
    return invalid("--tls-cert and --tls-key go together");
  }
  if (config_.max_body_bytes == 0 || config_.max_events_per_append == 0 ||
      config_.max_header_bytes < 1024 || config_.max_connections == 0) {
    return invalid("limits must be positive (and max-header-bytes at least 1024)");
  }
  std::string host;
  uint16_t port = 0;
  return split_host_port(config_.listen, host, port);
}

Status split_host_port(const std::string& text, std::string& host, uint16_t& port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return invalid(fmt::format("--listen: \"{}\" is not host:port", text));
  }
  host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::string port_text = text.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      value > 65535) {
    return invalid(fmt::format("--listen: \"{}\" has no valid port", text));
  }
  port = static_cast<uint16_t>(value);
  return ok_status();
}

}  // namespace vellum::server
