#include "test_util.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/http/parser.hpp>
#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace billing::net::test {

namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int poll_in(int fd, std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  pollfd p{fd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, static_cast<int>(left.count()));
  } while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace

raw_conn::raw_conn(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) return;
  const auto a = loopback(port);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

raw_conn::~raw_conn() { close(); }

void raw_conn::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void raw_conn::reset_close() {
  if (fd_ < 0) return;
  linger l{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close();
}

bool raw_conn::send(std::string_view data) {
  while (!data.empty()) {
    const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

long raw_conn::fill(std::chrono::steady_clock::time_point deadline) {
  if (fd_ < 0 || poll_in(fd_, deadline) <= 0) return -1;
  char tmp[16384];
  const auto n = ::recv(fd_, tmp, sizeof tmp, 0);
  if (n > 0) buf_.append(tmp, static_cast<size_t>(n));
  return n < 0 ? -1 : static_cast<long>(n);
}

std::optional<response> raw_conn::read_response(std::chrono::milliseconds timeout) { return read(timeout, false); }

std::optional<response> raw_conn::read_response_head(std::chrono::milliseconds timeout) {
  return read(timeout, true);
}

std::optional<response> raw_conn::read(std::chrono::milliseconds timeout, bool head) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  http::response_parser<http::string_body> p;
  p.skip(head);
  p.eager(true);
  p.body_limit(64 << 20);
  for (;;) {
    if (!buf_.empty()) {
      boost::system::error_code ec;
      const auto used = p.put(boost::asio::buffer(buf_), ec);
      buf_.erase(0, used);
      if (ec && ec != http::error::need_more) return std::nullopt;
      if (p.is_done()) return p.release();
      if (!ec && !buf_.empty()) continue;
    }
    const long n = fill(deadline);
    if (n == 0 && p.got_some()) {
      boost::system::error_code ec;
      p.put_eof(ec);
      if (!ec && p.is_done()) return p.release();
    }
    if (n <= 0) return std::nullopt;
  }
}

bool raw_conn::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  buf_.clear();
  while (fd_ >= 0 && poll_in(fd_, deadline) > 0) {
    char tmp[16384];
    const auto n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return true;  // EOF or reset
  }
  return false;
}

bool raw_conn::nothing_within(std::chrono::milliseconds quiet) {
  return fd_ >= 0 && poll_in(fd_, std::chrono::steady_clock::now() + quiet) == 0;
}

int connect_errno(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const auto a = loopback(port);
  const int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  const int err = r == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

uint16_t unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  auto a = loopback(0);
  ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string make_request(std::string_view method, std::string_view target, std::string_view body,
                         bool keep_alive, std::string_view extra_headers) {
  std::string r;
  r.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  if (!keep_alive) r.append("Connection: close\r\n");
  r.append(extra_headers);
  if (!body.empty() || method == "POST") r.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  r.append("\r\n").append(body);
  return r;
}

std::unique_ptr<http_server> start_server(server_config cfg, handler h) {
  cfg.address = "127.0.0.1";
  cfg.port = 0;
  auto s = std::make_unique<http_server>(std::move(cfg), std::move(h));
  std::string error;
  const bool ok = s->start(error);
  INFO(error);
  REQUIRE(ok);
  REQUIRE(s->port() != 0);
  return s;
}

response text_response(http::status status, std::string body) {
  response res{status, 11};
  res.set(http::field::content_type, "text/plain");
  res.body() = std::move(body);
  return res;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

delayed::delayed() {
  thread_ = std::thread([this] {
    std::unique_lock lock{m_};
    for (;;) {
      if (stop_ && items_.empty()) return;
      if (items_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto it = std::min_element(items_.begin(), items_.end(),
                                 [](const item& a, const item& b) { return a.due < b.due; });
      if (const auto due = it->due; std::chrono::steady_clock::now() < due) {
        cv_.wait_until(lock, due);  // items_ may reallocate meanwhile
        continue;
      }
      auto task = std::move(it->task);
      items_.erase(it);
      lock.unlock();
      task();
      lock.lock();
    }
  });
}

delayed::~delayed() {
  {
    std::lock_guard lock{m_};
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void delayed::after(std::chrono::milliseconds delay, std::function<void()> task) {
  {
    std::lock_guard lock{m_};
    items_.push_back({std::chrono::steady_clock::now() + delay, std::move(task)});
  }
  cv_.notify_all();
}

void parked::add(responder r) {
  std::lock_guard lock{m_};
  list_.push_back(std::move(r));
}

size_t parked::size() {
  std::lock_guard lock{m_};
  return list_.size();
}

responder parked::take(size_t i) {
  std::lock_guard lock{m_};
  return list_.at(i);
}

self_signed make_self_signed(const std::string& san) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key != nullptr);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("billingd-test"), -1,
                             -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, san.c_str()},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    REQUIRE(ext != nullptr);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  REQUIRE(X509_sign(x, key, EVP_sha256()) > 0);
  auto pem = [](auto write) {
    BIO* bio = BIO_new(BIO_s_mem());
    write(bio);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(bio);
    return out;
  };
  self_signed out;
  out.cert_pem = pem([&](BIO* b) { PEM_write_bio_X509(b, x); });
  out.key_pem = pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace billing::net::test
