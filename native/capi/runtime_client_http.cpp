// HTTP/1.1 keep-alive client for the runtime client: see runtime_client_http.h.
#include "runtime_client_http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "runtime_client_json.h"

namespace cachesage::capi {

namespace {

#ifdef MSG_NOSIGNAL
// A peer that closed must be an error to report, not a SIGPIPE that kills the engine.
constexpr int kSendFlags = MSG_NOSIGNAL;
#else
constexpr int kSendFlags = 0;
#endif

std::string errnoText(int error) { return std::strerror(error); }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoringCase(const std::string& a, const char* b) {
  const size_t n = std::strlen(b);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string trim(const std::string& s) {
  size_t from = 0;
  size_t to = s.size();
  while (from < to && (s[from] == ' ' || s[from] == '\t')) ++from;
  while (to > from && (s[to - 1] == ' ' || s[to - 1] == '\t')) --to;
  return s.substr(from, to - from);
}

// A decimal or hex size with no sign, no overflow and at most `limit`.
size_t parseSize(const std::string& text, int base, size_t limit, const char* what) {
  if (text.empty() || text.size() > 16) throw ProtocolError(std::string("reply has a bad ") + what);
  size_t value = 0;
  for (const char c : text) {
    int digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (base == 16 && lower(c) >= 'a' && lower(c) <= 'f')
      digit = lower(c) - 'a' + 10;
    else
      throw ProtocolError(std::string("reply has a bad ") + what + ": \"" + text + "\"");
    value = value * static_cast<size_t>(base) + static_cast<size_t>(digit);
    if (value > limit) {
      throw ProtocolError(std::string("reply's ") + what + " exceeds the limit of " +
                          std::to_string(limit) + " bytes");
    }
  }
  return value;
}

}  // namespace

HttpConnection::HttpConnection(std::string host, int port, int timeoutMs)
    : host_(std::move(host)), port_(port), timeoutMs_(timeoutMs) {
  open();
}

HttpConnection::~HttpConnection() { closeSocket(); }

void HttpConnection::closeSocket() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  reused_ = false;
  buffer_.clear();
}

void HttpConnection::applySocketTimeouts() {
  timeval tv{};
  tv.tv_sec = timeoutMs_ / 1000;
  tv.tv_usec = (timeoutMs_ % 1000) * 1000;
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void HttpConnection::open() {
  closeSocket();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string where = host_ + ":" + std::to_string(port_);
  const int rc = ::getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &found);
  if (rc != 0) throw IoError("cannot resolve " + where + ": " + ::gai_strerror(rc));
  std::string lastError = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) {
      lastError = errnoText(errno);
      continue;
    }
    // Non-blocking connect, so an unreachable host fails after the timeout
    // rather than the kernel's minutes.
    const int flags = ::fcntl(fd, F_GETFL, 0);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int error = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      error = errno;
      if (error == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        const int ready = ::poll(&p, 1, timeoutMs_);
        socklen_t len = sizeof error;
        if (ready == 0)
          error = ETIMEDOUT;
        else if (ready < 0)
          error = errno;
        else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0)
          error = errno;
      }
    }
    if (error != 0) {
      lastError = errnoText(error);
      ::close(fd);
      continue;
    }
    ::fcntl(fd, F_SETFL, flags);
    const int one = 1;
    // Requests are small and answered at once: no Nagle delay.
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
    ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    fd_ = fd;
    break;
  }
  ::freeaddrinfo(found);
  if (fd_ < 0) throw IoError("cannot connect to " + where + ": " + lastError);
  applySocketTimeouts();
}

bool HttpConnection::sendAll(const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, kSendFlags);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      if (error == EAGAIN || error == EWOULDBLOCK) {
        throw IoError("sending to the sidecar timed out after " + std::to_string(timeoutMs_) +
                      " ms");
      }
      if (error == EPIPE || error == ECONNRESET) return false;
      throw IoError("sending to the sidecar failed: " + errnoText(error));
    }
    sent += static_cast<size_t>(n);
  }
  return true;
}

bool HttpConnection::fill() {
  char chunk[16384];
  for (;;) {
    // One deadline for the whole reply, so a peer trickling bytes cannot
    // hold the caller past the timeout.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline_ - std::chrono::steady_clock::now())
                          .count();
    pollfd p{fd_, POLLIN, 0};
    const int ready = left <= 0 ? 0 : ::poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw IoError("waiting for the sidecar failed: " + errnoText(errno));
    if (ready == 0) {
      throw IoError("no reply from the sidecar within " + std::to_string(timeoutMs_) + " ms");
    }
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    const int error = errno;
    if (error == EAGAIN || error == EWOULDBLOCK) {
      throw IoError("no reply from the sidecar within " + std::to_string(timeoutMs_) + " ms");
    }
    if (error == ECONNRESET) return false;
    throw IoError("reading from the sidecar failed: " + errnoText(error));
  }
}

HttpReply HttpConnection::request(const char* method, const std::string& path,
                                  const std::string& body, const std::string& authorization) {
  // An IPv6 literal goes in brackets (RFC 7230 section 5.4).
  const std::string authority = (host_.find(':') == std::string::npos ? host_ : "[" + host_ + "]") +
                                ":" + std::to_string(port_);
  std::string head = std::string(method) + " " + path + " HTTP/1.1\r\nHost: " + authority +
                     "\r\nAccept: application/json\r\n";
  if (!authorization.empty()) head += "Authorization: Bearer " + authorization + "\r\n";
  if (std::strcmp(method, "GET") != 0) {
    head +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  head += "\r\n";
  const std::string message = head + body;

  for (int attempt = 0;; ++attempt) {
    if (fd_ < 0) open();
    deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs_);
    const bool mayBeStale = reused_ && attempt == 0;
    try {
      if (!sendAll(message) || (buffer_.empty() && !fill())) {
        // Closed before a byte of the reply: the request was not read. A
        // timeout is not this case: the sidecar may be working on it.
        closeSocket();
        if (mayBeStale) continue;
        throw IoError("the sidecar closed the connection without a reply");
      }
      reused_ = true;
      return readReply();
    } catch (...) {
      // A reply we could not read leaves the stream at an unknown place.
      closeSocket();
      throw;
    }
  }
}

HttpReply HttpConnection::readReply() {
  size_t headerEnd;
  while ((headerEnd = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (buffer_.size() > kMaxHeader) throw ProtocolError("reply headers exceed 64 KiB");
    if (!fill()) throw IoError("the sidecar closed the connection in the middle of a reply");
  }
  if (headerEnd > kMaxHeader) throw ProtocolError("reply headers exceed 64 KiB");
  const std::string head = buffer_.substr(0, headerEnd);
  buffer_.erase(0, headerEnd + 4);

  HttpReply reply;
  size_t lineEnd = head.find("\r\n");
  const std::string statusLine = head.substr(0, lineEnd);
  // "HTTP/1.1 200 OK": the version, a space, three digits.
  if (statusLine.size() < 12 || statusLine.compare(0, 7, "HTTP/1.") != 0 || statusLine[8] != ' ' ||
      (statusLine.size() > 12 && statusLine[12] != ' ')) {
    throw ProtocolError("reply is not HTTP/1.x: \"" + statusLine.substr(0, 40) + "\"");
  }
  reply.status = static_cast<int>(parseSize(statusLine.substr(9, 3), 10, 999, "status code"));
  if (reply.status < 100) throw ProtocolError("reply has a bad status code");
  bool closeAfter = statusLine[7] == '0';  // HTTP/1.0 closes unless told otherwise
  bool chunked = false;
  bool haveLength = false;
  size_t length = 0;
  while (lineEnd != std::string::npos) {
    const size_t from = lineEnd + 2;
    lineEnd = head.find("\r\n", from);
    const std::string line =
        head.substr(from, lineEnd == std::string::npos ? std::string::npos : lineEnd - from);
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0)
      throw ProtocolError("reply has a malformed header line");
    const std::string name = line.substr(0, colon);
    const std::string value = trim(line.substr(colon + 1));
    if (equalsIgnoringCase(name, "content-length")) {
      const size_t n = parseSize(value, 10, kMaxBody, "Content-Length");
      if (haveLength && n != length)
        throw ProtocolError("reply has conflicting Content-Length headers");
      haveLength = true;
      length = n;
    } else if (equalsIgnoringCase(name, "transfer-encoding")) {
      if (!equalsIgnoringCase(value, "chunked")) {
        throw ProtocolError("reply has an unsupported Transfer-Encoding \"" + value + "\"");
      }
      chunked = true;
    } else if (equalsIgnoringCase(name, "connection")) {
      if (equalsIgnoringCase(value, "close"))
        closeAfter = true;
      else if (equalsIgnoringCase(value, "keep-alive"))
        closeAfter = false;
    } else if (equalsIgnoringCase(name, "content-type")) {
      reply.contentType = value;
    }
  }

  if (chunked) {
    reply.body = readChunked();
  } else if (haveLength) {
    while (buffer_.size() < length) {
      if (!fill()) throw IoError("the sidecar closed the connection in the middle of a reply body");
    }
    reply.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
  } else {
    // No length: the body runs to the end of the connection.
    while (fill()) {
      if (buffer_.size() > kMaxBody) throw ProtocolError("reply body exceeds the limit of 64 MiB");
    }
    reply.body.swap(buffer_);
    closeAfter = true;
  }
  // Bytes past the reply answer nothing we asked: the stream cannot be trusted.
  if (closeAfter || !buffer_.empty()) closeSocket();
  return reply;
}

std::string HttpConnection::readChunked() {
  std::string body;
  for (;;) {
    size_t lineEnd;
    while ((lineEnd = buffer_.find("\r\n")) == std::string::npos) {
      if (buffer_.size() > 1024) throw ProtocolError("reply has a malformed chunk size line");
      if (!fill())
        throw IoError("the sidecar closed the connection in the middle of a chunked reply");
    }
    std::string sizeText = buffer_.substr(0, lineEnd);
    const size_t semicolon = sizeText.find(';');  // chunk extensions are ignored
    if (semicolon != std::string::npos) sizeText.resize(semicolon);
    const size_t size = parseSize(trim(sizeText), 16, kMaxBody, "chunk size");
    buffer_.erase(0, lineEnd + 2);
    if (size == 0) {
      // Trailers, then an empty line.
      for (;;) {
        while ((lineEnd = buffer_.find("\r\n")) == std::string::npos) {
          if (buffer_.size() > kMaxHeader) throw ProtocolError("reply trailers exceed 64 KiB");
          if (!fill())
            throw IoError("the sidecar closed the connection in the middle of a chunked reply");
        }
        buffer_.erase(0, lineEnd + 2);
        if (lineEnd == 0) return body;
      }
    }
    if (body.size() + size > kMaxBody)
      throw ProtocolError("reply body exceeds the limit of 64 MiB");
    while (buffer_.size() < size + 2) {
      if (!fill())
        throw IoError("the sidecar closed the connection in the middle of a chunked reply");
    }
    if (buffer_.compare(size, 2, "\r\n") != 0)
      throw ProtocolError("reply has a chunk without its CRLF");
    body.append(buffer_, 0, size);
    buffer_.erase(0, size + 2);
  }
}

}  // namespace cachesage::capi
