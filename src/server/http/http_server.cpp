#include "server/http/http_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "core/error.h"
#include "protocol/api_error.h"

namespace anju::server::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

TlsMode ParseTlsMode(const std::string& s) {
  if (s == "off") return TlsMode::kOff;
  if (s == "tls12") return TlsMode::kTls12;
  if (s == "tls13") return TlsMode::kTls13;
  throw Error(ErrorCode::kInvalidArgument,
              "TLS mode must be \"off\", \"tls12\" or \"tls13\", not \"" + s + "\"");
}

const char* TlsModeName(TlsMode m) {
  switch (m) {
    case TlsMode::kOff:
      return "off";
    case TlsMode::kTls12:
      return "tls12";
    default:
      return "tls13";
  }
}

namespace {

std::string AddressText(const net::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6()).to_string();
  return a.to_string();
}

Response ErrorReply(int status, const std::string& code, const std::string& message) {
  Response res;
  res.status = status;
  res.Set("Content-Type", "application/json");
  res.body = protocol::ErrorBody(code, message);
  return res;
}

std::string MiB(size_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

// Time to move BYTES at RATE bytes/s, on top of a base deadline.
std::chrono::milliseconds Allowance(std::chrono::milliseconds base, uint64_t bytes, size_t rate) {
  return base + std::chrono::milliseconds(rate ? bytes * 1000 / rate : 0);
}

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void Close() = 0;
};

}  // namespace

struct HttpServer::Impl {
  struct ListenerState {
    ListenerConfig config;
    std::unique_ptr<ssl::context> tls;
    std::optional<tcp::acceptor> acceptor;
    int port = 0;
  };

  // The connection counters one open connection holds; released when the session ends.
  struct Slot {
    Slot(Impl* i, std::string a) : impl(i), address(std::move(a)) {}
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() {
      std::lock_guard lock(impl->mu);
      --impl->open;
      auto it = impl->per_address.find(address);
      if (it != impl->per_address.end() && --it->second == 0) impl->per_address.erase(it);
    }
    Impl* impl;
    std::string address;
  };

  // Body memory a request holds from its header until its handler is done.
  struct Reservation {
    Reservation(Impl* i, size_t b) : impl(i), bytes(b) {}
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;
    ~Reservation() { impl->body_reserved.fetch_sub(bytes); }
    Impl* impl;
    size_t bytes;
  };

  template <bool kTls>
  class Session;

  Limits limits;
  RequestHandler handler;

  mutable std::mutex mu;
  size_t open = 0;
  std::unordered_map<std::string, size_t> per_address;
  std::atomic<size_t> body_reserved{0};
  std::atomic<uint64_t> accepted{0}, refused_capacity{0}, refused_per_address{0}, refused_source{0},
      timed_out{0}, refused_body{0}, requests{0};
  std::atomic<bool> stopping{false};
  bool started = false;
  bool stopped = false;

  std::mutex sessions_mu;
  uint64_t next_session = 0;
  std::unordered_map<uint64_t, std::weak_ptr<SessionBase>> sessions;

  // Destroyed before the members above, which the sessions it may still hold use.
  net::io_context ioc;
  std::unique_ptr<net::thread_pool> workers;
  std::vector<std::unique_ptr<ListenerState>> listeners;
  std::vector<std::thread> io_threads;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> guard;

  Impl(Limits l, RequestHandler h)
      : limits(std::move(l)), handler(std::move(h)), ioc(std::max(1, limits.io_threads)) {}

  enum class Admission { kOk, kCapacity, kPerAddress };
  Admission Admit(const std::string& address) {
    std::lock_guard lock(mu);
    if (open >= limits.max_connections) return Admission::kCapacity;
    size_t& n = per_address[address];
    if (n >= limits.max_connections_per_address) {
      if (n == 0) per_address.erase(address);
      return Admission::kPerAddress;
    }
    ++n;
    ++open;
    return Admission::kOk;
  }

  std::unique_ptr<Reservation> Reserve(size_t bytes) {
    size_t cur = body_reserved.load();
    do {
      if (cur + bytes > limits.body_budget_bytes) return nullptr;
    } while (!body_reserved.compare_exchange_weak(cur, cur + bytes));
    return std::make_unique<Reservation>(this, bytes);
  }

  void Register(uint64_t* id, std::weak_ptr<SessionBase> s) {
    std::lock_guard lock(sessions_mu);
    *id = ++next_session;
    sessions.emplace(*id, std::move(s));
  }
  void Unregister(uint64_t id) {
    std::lock_guard lock(sessions_mu);
    sessions.erase(id);
  }

  void Accept(ListenerState& l);
  void OnAccept(ListenerState& l, tcp::socket socket);
};

// One connection: TLS handshake (kTls), then requests one at a time (keep-alive), each read
// under its deadlines, handed to a worker, and answered on the connection's strand.
template <bool kTls>
class HttpServer::Impl::Session : public SessionBase,
                                  public std::enable_shared_from_this<Session<kTls>> {
 public:
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

  Session(Impl& impl, const ListenerState& listener, tcp::socket&& socket,
          std::unique_ptr<Slot> slot, std::string address, int port)
      : impl_(impl),
        listener_(listener.config.kind),
        slot_(std::move(slot)),
        address_(std::move(address)),
        port_(port),
        buffer_(impl.limits.max_header_bytes + (128u << 10)),
        timer_(socket.get_executor()) {
    if constexpr (kTls)
      stream_.emplace(std::move(socket), *listener.tls);
    else
      stream_.emplace(std::move(socket));
  }
  ~Session() override {
    if (id_) impl_.Unregister(id_);
  }

  void Run(uint64_t id) {
    id_ = id;
    net::dispatch(stream_->get_executor(), [self = this->shared_from_this()] { self->Begin(); });
  }

  void Close() override {
    net::post(stream_->get_executor(), [self = this->shared_from_this()] { self->CloseNow(); });
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(*stream_); }

  // ACK what arrives at once while a request is read. A client that leaves Nagle's algorithm
  // on (cpp-httplib's default) sends a request's body only once its header is acknowledged;
  // with Linux's delayed ACK that stalled every such POST by 40 ms (measured with anju bench
  // enrol). The kernel drops quick-ACK mode by itself, so it is set again before each read.
  void QuickAck() {
    beast::error_code ignored;
    Lowest().socket().set_option(
        net::detail::socket_option::boolean<IPPROTO_TCP, TCP_QUICKACK>(true), ignored);
  }

  // Arms the deadline of the next operations; a failure at or after it counts as a timeout
  // (through TLS the error is not always beast::error::timeout).
  void Expire(std::chrono::steady_clock::duration d) {
    deadline_ = std::chrono::steady_clock::now() + d;
    Lowest().expires_at(deadline_);
  }
  bool PastDeadline() const { return std::chrono::steady_clock::now() >= deadline_; }

  void Begin() {
    if constexpr (kTls) {
      Expire(impl_.limits.header_timeout);
      stream_->async_handshake(ssl::stream_base::server,
                               [self = this->shared_from_this()](beast::error_code ec) {
                                 if (ec) return self->Fail(ec);
                                 self->WaitRequest(true);
                               });
    } else {
      Expire(impl_.limits.header_timeout);
      WaitRequest(true);
    }
  }

  // Waits for the first byte of the next request (a fresh connection: within the header
  // deadline already running; a kept-alive one: within the idle timeout), then reads the
  // header within the header deadline.
  void WaitRequest(bool first) {
    if (impl_.stopping) return CloseNow();
    if (!first) Expire(impl_.limits.idle_timeout);
    QuickAck();  // before the header arrives: its ACK is what a Nagle client waits for
    if (buffer_.size() > 0) return ReadHeader(first);
    buffer_.shrink_to_fit();  // an idle connection keeps no read buffer
    stream_->async_read_some(buffer_.prepare(4096), [self = this->shared_from_this(), first](
                                                        beast::error_code ec, size_t n) {
      self->buffer_.commit(n);
      if (ec) return self->Fail(ec);
      self->ReadHeader(first);
    });
  }

  void ReadHeader(bool first) {
    if (!first) Expire(impl_.limits.header_timeout);
    parser_.emplace();
    parser_->header_limit(uint32_t(impl_.limits.max_header_bytes));
    parser_->body_limit(impl_.limits.max_body_bytes);
    bhttp::async_read_header(
        *stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec && PastDeadline()) return Fail(ec);  // however the layers below report it
    if (ec == bhttp::error::body_limit) return TooLarge();
    if (ec == bhttp::error::header_limit)
      return Refuse(ErrorReply(431, "too_large", "请求头过大 / request header too large"));
    if (ec == bhttp::error::buffer_overflow)
      return Refuse(ErrorReply(431, "too_large", "请求头过大 / request header too large"));
    if (ec && &ec.category() == &bhttp::make_error_code(bhttp::error::bad_target).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
        ec != bhttp::error::need_more && ec != bhttp::error::short_read)
      return Refuse(ErrorReply(400, "bad_request", "HTTP 请求无效 / malformed HTTP request"));
    if (ec) return Fail(ec);
    const auto& h = parser_->get();
    size_t need = 0;
    if (parser_->chunked())
      need = impl_.limits.max_body_bytes;
    else if (auto len = parser_->content_length())
      need = size_t(*len);
    if (need > 0) {
      reservation_ = impl_.Reserve(need);
      if (!reservation_) {
        ++impl_.refused_body;
        Response busy =
            ErrorReply(503, "unavailable", "服务器繁忙，请稍后重试 / server busy, retry later");
        busy.Set("Retry-After", "1");
        return Refuse(std::move(busy));
      }
    }
    if (parser_->is_done()) return Dispatch();
    const auto expect = h[bhttp::field::expect];
    if (h.version() >= 11 && beast::iequals(expect, "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      Expire(impl_.limits.write_timeout);
      net::async_write(*stream_, net::buffer(kContinue),
                       [self = this->shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->Fail(ec);
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    const auto len = parser_->content_length();
    Expire(Allowance(impl_.limits.body_timeout, len ? *len : 0, impl_.limits.min_rate_bytes_per_s));
    QuickAck();
    bhttp::async_read(*stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec == bhttp::error::body_limit) return self->TooLarge();
                        if (ec) return self->Fail(ec);
                        self->Dispatch();
                      });
  }

  void TooLarge() {
    ++impl_.refused_body;
    Refuse(ErrorReply(413, "too_large",
                      "请求体超过 " + MiB(impl_.limits.max_body_bytes) +
                          " / request body larger than " + MiB(impl_.limits.max_body_bytes)));
  }

  // Hands the request to a worker; the reply comes back to this connection's strand.
  void Dispatch() {
    Lowest().expires_never();  // nothing is read while the handler runs
    deadline_ = std::chrono::steady_clock::time_point::max();
    auto msg = parser_->release();
    parser_.reset();
    auto req = std::make_unique<Request>();
    req->method = std::string(msg.method_string());
    req->target = std::string(msg.target());
    for (const auto& f : msg)
      req->headers.emplace(std::string(f.name_string()), std::string(f.value()));
    req->body = std::move(msg.body());
    req->remote_addr = address_;
    req->remote_port = port_;
    req->listener = listener_;
    req->tls = kTls;
    ParseTarget(*req);
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    head_ = req->method == "HEAD";
    ++impl_.requests;
    net::post(*impl_.workers, [self = this->shared_from_this(), req = std::move(req),
                               reservation = std::move(reservation_)]() mutable {
      Response res = self->Handle(*req);
      req.reset();
      reservation.reset();
      net::post(self->stream_->get_executor(),
                [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
    });
  }

  // On a worker thread.
  Response Handle(Request& req) {
    if (impl_.stopping) return ErrorReply(503, "unavailable", "服务器正在停止 / server stopping");
    try {
      if (req.IsMultipartFormData()) {
        auto parts = ParseMultipart(req.Header("Content-Type"), req.body);
        if (!parts)
          return ErrorReply(400, "bad_request",
                            "multipart/form-data 格式错误 / malformed multipart/form-data body");
        req.form = std::move(*parts);
      }
      return impl_.handler(req);
    } catch (const std::exception& e) {
      return ErrorReply(500, "internal", std::string("内部错误 / internal error: ") + e.what());
    }
  }

  template <class Message>
  void FillHead(Message& m, const Response& res) {
    m.version(version_ ? version_ : 11);
    m.result(unsigned(res.status));
    for (const auto& [k, v] : res.headers) {
      // The server owns the framing.
      if (beast::iequals(k, "Content-Length") || beast::iequals(k, "Transfer-Encoding") ||
          beast::iequals(k, "Connection"))
        continue;
      m.insert(k, v);
    }
    m.keep_alive(keep_alive_ && !impl_.stopping);
  }

  void Write(Response res) {
    if (res.stream) return WriteStream(std::move(res));
    out_.emplace();
    FillHead(*out_, res);
    const int s = res.status;
    if (!(s == 204 || s == 304 || (s >= 100 && s < 200))) out_->body() = std::move(res.body);
    out_->prepare_payload();
    if (head_) out_->body().clear();  // Content-Length stays that of the GET
    Expire(Allowance(impl_.limits.write_timeout, out_->body().size(),
                     impl_.limits.min_rate_bytes_per_s));
    bhttp::async_write(*stream_, *out_,
                       [self = this->shared_from_this()](beast::error_code ec, size_t) {
                         self->out_.reset();
                         if (ec) return self->Fail(ec);
                         self->AfterReply();
                       });
  }

  void AfterReply() {
    if (!keep_alive_ || impl_.stopping) return Shutdown();
    WaitRequest(false);
  }

  // ---- streamed replies: the I/O thread pulls a chunk whenever the previous one is out ----
  void WriteStream(Response res) {
    pull_ = std::move(res.stream);
    stream_end_ = std::move(res.stream_end);
    stream_head_.emplace();
    FillHead(*stream_head_, res);
    stream_head_->chunked(true);
    stream_ser_.emplace(*stream_head_);
    Expire(impl_.limits.write_timeout);
    bhttp::async_write_header(*stream_, *stream_ser_,
                              [self = this->shared_from_this()](beast::error_code ec, size_t) {
                                if (ec) return self->EndStream(false);
                                self->Pump();
                              });
  }

  void Pump() {
    if (impl_.stopping) return EndStream(false);
    StreamStep step;
    try {
      step = pull_();
    } catch (const std::exception& e) {
      spdlog::warn("HTTP stream to {} failed: {}", address_, e.what());
      return EndStream(false);
    }
    auto self = this->shared_from_this();
    if (step.kind == StreamStep::kWait || (step.kind == StreamStep::kData && step.data.empty())) {
      timer_.expires_after(impl_.limits.stream_poll);
      timer_.async_wait([self](beast::error_code ec) {
        if (ec) return self->EndStream(false);
        self->Pump();
      });
      return;
    }
    if (step.kind == StreamStep::kData) {
      chunk_ = std::move(step.data);
      Expire(
          Allowance(impl_.limits.write_timeout, chunk_.size(), impl_.limits.min_rate_bytes_per_s));
      net::async_write(*stream_, bhttp::make_chunk(net::buffer(chunk_)),
                       [self](beast::error_code ec, size_t) {
                         if (ec) return self->EndStream(false);
                         self->Pump();
                       });
      return;
    }
    Expire(impl_.limits.write_timeout);
    net::async_write(*stream_, bhttp::make_chunk_last(),
                     [self](beast::error_code ec, size_t) { self->EndStream(!ec); });
  }

  void EndStream(bool complete) {
    auto end = std::move(stream_end_);
    pull_ = nullptr;
    stream_end_ = nullptr;
    stream_ser_.reset();
    stream_head_.reset();
    chunk_.clear();
    chunk_.shrink_to_fit();
    if (end) {
      try {
        end(complete);
      } catch (const std::exception& e) {
        spdlog::warn("HTTP stream end: {}", e.what());
      }
    }
    if (!complete) return CloseNow();
    AfterReply();
  }

  // ---- refusals and closing ----
  // Answers RES and closes; the request's unread body is read and dropped first (within
  // drain limits) so that the client, still sending, gets to read the answer.
  void Refuse(Response res) {
    keep_alive_ = false;
    parser_.reset();
    reservation_.reset();
    if (!version_) version_ = 11;
    out_.emplace();
    FillHead(*out_, res);
    out_->body() = std::move(res.body);
    out_->prepare_payload();
    Expire(impl_.limits.write_timeout);
    bhttp::async_write(*stream_, *out_,
                       [self = this->shared_from_this()](beast::error_code ec, size_t) {
                         self->out_.reset();
                         if (ec) return self->CloseNow();
                         self->Drain();
                       });
  }

  void Drain() {
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (!scratch_) scratch_ = std::make_unique<std::array<char, 65536>>();
    Expire(impl_.limits.drain_timeout);
    DrainSome();
  }

  void DrainSome() {
    Lowest().async_read_some(net::buffer(*scratch_),
                             [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                               self->drained_ += n;
                               if (ec || self->drained_ >= self->impl_.limits.drain_max_bytes)
                                 return self->CloseNow();
                               self->DrainSome();
                             });
  }

  void Fail(beast::error_code ec) {
    if (ec == beast::error::timeout || PastDeadline()) ++impl_.timed_out;
    spdlog::debug("HTTP connection from {} closed: {}", address_, ec.message());
    CloseNow();
  }

  // The reply is out and the connection is not kept: TLS close_notify (briefly), then close.
  void Shutdown() {
    if constexpr (kTls) {
      Expire(1s);
      stream_->async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->CloseNow(); });
    } else {
      beast::error_code ignored;
      Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      CloseNow();
    }
  }

  void CloseNow() {
    beast::error_code ignored;
    timer_.cancel();
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }

  Impl& impl_;
  const Listener listener_;
  std::unique_ptr<Slot> slot_;
  const std::string address_;
  const int port_;
  uint64_t id_ = 0;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  std::optional<Stream> stream_;
  beast::flat_buffer buffer_;
  net::steady_timer timer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::unique_ptr<Reservation> reservation_;
  std::optional<bhttp::response<bhttp::string_body>> out_;
  bool keep_alive_ = false;
  bool head_ = false;
  unsigned version_ = 0;
  // Streamed reply.
  StreamPull pull_;
  std::function<void(bool)> stream_end_;
  std::optional<bhttp::response<bhttp::empty_body>> stream_head_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> stream_ser_;
  std::string chunk_;
  // Draining a refused request.
  std::unique_ptr<std::array<char, 65536>> scratch_;
  size_t drained_ = 0;
};

void HttpServer::Impl::Accept(ListenerState& l) {
  l.acceptor->async_accept(
      net::make_strand(ioc), [this, &l](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || stopping) return;
        if (ec) {
          // Out of descriptors or buffers: wait a little rather than spin.
          spdlog::warn("HTTP accept on port {}: {}", l.port, ec.message());
          auto t = std::make_shared<net::steady_timer>(l.acceptor->get_executor(), 50ms);
          t->async_wait([this, &l, t](beast::error_code) {
            if (!stopping) Accept(l);
          });
          return;
        }
        OnAccept(l, std::move(socket));
        Accept(l);
      });
}

void HttpServer::Impl::OnAccept(ListenerState& l, tcp::socket socket) {
  beast::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  if (ec) return;
  std::string address = AddressText(peer.address());
  if (!l.config.allow_from.empty() && !l.config.allow_from.Contains(address)) {
    ++refused_source;
    socket.close(ec);
    return;
  }
  switch (Admit(address)) {
    case Admission::kCapacity:
      ++refused_capacity;
      socket.close(ec);
      return;
    case Admission::kPerAddress:
      ++refused_per_address;
      socket.close(ec);
      return;
    case Admission::kOk:
      break;
  }
  ++accepted;
  socket.set_option(tcp::no_delay(true), ec);
  auto slot = std::make_unique<Slot>(this, address);
  auto start = [&](auto session) {
    uint64_t id = 0;
    Register(&id, session);
    session->Run(id);
  };
  if (l.tls)
    start(std::make_shared<Session<true>>(*this, l, std::move(socket), std::move(slot),
                                          std::move(address), peer.port()));
  else
    start(std::make_shared<Session<false>>(*this, l, std::move(socket), std::move(slot),
                                           std::move(address), peer.port()));
}

HttpServer::HttpServer(Limits limits, RequestHandler handler)
    : impl_(std::make_unique<Impl>(std::move(limits), std::move(handler))) {}

HttpServer::~HttpServer() {
  Stop();
}

int HttpServer::Listen(const ListenerConfig& config) {
  Impl& m = *impl_;
  auto l = std::make_unique<Impl::ListenerState>();
  l->config = config;
  const std::string where = config.host + ":" + std::to_string(config.port);
  if (config.tls != TlsMode::kOff) {
    l->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX* ctx = l->tls->native_handle();
    SSL_CTX_set_min_proto_version(ctx,
                                  config.tls == TlsMode::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    // TLS 1.2 (cameras that have no 1.3): forward-secret AEAD suites only.
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    SSL_CTX_set_options(
        ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Idle kept-alive connections hold no OpenSSL read / write buffers.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    beast::error_code ec;
    l->tls->use_certificate_chain_file(config.cert_file.string(), ec);
    if (!ec) l->tls->use_private_key_file(config.key_file.string(), ssl::context::pem, ec);
    if (ec || SSL_CTX_check_private_key(ctx) != 1)
      throw Error(ErrorCode::kInvalidArgument,
                  "TLS certificate or key unusable: " + config.cert_file.string() + ", " +
                      config.key_file.string() + (ec ? " (" + ec.message() + ")" : ""));
  }
  beast::error_code ec;
  tcp::resolver resolver(m.ioc);
  const auto endpoints =
      resolver.resolve(config.host, std::to_string(config.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty())
    throw Error(ErrorCode::kUnavailable,
                "cannot resolve listen address " + where + ": " + ec.message());
  const tcp::endpoint ep = endpoints.begin()->endpoint();
  l->acceptor.emplace(net::make_strand(m.ioc));
  l->acceptor->open(ep.protocol(), ec);
  if (!ec) l->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) l->acceptor->bind(ep, ec);
  if (!ec) l->acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw Error(ErrorCode::kUnavailable,
                "cannot listen on " + where + " (in use or not permitted): " + ec.message());
  l->port = l->acceptor->local_endpoint().port();
  const int port = l->port;
  m.listeners.push_back(std::move(l));
  return port;
}

void HttpServer::Start() {
  Impl& m = *impl_;
  if (m.started || m.stopped) return;
  // Each connection is a descriptor: take the hard limit, and keep the cap under it.
  if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
      getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 256 &&
        m.limits.max_connections > size_t(rl.rlim_cur) - 128) {
      spdlog::warn("HTTP connection cap lowered from {} to {} (open file limit {})",
                   m.limits.max_connections, size_t(rl.rlim_cur) - 128, rl.rlim_cur);
      m.limits.max_connections = size_t(rl.rlim_cur) - 128;
    }
  }
  m.workers = std::make_unique<net::thread_pool>(size_t(std::max(1, m.limits.worker_threads)));
  m.guard.emplace(net::make_work_guard(m.ioc));
  for (auto& l : m.listeners) {
    auto* state = l.get();
    net::post(l->acceptor->get_executor(), [&m, state] { m.Accept(*state); });
  }
  for (int i = 0; i < std::max(1, m.limits.io_threads); ++i)
    m.io_threads.emplace_back([&m] {
      while (true) {
        try {
          m.ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("HTTP I/O thread: {}", e.what());
        }
      }
    });
  m.started = true;
}

void HttpServer::Stop() {
  Impl& m = *impl_;
  if (m.stopped) return;
  m.stopped = true;
  m.stopping = true;
  for (auto& l : m.listeners) {
    auto* state = l.get();
    if (!m.started) {
      beast::error_code ec;
      state->acceptor->close(ec);
      continue;
    }
    net::post(state->acceptor->get_executor(), [state] {
      beast::error_code ec;
      state->acceptor->close(ec);
    });
  }
  if (!m.started) return;
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard lock(m.sessions_mu);
    for (auto& [id, w] : m.sessions)
      if (auto s = w.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->Close();
  live.clear();
  // Handlers that run finish (those queued answer 503); then the I/O threads stop.
  m.workers->join();
  m.guard.reset();
  // Give the closes a moment to run, then stop whatever is left (kept-alive reads, timers).
  for (int i = 0; i < 50 && !m.ioc.stopped(); ++i) {
    {
      std::lock_guard lock(m.mu);
      if (m.open == 0) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  m.ioc.stop();
  for (auto& t : m.io_threads)
    if (t.joinable()) t.join();
}

Stats HttpServer::stats() const {
  const Impl& m = *impl_;
  Stats s;
  {
    std::lock_guard lock(m.mu);
    s.open = m.open;
  }
  s.accepted = m.accepted;
  s.refused_capacity = m.refused_capacity;
  s.refused_per_address = m.refused_per_address;
  s.refused_source = m.refused_source;
  s.timed_out = m.timed_out;
  s.refused_body = m.refused_body;
  s.requests = m.requests;
  s.body_bytes_reserved = m.body_reserved;
  return s;
}

const Limits& HttpServer::limits() const {
  return impl_->limits;
}

}  // namespace anju::server::http
