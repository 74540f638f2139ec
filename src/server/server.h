// SPDX-License-Identifier: Apache-2.0
// `vellum serve`: the HTTP/JSON + WebSocket server over the embedded store.
// Owns the store, the hub, the API and the connections; see
// src/server/README.md for the threading model and shutdown sequence.
#pragma once

#include <cstdint>
#include <memory>

#include "vellum/result.h"

#include "server/config.h"

namespace vellum::server {

class Server {
 public:
  explicit Server(ServerConfig config);
  ~Server();

  // Opens the store and starts listening; prints "listening on host:port"
  // to stdout once connections are accepted. Errors: the store's open
  // errors, kInvalidArgument (bad configuration, a non-loopback listener
  // without API keys or --insecure), kIoError (cannot bind).
  Status start();
  // Serves until SIGTERM or SIGINT, then shuts down gracefully: stops
  // accepting, waits for in-flight appends (so every acknowledged append is
  // durable), closes subscriptions with a close frame, closes the store.
  Status run();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vellum::server
