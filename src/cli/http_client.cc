// SPDX-License-Identifier: Apache-2.0
// The HTTP/1.1 client of `vellum --url` (see http_client.h), on Boost.Beast.
#include "cli/http_client.h"

#include <csignal>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/assert.h"

namespace vellum::cli {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;

constexpr std::chrono::milliseconds kConnectTimeout{10'000};
// A page of 10,000 events of up to 1 MiB each could in theory be 10 GiB; the
// server's pages are bounded by the read limits, so this only stops a runaway.
constexpr uint64_t kReplyBytesMax = uint64_t{4} << 30;

tl::unexpected<Error> invalid_url(std::string_view url, std::string_view why) {
  return make_error(ErrorCode::kInvalidArgument, fmt::format("--url '{}': {}", url, why));
}

struct ParsedUrl {
  bool tls = false;
  std::string host;    // without brackets
  std::string port;    // decimal
  std::string prefix;  // "" or "/something", no trailing slash
  std::string host_header;
};

Result<std::string> parse_port(std::string_view url, std::string_view text) {
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || value > 65535) return invalid_url(url, "the port is not a number");
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (text.empty() || value == 0 || value > 65535) {
    return invalid_url(url, "the port must be 1..65535");
  }
  return std::string(text);
}

// Splits "host", "host:port", "[v6]" or "[v6]:port".
Status parse_authority(std::string_view url, std::string_view authority, ParsedUrl& out) {
  if (authority.find('@') != std::string_view::npos) {
    return invalid_url(url, "user:password@ is not supported; give the token with --token");
  }
  std::string_view port;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid_url(url, "unclosed [ in the host");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) return invalid_url(url, "junk after ]");
    if (!rest.empty()) port = rest.substr(1);
  } else {
    size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return invalid_url(url, "no host");
  if (port.empty()) {
    out.port = out.tls ? "443" : "80";
  } else {
    VL_TRY(number, parse_port(url, port));
    out.port = std::move(number);
  }
  out.host_header = authority.starts_with('[') ? "[" + out.host + "]" : out.host;
  if (!port.empty()) out.host_header += ":" + out.port;
  return ok_status();
}

Result<ParsedUrl> parse_url(std::string_view url) {
  ParsedUrl out;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    out.tls = true;
    rest = url.substr(8);
  } else {
    return invalid_url(url, "must start with http:// or https://");
  }
  size_t slash = rest.find('/');
  VL_RETURN_IF_ERROR(parse_authority(url, rest.substr(0, slash), out));
  if (slash != std::string_view::npos) out.prefix = std::string(rest.substr(slash));
  if (out.prefix.find_first_of("?#") != std::string::npos) {
    return invalid_url(url, "a query or fragment is not allowed");
  }
  while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  return out;
}

bool is_unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string json_string(const nlohmann::json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) return "";
  return object[key].get<std::string>();
}

// The RevisionConflict of a 409 wrong_expected_revision body, if complete.
std::optional<RevisionConflict> conflict_from(const nlohmann::json& body) {
  if (!body.contains("stream") || !body["stream"].is_string() || !body.contains("expected") ||
      !body["expected"].is_string() || !body.contains("actual") ||
      !body["actual"].is_number_integer()) {
    return std::nullopt;
  }
  return RevisionConflict{body["stream"].get<std::string>(), body["expected"].get<std::string>(),
                          body["actual"].get<int64_t>()};
}

ErrorCode code_for_status(unsigned status, std::string_view name) {
  switch (status) {
    case 400:
    case 413:
    case 431:
      return ErrorCode::kInvalidArgument;
    case 404:
      return ErrorCode::kNotFound;
    case 410:
      return ErrorCode::kStreamDeleted;
    case 409:
      return ErrorCode::kAlreadyExists;
    case 429:
      return ErrorCode::kResourceExhausted;
    case 504:
      return ErrorCode::kDeadlineExceeded;
    default:
      break;
  }
  // The one 5xx with its own exit code in embedded mode.
  if (name == "data_loss") return ErrorCode::kDataLoss;
  if (status >= 500) return ErrorCode::kUnavailable;
  // 401, 403, 405, ...: refused for a reason the user must fix; exit "other".
  return ErrorCode::kAborted;
}

}  // namespace

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (is_unreserved(c)) {
      out.push_back(c);
    } else {
      auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    }
  }
  return out;
}

Error error_from_reply(const HttpReply& reply) {
  nlohmann::json body = nlohmann::json::parse(reply.body, nullptr, false);
  std::string name = json_string(body, "error");
  std::string message = json_string(body, "message");
  if (message.empty()) {
    std::string excerpt = reply.body.substr(0, 200);
    message = fmt::format("the server answered HTTP {}{}{}", reply.status,
                          excerpt.empty() ? "" : ": ", excerpt);
  }
  if (reply.status == 401) message += " (give it with --token or VELLUM_TOKEN)";
  if (reply.status == 409 && name == "wrong_expected_revision") {
    if (std::optional<RevisionConflict> conflict = conflict_from(body)) {
      return Error{ErrorCode::kFailedPrecondition, message, std::move(conflict)};
    }
  }
  return Error{code_for_status(reply.status, name), message, std::nullopt};
}

struct HttpClient::Impl {
  ParsedUrl url;
  std::string url_text;
  std::string token;
  net::io_context ioc;
  tcp::resolver resolver{ioc};
  net::steady_timer pause_timer{ioc};
  std::optional<ssl::context> tls_context;
  // Exactly one of these is set while connected, per url.tls.
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  std::optional<net::signal_set> signals;
  bool stopped = false;

  beast::tcp_stream* lowest() {
    if (plain) return &*plain;
    if (secure) return &beast::get_lowest_layer(*secure);
    return nullptr;
  }

  void disconnect() {
    if (beast::tcp_stream* stream = lowest()) stream->close();
    plain.reset();
    secure.reset();
    buffer.clear();
  }

  // Drives the io_context until the operation in flight sets `done`. Signal
  // handlers (stop_on_signals) run in between, on this thread.
  void run_until(const bool& done) {
    while (!done) {
      // The io_context stops itself whenever it runs out of work (between
      // two of our operations): make it runnable again first.
      ioc.restart();
      size_t ran = ioc.run_one();
      // No work at all would mean the operation cannot complete: a bug.
      VL_ASSERT(ran > 0 || done);
    }
  }

  tl::unexpected<Error> cancelled() const {
    return make_error(ErrorCode::kCancelled, "stopped by a signal");
  }

  // A kept-alive connection the server may have closed while we were idle
  // (its idle timeout): a peek that would block means it is still open.
  bool connection_alive() {
    beast::tcp_stream* stream = lowest();
    if (stream == nullptr) return false;
    tcp::socket& socket = stream->socket();
    error_code ec;
    socket.non_blocking(true, ec);
    char byte = 0;
    size_t peeked = socket.receive(net::buffer(&byte, 1), tcp::socket::message_peek, ec);
    error_code ignored;
    socket.non_blocking(false, ignored);
    // Bytes waiting can only be TLS housekeeping (session tickets): alive.
    return ec == net::error::would_block || (!ec && peeked > 0);
  }

  Result<tcp::resolver::results_type> resolve() {
    bool done = false;
    error_code ec;
    tcp::resolver::results_type results;
    resolver.async_resolve(url.host, url.port,
                           [&](error_code error, tcp::resolver::results_type found) {
                             ec = error;
                             results = std::move(found);
                             done = true;
                           });
    run_until(done);
    if (stopped) return cancelled();
    if (ec) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("cannot resolve {}: {}", url.host, ec.message()));
    }
    return results;
  }

  Status handshake() {
    // SNI carries host names only, never an IP address (RFC 6066).
    error_code not_an_address;
    net::ip::make_address(url.host, not_an_address);
    if (not_an_address && !SSL_set_tlsext_host_name(secure->native_handle(), url.host.c_str())) {
      return make_error(ErrorCode::kInvalidArgument, "cannot set the TLS server name");
    }
    secure->set_verify_callback(ssl::host_name_verification(url.host));
    bool done = false;
    error_code ec;
    beast::get_lowest_layer(*secure).expires_after(kConnectTimeout);
    secure->async_handshake(ssl::stream_base::client, [&](error_code error) {
      ec = error;
      done = true;
    });
    run_until(done);
    if (stopped) return cancelled();
    if (ec) {
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("TLS handshake with {} failed: {}", url_text, ec.message()));
    }
    return ok_status();
  }

  Status connect() {
    disconnect();
    VL_TRY(endpoints, resolve());
    if (url.tls) {
      secure.emplace(ioc, *tls_context);
    } else {
      plain.emplace(ioc);
    }
    bool done = false;
    error_code ec;
    lowest()->expires_after(kConnectTimeout);
    lowest()->async_connect(endpoints, [&](error_code error, const tcp::endpoint&) {
      ec = error;
      done = true;
    });
    run_until(done);
    if (stopped) return cancelled();
    if (ec) {
      disconnect();
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("cannot connect to {}: {}", url_text, ec.message()));
    }
    error_code ignored;
    lowest()->socket().set_option(tcp::no_delay(true), ignored);
    if (url.tls) {
      Status shaken = handshake();
      if (!shaken) disconnect();
      return shaken;
    }
    return ok_status();
  }

  http::request<http::string_body> make_request(HttpMethod method, std::string_view target,
                                                std::string body) const {
    http::verb verb = method == HttpMethod::kPost ? http::verb::post : http::verb::get;
    http::request<http::string_body> request{verb, url.prefix + std::string(target), 11};
    request.set(http::field::host, url.host_header);
    request.set(http::field::user_agent, "vellum-cli");
    request.set(http::field::accept, "application/json");
    if (!token.empty()) request.set(http::field::authorization, "Bearer " + token);
    if (method == HttpMethod::kPost) {
      request.set(http::field::content_type, "application/json");
      request.body() = std::move(body);
    }
    request.keep_alive(true);
    request.prepare_payload();
    return request;
  }

  // Writes the request and reads the reply on `stream`.
  template <class Stream>
  error_code exchange(Stream& stream, http::request<http::string_body>& request,
                      http::response_parser<http::string_body>& parser,
                      std::chrono::milliseconds timeout) {
    beast::get_lowest_layer(stream).expires_after(timeout);
    bool done = false;
    error_code ec;
    http::async_write(stream, request, [&](error_code error, size_t) {
      ec = error;
      done = true;
    });
    run_until(done);
    if (ec) return ec;
    done = false;
    http::async_read(stream, buffer, parser, [&](error_code error, size_t) {
      ec = error;
      done = true;
    });
    run_until(done);
    return ec;
  }

  Result<HttpReply> attempt(http::request<http::string_body>& request,
                            std::chrono::milliseconds timeout, bool& reused) {
    reused = connection_alive();
    if (!reused) VL_RETURN_IF_ERROR(connect());
    http::response_parser<http::string_body> parser;
    parser.body_limit(kReplyBytesMax);
    error_code ec = secure ? exchange(*secure, request, parser, timeout)
                           : exchange(*plain, request, parser, timeout);
    if (stopped) {
      disconnect();
      return cancelled();
    }
    if (ec == beast::error::timeout) {
      disconnect();
      return make_error(ErrorCode::kDeadlineExceeded,
                        fmt::format("{} did not answer within {} s", url_text,
                                    std::chrono::duration<double>(timeout).count()));
    }
    if (ec) {
      disconnect();
      return make_error(ErrorCode::kUnavailable,
                        fmt::format("the connection to {} failed: {}", url_text, ec.message()));
    }
    http::response<http::string_body> response = parser.release();
    if (!response.keep_alive()) disconnect();
    return HttpReply{response.result_int(), std::move(response.body())};
  }
};

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::create(std::string_view url, std::string token) {
  VL_TRY(parsed, parse_url(url));
  auto impl = std::make_unique<Impl>();
  impl->url = std::move(parsed);
  impl->url_text = std::string(url);
  impl->token = std::move(token);
  if (impl->url.tls) {
    // Trust the system's CAs (OpenSSL honours SSL_CERT_FILE / SSL_CERT_DIR).
    impl->tls_context.emplace(ssl::context::tls_client);
    error_code ec;
    impl->tls_context->set_default_verify_paths(ec);
    impl->tls_context->set_verify_mode(ssl::verify_peer);
    if (ec) {
      return make_error(ErrorCode::kIoError,
                        fmt::format("cannot load the system's CA certificates: {}", ec.message()));
    }
  }
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

Result<HttpReply> HttpClient::send(HttpMethod method, std::string_view target, std::string body,
                                   bool retry_safe, std::chrono::milliseconds timeout) {
  if (impl_->stopped) return impl_->cancelled();
  http::request<http::string_body> request = impl_->make_request(method, target, std::move(body));
  bool reused = false;
  Result<HttpReply> reply = impl_->attempt(request, timeout, reused);
  // A kept-alive connection can die between our check and the server
  // reading the request; once, on a fresh connection, is safe to retry.
  if (!reply && reply.error().code == ErrorCode::kUnavailable && reused && retry_safe) {
    reply = impl_->attempt(request, timeout, reused);
  }
  return reply;
}

Result<std::string> HttpClient::get(std::string_view target, std::chrono::milliseconds timeout) {
  VL_TRY(reply, send(HttpMethod::kGet, target, "", true, timeout));
  if (reply.status / 100 != 2) return make_error(error_from_reply(reply));
  return std::move(reply.body);
}

Result<std::string> HttpClient::post_json(std::string_view target, std::string body,
                                          bool retry_safe) {
  VL_TRY(reply, send(HttpMethod::kPost, target, std::move(body), retry_safe));
  if (reply.status / 100 != 2) return make_error(error_from_reply(reply));
  return std::move(reply.body);
}

void HttpClient::stop_on_signals() {
  Impl& impl = *impl_;
  impl.signals.emplace(impl.ioc, SIGINT, SIGTERM);
  impl.signals->async_wait([&impl](const error_code& ec, int) {
    if (ec) return;
    impl.stopped = true;
    // Ends whatever is in flight: its handler then sees `stopped`.
    if (beast::tcp_stream* stream = impl.lowest()) stream->cancel();
    impl.pause_timer.cancel();
    impl.resolver.cancel();
  });
}

bool HttpClient::stopped() const { return impl_->stopped; }

Status HttpClient::pause(std::chrono::milliseconds duration) {
  if (impl_->stopped) return impl_->cancelled();
  bool done = false;
  impl_->pause_timer.expires_after(duration);
  impl_->pause_timer.async_wait([&done](const error_code&) { done = true; });
  impl_->run_until(done);
  if (impl_->stopped) return impl_->cancelled();
  return ok_status();
}

const std::string& HttpClient::url() const { return impl_->url_text; }

}  // namespace vellum::cli
