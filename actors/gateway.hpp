#pragma once
// billing_api for the edges: turns each call into one actor message and its
// answer into one callback. Called on io threads, it never blocks. Calls
// about one invoice (create, get, cancel, a webhook with our metadata) go
// straight to the invoice's actor through the registry, carrying the
// callback as their reply_to: one mailbox. The rest (lists, events routed
// by intent) need request/response with a reader, so a small pool of worker
// actors issues those. Calls in flight are bounded; past the bound they are
// answered `overloaded` at once: by count (max_in_flight) and by latency
// (admission_limit, actors/admission.hpp).

#include "actors/admission.hpp"
#include "actors/context.hpp"
#include "actors/registry.hpp"
#include "protocol/api.hpp"

#include <atomic>
#include <memory>
#include <vector>

namespace billing {

class actor_gateway final : public billing_api {
public:
  // `ready` says whether billingd can serve (/readyz): app/ passes "every
  // writer connected and every supervised actor running".
  actor_gateway(caf::actor_system& sys, context_ptr ctx, registry_ptr registry,
                std::function<bool()> ready, size_t workers);
  ~actor_gateway() override;

  void create_invoice(create_invoice_request req, callback<invoice_result> done) override;
  void get_invoice(invoice_id id, callback<invoice_result> done) override;
  void get_invoice_secret(invoice_id id, callback<invoice_result> done) override;
  void list_invoices(invoice_filter filter, callback<list_result> done) override;
  void cancel_invoice(invoice_id id, callback<invoice_result> done) override;
  void refund_invoice(invoice_id id, refund_invoice_request req, callback<refund_view_result> done) override;
  void handle_event(invoice_id invoice, incoming_event ev, callback<webhook_result> done) override;
  bool ready() const override { return ready_(); }
  std::optional<failure> refuse_now() const override;

  size_t in_flight() const { return in_flight_->load(std::memory_order_relaxed); }
  // The current cap on calls in flight (max_in_flight or lower).
  size_t admission_cap() const { return admission_->limit(admission_limit::clock::now()); }

private:
  // The callback that counts the call out of the in-flight bound, or
  // nullopt when the bound is reached (then `done` was answered overloaded).
  template <class T>
  std::optional<callback<T>> admit(callback<T>& done);
  // Runs `fn` on a worker actor (for calls that need request/response).
  template <class T>
  void on_worker(callback<T> counted, std::function<void(caf::event_based_actor*, callback<T>)> fn);

  context_ptr ctx_;
  registry_ptr registry_;
  std::function<bool()> ready_;
  std::vector<caf::actor> workers_;
  std::atomic<size_t> next_{0};
  std::shared_ptr<std::atomic<size_t>> in_flight_ = std::make_shared<std::atomic<size_t>>(0);
  std::shared_ptr<admission_limit> admission_;
};

} // namespace billing
