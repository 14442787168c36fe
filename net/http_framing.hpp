// Request framing rules the server enforces on top of Beast's parser, as pure
// functions (no I/O, no state beyond one header scan). Beast accepts some
// headers that frame a message ambiguously — it treats the body as chunked
// only when `chunked` is the last coding, accepts repeated equal
// Content-Length fields, joins obs-folded lines — and a front proxy may read
// the same bytes differently: request smuggling. http_server refuses every
// such message with 400 and closes the connection.
//
// The rules (RFC 9112 §3.2, §5.2, §6.1, §6.3):
//  1. Transfer-Encoding: at most one field, whose value is exactly `chunked`
//     (case-insensitive, surrounding whitespace allowed); only on HTTP/1.1.
//  2. Never Transfer-Encoding together with Content-Length.
//  3. At most one Content-Length field, plain digits.
//  4. HTTP/1.1: exactly one Host; any version: never more than one.
//  5. No obs-fold, no control character but HTAB in the header (Beast already
//     refuses most control characters; the scan is the explicit guarantee).
#pragma once

#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/system/error_code.hpp>

namespace billing::net {

// Scans the raw bytes of one request header as the parser consumes them
// (Beast may consume a header in several pieces). Reset it per request.
class header_scanner {
 public:
  // False once the bytes fed so far hold an obs-fold or a control character.
  bool feed(std::string_view bytes) noexcept;
  // Why feed() returned false; nullptr while it has not.
  const char* violation() const noexcept { return violation_; }
  void reset() noexcept { *this = header_scanner{}; }

 private:
  bool after_lf_ = false;  // the previous byte ended a line
  const char* violation_ = nullptr;
};

// Rules 1-4 on a complete, parsed header: nullptr when the message is framed
// unambiguously, else a short reason for the 400 body.
const char* framing_violation(const boost::beast::http::request_header<>& h) noexcept;

// True for Beast's parse errors that are framing faults of rules 1-5 (bad or
// conflicting Transfer-Encoding/Content-Length, bad field or value, bad line
// ending), so they are counted with the server's own refusals.
bool is_framing_error(const boost::system::error_code& ec) noexcept;

}  // namespace billing::net
