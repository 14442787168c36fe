#pragma once
// What the log line being written is about: the request id, invoice id and
// event id of the work the current thread is doing, "where known". Pure data
// in thread-local storage; whoever handles a request sets what it knows with a
// scoped guard (the edges: request id, invoice id; actors/: the invoice and
// event they apply) and the JSON log formatter (app/logging) reads it.
//
// A guard restores what was there before when it ends, so guards nest (an
// actor handling a message inside an edge's callback keeps the edge's request
// id and adds its invoice). Values are copied: nothing dangles after the
// caller's strings go. Never put a secret here: every log line shows it.

#include <string>
#include <string_view>
#include <utility>

namespace billing {

struct log_context {
  std::string request_id;
  std::string invoice_id;
  std::string event_id;

  // The current thread's context.
  static log_context& current() noexcept {
    thread_local log_context ctx;
    return ctx;
  }
};

// Sets the fields given (non-empty) for its lifetime; restores the previous
// values on destruction. Not movable: it belongs to one scope on one thread.
class log_scope {
public:
  explicit log_scope(std::string_view request_id, std::string_view invoice_id = {},
                     std::string_view event_id = {})
    : saved_(log_context::current()) {
    auto& c = log_context::current();
    if (!request_id.empty())
      c.request_id = std::string{request_id};
    if (!invoice_id.empty())
      c.invoice_id = std::string{invoice_id};
    if (!event_id.empty())
      c.event_id = std::string{event_id};
  }
  ~log_scope() { log_context::current() = std::move(saved_); }
  log_scope(const log_scope&) = delete;
  log_scope& operator=(const log_scope&) = delete;

  // Adds or replaces one field inside the scope (restored with the rest).
  static void set_invoice(std::string_view id) { log_context::current().invoice_id = std::string{id}; }
  static void set_event(std::string_view id) { log_context::current().event_id = std::string{id}; }

private:
  log_context saved_;
};

} // namespace billing
