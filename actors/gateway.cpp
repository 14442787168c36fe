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

failure failure_from(const caf::error& err) {
  if (err == caf::sec::request_timeout)
    return fail(billing_errc::timeout, "the request timed out inside billingd");
  // Among them sec::request_receiver_down: the actor died with the request
  // in its mailbox (its supervisor or shard restarts it): 503, retry.
  return fail(billing_errc::unavailable, "internal request failed: " + caf::to_string(err));
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
                             const invoice_registry& registry, std::function<bool()> ready,
                             size_t workers)
  : ctx_(std::move(ctx)), registry_(registry), ready_(std::move(ready)),
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
void actor_gateway::submit(callback<T> done,
                           std::function<void(caf::event_based_actor*, callback<T>)> fn) {
  const size_t cap = admission_->limit(admission_limit::clock::now());
  if (in_flight_->fetch_add(1, std::memory_order_relaxed) >= cap) {
    in_flight_->fetch_sub(1, std::memory_order_relaxed);
    done(T{at_capacity(cap)});
    return;
  }
  callback<T> counted = [counter = in_flight_, admission = admission_, done = std::move(done)](T r) {
    counter->fetch_sub(1, std::memory_order_relaxed);
    admission->completed();
    done(std::move(r));
  };
  auto& w = workers_[next_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
  caf::anon_send(w, gateway_job{[fn = std::move(fn), counted](caf::event_based_actor* self) {
                   fn(self, counted);
                 }});
}

void actor_gateway::create_invoice(create_invoice_request req, callback<invoice_result> done) {
  auto id = derive_invoice_id(req.workflow_id, req.shipment_id);
  auto& shard = registry_.shard_for(id);
  auto timeout = ctx_->settings.request_timeout;
  submit<invoice_result>(std::move(done), [=](caf::event_based_actor* self, auto cb) {
    ask<invoice_result>(self, shard, timeout, cb, create_atom::value, id, req);
  });
}

void actor_gateway::get_invoice(invoice_id id, callback<invoice_result> done) {
  auto& shard = registry_.shard_for(id);
  auto timeout = ctx_->settings.request_timeout;
  submit<invoice_result>(std::move(done), [=](caf::event_based_actor* self, auto cb) {
    ask<invoice_result>(self, shard, timeout, cb, get_atom::value, id);
  });
}

void actor_gateway::list_invoices(invoice_filter filter, callback<list_result> done) {
  auto ctx = ctx_;
  auto timeout = ctx_->settings.request_timeout;
  submit<list_result>(std::move(done), [=](caf::event_based_actor* self, auto cb) {
    ask<list_result>(self, reader_of(*ctx), timeout, cb, list_atom::value, filter);
  });
}

void actor_gateway::cancel_invoice(invoice_id id, callback<invoice_result> done) {
  auto& shard = registry_.shard_for(id);
  auto timeout = ctx_->settings.request_timeout;
  submit<invoice_result>(std::move(done), [=](caf::event_based_actor* self, auto cb) {
    ask<invoice_result>(self, shard, timeout, cb, cancel_atom::value, id);
  });
}

void actor_gateway::handle_event(invoice_id invoice, incoming_event ev,
                                 callback<webhook_result> done) {
  auto ctx = ctx_;
  const invoice_registry* registry = &registry_;
  submit<webhook_result>(std::move(done), [=](caf::event_based_actor* self, auto cb) {
    auto timeout = ctx->settings.request_timeout;
    auto route = [=](const invoice_id& id) {
      ask<webhook_result>(self, registry->shard_for(id), timeout, cb, event_atom::value, id, ev);
    };
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
              spdlog::info("event {} ({}): no matching invoice; ignored", ev.ev.id.str(), ev.type);
              cb(webhook_reply{s == write_status::committed ? outcome::ignored_unknown_invoice
                                                           : outcome::ignored_duplicate,
                               {}, std::nullopt});
            } else {
              cb(fail(s == write_status::overloaded ? billing_errc::overloaded
                                                    : billing_errc::unavailable,
                      "the database is unavailable"));
            }
          },
          [=](caf::error& err) { cb(failure_from(err)); });
    };
    // metadata.invoice_id is ours only if it has our id's shape; anything
    // else (another integration's metadata) routes by the intent.
    if (is_canonical_uuid(invoice.str()))
      return route(invoice);
    if (ev.ev.intent.empty())
      return unknown();
    self->request(reader_of(*ctx), timeout, find_atom::value, ev.ev.intent)
      .then(
        [=](find_result& r) {
          if (!ok(r))
            return cb(std::get<failure>(r));
          auto& found = std::get<std::optional<invoice_id>>(r);
          if (found)
            route(*found);
          else
            unknown();
        },
        [=](caf::error& err) { cb(failure_from(err)); });
  });
}

} // namespace billing
