// HTTP/1.1 over one keep-alive TCP connection (POSIX sockets), just enough
// for the sidecar's API: requests with a body and Content-Length, replies
// with Content-Length, chunked, or read-to-close bodies. Internal to
// libcachesage.
//
// A connection the sidecar closed while idle is reopened, and the request
// sent once more, only when nothing of the reply arrived: the sidecar did
// not see the request then (it answers every request it reads), so a retry
// cannot apply a verb twice.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace cachesage::capi {

// The sidecar could not be reached, or the connection failed or timed out.
class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HttpReply {
  int status = 0;
  std::string contentType;
  std::string body;
};

class HttpConnection {
 public:
  // Resolves `host` (name or address, IPv4 or IPv6) and connects; throws
  // IoError when it cannot.
  HttpConnection(std::string host, int port, int timeoutMs);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // One request and its reply. `authorization` is the bearer token, "" for
  // none. Throws IoError, or ProtocolError for a reply that is not HTTP.
  HttpReply request(const char* method, const std::string& path, const std::string& body,
                    const std::string& authorization);

  // Replies larger than this are refused (the sidecar's are far smaller).
  static constexpr size_t kMaxBody = 64u << 20;
  static constexpr size_t kMaxHeader = 64u << 10;

 private:
  void open();
  // SO_SNDTIMEO and SO_RCVTIMEO of timeoutMs_, a bound on each blocking call.
  void applySocketTimeouts();
  void closeSocket() noexcept;
  // False when the peer had closed the connection.
  bool sendAll(const std::string& data);
  // Reads more bytes into buffer_; false at end of stream.
  bool fill();
  HttpReply readReply();
  std::string readChunked();

  std::string host_;
  int port_;
  int timeoutMs_;
  int fd_ = -1;
  // Whether the open connection already carried a request (so the sidecar
  // may have closed it as idle).
  bool reused_ = false;
  std::string buffer_;  // bytes received and not yet consumed
  // When the reply being read must have arrived whole.
  std::chrono::steady_clock::time_point deadline_{};
};

}  // namespace cachesage::capi
