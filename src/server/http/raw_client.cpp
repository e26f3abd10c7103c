#include "server/http/raw_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>

namespace anju::server::http {

namespace {

int OpenSslVersion(TlsVersion v) {
  switch (v) {
    case TlsVersion::kTls12:
      return TLS1_2_VERSION;
    case TlsVersion::kTls13:
      return TLS1_3_VERSION;
    default:
      return 0;
  }
}

void SetTimeouts(int fd, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = t.count() / 1000;
  tv.tv_usec = (t.count() % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

struct RawClient::Tls {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  ~Tls() {
    if (ssl) SSL_free(ssl);
    if (ctx) SSL_CTX_free(ctx);
  }
};

std::string RawReply::Header(std::string_view name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::unique_ptr<RawClient> RawClient::Connect(const RawClientOptions& o, std::string* error) {
  // OpenSSL writes with write(2): a peer that closed first would kill the probe with SIGPIPE.
  static const bool kNoSigpipe = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)kNoSigpipe;
  auto fail = [&](const std::string& why) -> std::unique_ptr<RawClient> {
    if (error) *error = why;
    return nullptr;
  };
  std::unique_ptr<RawClient> c(new RawClient());
  c->timeout_ = o.timeout;
  c->fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd_ < 0) return fail(std::string("socket: ") + std::strerror(errno));
  SetTimeouts(c->fd_, o.timeout);
  const int one = 1;
  setsockopt(c->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!o.source.empty()) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    if (inet_pton(AF_INET, o.source.c_str(), &src.sin_addr) != 1)
      return fail("bad source address " + o.source);
    if (::bind(c->fd_, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0)
      return fail("bind " + o.source + ": " + std::strerror(errno));
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(uint16_t(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &dst.sin_addr) != 1) return fail("bad host " + o.host);
  if (::connect(c->fd_, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0)
    return fail("connect: " + std::string(std::strerror(errno)));
  if (!o.tls || !o.handshake) return c;
  c->tls_ = std::make_unique<Tls>();
  c->tls_->ctx = SSL_CTX_new(TLS_client_method());
  if (!c->tls_->ctx) return fail("SSL_CTX_new failed");
  if (o.min_tls != TlsVersion::kAny)
    SSL_CTX_set_min_proto_version(c->tls_->ctx, OpenSslVersion(o.min_tls));
  if (o.max_tls != TlsVersion::kAny)
    SSL_CTX_set_max_proto_version(c->tls_->ctx, OpenSslVersion(o.max_tls));
  c->tls_->ssl = SSL_new(c->tls_->ctx);
  SSL_set_fd(c->tls_->ssl, c->fd_);
  SSL_set_tlsext_host_name(c->tls_->ssl, o.host.c_str());
  ERR_clear_error();
  if (SSL_connect(c->tls_->ssl) != 1) {
    char buf[256] = "TLS handshake failed";
    if (const unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof buf);
    return fail(buf);
  }
  return c;
}

RawClient::~RawClient() {
  tls_.reset();
  if (fd_ >= 0) ::close(fd_);
}

std::string RawClient::tls_version() const {
  return tls_ && tls_->ssl ? SSL_get_version(tls_->ssl) : "";
}

bool RawClient::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    int n;
    if (tls_) {
      ERR_clear_error();
      n = SSL_write(tls_->ssl, bytes.data(), int(std::min<size_t>(bytes.size(), 1 << 20)));
    } else {
      n = int(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL));
    }
    if (n <= 0) return false;
    bytes.remove_prefix(size_t(n));
  }
  return true;
}

int RawClient::ReadSome(char* buf, int n) {
  if (tls_) {
    ERR_clear_error();
    const int r = SSL_read(tls_->ssl, buf, n);
    if (r > 0) return r;
    return SSL_get_error(tls_->ssl, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
  }
  const ssize_t r = ::recv(fd_, buf, size_t(n), 0);
  return r > 0 ? int(r) : (r == 0 ? 0 : -1);
}

std::optional<RawReply> RawClient::Read() {
  char buf[16384];
  auto fill = [&]() {
    const int n = ReadSome(buf, sizeof buf);
    if (n <= 0) return false;
    in_.append(buf, size_t(n));
    return true;
  };
  size_t head_end;
  while ((head_end = in_.find("\r\n\r\n")) == std::string::npos)
    if (!fill()) return std::nullopt;
  RawReply r;
  const std::string head = in_.substr(0, head_end);
  in_.erase(0, head_end + 4);
  const size_t sp = head.find(' ');
  if (sp == std::string::npos) return std::nullopt;
  r.status = std::atoi(head.c_str() + sp + 1);
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos < head.size()) {
    pos += 2;
    const size_t end = std::min(head.find("\r\n", pos), head.size());
    const std::string line = head.substr(pos, end - pos);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      size_t v = colon + 1;
      while (v < line.size() && line[v] == ' ') ++v;
      r.headers.emplace(line.substr(0, colon), line.substr(v));
    }
    pos = end;
  }
  if (r.Header("Transfer-Encoding").find("chunked") != std::string::npos) {
    while (true) {
      size_t eol;
      while ((eol = in_.find("\r\n")) == std::string::npos)
        if (!fill()) return std::nullopt;
      const size_t size = std::strtoul(in_.c_str(), nullptr, 16);
      in_.erase(0, eol + 2);
      while (in_.size() < size + 2)
        if (!fill()) return std::nullopt;
      r.body.append(in_, 0, size);
      in_.erase(0, size + 2);
      if (size == 0) return r;
    }
  }
  const std::string len = r.Header("Content-Length");
  const size_t n = len.empty() ? 0 : std::strtoul(len.c_str(), nullptr, 10);
  while (in_.size() < n)
    if (!fill()) return std::nullopt;
  r.body = in_.substr(0, n);
  in_.erase(0, n);
  return r;
}

bool RawClient::WaitClosed(std::chrono::milliseconds timeout) {
  // Non-blocking meanwhile: TLS records that carry no data (session tickets) must not make a
  // blocking read wait for data that never comes.
  const int flags = fcntl(fd_, F_GETFL);
  fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  const auto until = std::chrono::steady_clock::now() + timeout;
  bool closed = false;
  char buf[4096];
  while (!closed) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    if (!(tls_ && SSL_pending(tls_->ssl) > 0)) {
      pollfd p{fd_, POLLIN, 0};
      const int rc = ::poll(&p, 1, int(left.count()));
      if (rc == 0) break;
      if (rc < 0) {
        closed = true;
        break;
      }
    }
    if (tls_) {
      ERR_clear_error();
      const int n = SSL_read(tls_->ssl, buf, sizeof buf);
      if (n > 0) {
        in_.append(buf, size_t(n));
        continue;
      }
      const int err = SSL_get_error(tls_->ssl, n);
      closed = err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE;
    } else {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0)
        in_.append(buf, size_t(n));
      else
        closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    }
  }
  fcntl(fd_, F_SETFL, flags);
  return closed;
}

std::string RawClient::Get(const std::string& path, const std::string& extra_headers) {
  return "GET " + path + " HTTP/1.1\r\nHost: anju\r\n" + extra_headers + "\r\n";
}

size_t ResidentBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return size_t(std::strtoull(line.c_str() + 6, nullptr, 10)) << 10;
  return 0;
}

}  // namespace anju::server::http
