#include "actors/gateway.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace billing {
namespace {

struct gateway_job {
  std::function<void(caf::event_based_actor*)> run;
};

} // namespace
} // namespace billing

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(billing::gateway_job)

namespace billing {

namespace {

caf::behavior worker(caf::event_based_actor* self) {
  return {[self](gateway_job& j) { j.run(self); }};
}

// Sends `args` to `dest` and hands the typed answer (or the failure) to `done`.
template <class T, class Dest, class... Ts>
void ask(caf::event_based_actor* self, const Dest& dest, std::chrono::milliseconds timeout,
         callback<T> done, Ts&&... args) {
  self->request(dest, timeout, std::forward<Ts>(args)...)
    .then([done](T& r) { done(std::move(r)); },
          [done](caf::error& err) { done(T{failure_from(err)}); });
}

} // namespace

actor_gateway::actor_gateway(caf::actor_system& sys, context_ptr ctx,
                             registry_ptr registry, std::function<bool()> ready,
                             size_t workers)
  : ctx_(std::move(ctx)), registry_(std::move(registry)), ready_(std::move(ready)),
    admission_(std::make_shared<admission_limit>(ctx_->settings.admission_latency,
                                                 ctx_->settings.admission_floor,
                                                 ctx_->settings.max_in_flight)) {
  if (workers == 0)
    workers = 1;
  for (size_t i = 0; i < workers; ++i)
    workers_.push_back(sys.spawn(worker));
}

actor_gateway::~actor_gateway() {
  for (auto& w : workers_)
    caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
}

namespace {

failure at_capacity(size_t cap) {
  return fail(billing_errc::overloaded,
              "billingd is at capacity (" + std::to_string(cap) + " calls in flight); retry later");
}

} // namespace

std::optional<failure> actor_gateway::refuse_now() const {
  const size_t cap = admission_->limit(admission_limit::clock::now());
  if (in_flight_->load(std::memory_order_relaxed) >= cap)
    return at_capacity(cap);
  return std::nullopt;
}

template <class T>
std::optional<callback<T>> actor_gateway::admit(callback<T>& done) {
  const size_t cap = admission_->limit(admission_limit::clock::now());
  if (in_flight_->fetch_add(1, std::memory_order_relaxed) >= cap) {
    in_flight_->fetch_sub(1, std::memory_order_relaxed);
    done(T{at_capacity(cap)});
    return std::nullopt;
  }
  return callback<T>{[counter = in_flight_, admission = admission_, done = std::move(done)](T r) {
    counter->fetch_sub(1, std::memory_order_relaxed);
    admission->completed();
    done(std::move(r));
  }};
}

template <class T>
void actor_gateway::on_worker(callback<T> counted,
                              std::function<void(caf::event_based_actor*, callback<T>)> fn) {
  auto& w = workers_[next_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
  caf::anon_send(w, gateway_job{[fn = std::move(fn), counted = std::move(counted)](caf::event_based_actor* self) {
                   fn(self, counted);
                 }});
}

// The hot paths go straight to the invoice's actor (registry->send: one
// mailbox); its answer comes back through the reply_to.
void actor_gateway::create_invoice(create_invoice_request req, callback<invoice_result> done) {
  auto cb = admit(done);
  if (!cb)
    return;
  auto id = derive_invoice_id(req.workflow_id, req.shipment_id);
  registry_->send(id, create_atom::value, std::move(req), invoice_reply{std::move(*cb)});
}

void actor_gateway::get_invoice(invoice_id id, callback<invoice_result> done) {
  if (auto cb = admit(done))
    registry_->send(id, get_atom::value, invoice_reply{std::move(*cb)});
}

void actor_gateway::get_invoice_secret(invoice_id id, callback<invoice_result> done) {
  if (auto cb = admit(done))
    registry_->send(id, secret_atom::value, invoice_reply{std::move(*cb)});
}

void actor_gateway::cancel_invoice(invoice_id id, callback<invoice_result> done) {
  if (auto cb = admit(done))
    registry_->send(id, cancel_atom::value, invoice_reply{std::move(*cb)});
}

void actor_gateway::refund_invoice(invoice_id id, refund_invoice_request req, callback<refund_view_result> done) {
  if (auto cb = admit(done))
    registry_->send(id, refund_atom::value, std::move(req), refund_reply{std::move(*cb)});
}

void actor_gateway::list_invoices(invoice_filter filter, callback<list_result> done) {
  auto cb = admit(done);
  if (!cb)
    return;
  auto ctx = ctx_;
  auto timeout = ctx_->settings.request_timeout;
  on_worker<list_result>(std::move(*cb), [=](caf::event_based_actor* self, auto counted) {
    ask<list_result>(self, reader_of(*ctx), timeout, counted, list_atom::value, filter);
  });
}

void actor_gateway::handle_event(invoice_id invoice, incoming_event ev,
                                 callback<webhook_result> done) {
  auto cb = admit(done);
  if (!cb)
    return;
  // metadata.invoice_id is ours only if it has our id's shape: the hot path,
  // straight to the invoice's actor. Anything else (another integration's
  // metadata) is looked up by the intent on a worker.
  if (is_canonical_uuid(invoice.str()))
    return registry_->send(invoice, event_atom::value, std::move(ev), event_reply{std::move(*cb)});
  auto ctx = ctx_;
  auto registry = registry_;
  on_worker<webhook_result>(std::move(*cb), [=](caf::event_based_actor* self, auto counted) {
    auto timeout = ctx->settings.request_timeout;
    // No invoice for this event: record that (so a re-delivery is a
    // duplicate) and acknowledge it, as Stripe expects.
    auto unknown = [=] {
      write_command cmd;
      cmd.event = webhook_record{ev.ev.id, ev.type, invoice_id{}, outcome::ignored_unknown_invoice,
                                 ev.received_at};
      self->request(writer_for(*ctx, ev.ev.id.str()), timeout, write_atom::value, std::move(cmd))
        .then(
          [=](write_status s) {
            if (s == write_status::committed || s == write_status::duplicate_event) {
              spdlog::debug("event {} ({}): no matching invoice; ignored", ev.ev.id.str(), ev.type);
              counted(webhook_reply{s == write_status::committed ? outcome::ignored_unknown_invoice
                                                                : outcome::ignored_duplicate,
                                    {}, std::nullopt});
            } else {
              counted(fail(s == write_status::overloaded ? billing_errc::overloaded
                                                         : billing_errc::unavailable,
                           "the database is unavailable"));
            }
          },
          [=](caf::error& err) { counted(failure_from(err)); });
    };
    if (ev.ev.intent.empty())
      return unknown();
    self->request(reader_of(*ctx), timeout, find_atom::value, ev.ev.intent)
      .then(
        [=](find_result& r) {
          if (!ok(r))
            return counted(std::get<failure>(r));
          auto& found = std::get<std::optional<invoice_id>>(r);
          if (found)
            registry->send(*found, event_atom::value, ev, event_reply{counted});
          else
            unknown();
        },
        [=](caf::error& err) { counted(failure_from(err)); });
  });
}

} // namespace billing
