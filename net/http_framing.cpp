#include "net/http_framing.hpp"

#include <algorithm>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

namespace billing::net {

namespace http = boost::beast::http;

namespace {

std::string_view trim_ows(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

std::string_view value_of(const http::request_header<>& h, http::field f) noexcept {
  const auto v = h[f];
  return {v.data(), v.size()};
}

}  // namespace

bool header_scanner::feed(std::string_view bytes) noexcept {
  if (violation_) return false;
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    // A line that starts with SP or HTAB continues the previous one (obs-fold);
    // a recipient that unfolds it and one that does not disagree on fields.
    if (after_lf_ && (c == ' ' || c == '\t')) {
      violation_ = "obsolete line folding in header";
      return false;
    }
    if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f) {
      violation_ = "control character in header";
      return false;
    }
    after_lf_ = c == '\n';
  }
  return true;
}

const char* framing_violation(const http::request_header<>& h) noexcept {
  const size_t te = h.count(http::field::transfer_encoding);
  const size_t cl = h.count(http::field::content_length);
  if (te > 1) return "more than one Transfer-Encoding field";
  if (te == 1) {
    if (!boost::beast::iequals(trim_ows(value_of(h, http::field::transfer_encoding)), "chunked"))
      return "unsupported Transfer-Encoding (only chunked)";
    if (cl != 0) return "Transfer-Encoding together with Content-Length";
    if (h.version() < 11) return "Transfer-Encoding on an HTTP/1.0 request";
  }
  if (cl > 1) return "more than one Content-Length field";
  if (cl == 1) {
    const auto v = trim_ows(value_of(h, http::field::content_length));
    if (v.empty() || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return "Content-Length is not a number";
  }
  const size_t host = h.count(http::field::host);
  if (host > 1) return "more than one Host field";
  if (host == 0 && h.version() >= 11) return "HTTP/1.1 request without Host";
  return nullptr;
}

bool is_framing_error(const boost::system::error_code& ec) noexcept {
  return ec == http::error::bad_content_length || ec == http::error::multiple_content_length ||
         ec == http::error::bad_transfer_encoding || ec == http::error::bad_field ||
         ec == http::error::bad_value || ec == http::error::bad_line_ending || ec == http::error::bad_obs_fold;
}

}  // namespace billing::net
