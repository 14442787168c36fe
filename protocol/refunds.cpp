#include "protocol/refunds.hpp"

#include <string>

namespace billing {

namespace {

failure not_refundable(const invoice& inv) {
  return fail(billing_errc::invalid_state,
              "only a PAID invoice can be refunded; this one is " + std::string{to_string(inv.status)});
}

} // namespace

result<refund_request> plan_refund(const invoice& inv, const refund_invoice_request& req) {
  const bool maybe_repeat = !req.idempotency_key.empty()
                            && (inv.status == invoice_status::refunded || inv.status == invoice_status::disputed);
  if ((inv.status != invoice_status::paid && !maybe_repeat) || inv.provider_intent_id.empty())
    return not_refundable(inv);
  const int64_t left = inv.amount_cents - inv.refunded_cents;
  if (inv.status == invoice_status::paid && req.amount_cents && *req.amount_cents > left)
    return fail(billing_errc::invalid_argument,
                "amount_cents is more than is left to refund (" + std::to_string(left) + ")", "amount_cents");
  refund_request rr;
  rr.invoice = inv.id;
  rr.intent = inv.provider_intent_id;
  rr.amount_cents = req.amount_cents;
  rr.reason = req.reason;
  // Appended, not `"v" + std::to_string(...)`: GCC 12's -O3 reports a false
  // -Wrestrict on that operator+ (the Release build).
  rr.discriminator = req.idempotency_key.empty() ? std::string{"v"} : std::string{"k:"};
  rr.discriminator += req.idempotency_key.empty() ? std::to_string(inv.version) : req.idempotency_key;
  rr.invoice_amount_cents = inv.amount_cents;
  rr.refunded_before = inv.refunded_cents;
  return rr;
}

refund_reading read_refund(const invoice& inv, const refund_info& info, provider_mode mode, unix_seconds now) {
  refund_reading out;
  auto& ev = out.ev;
  ev.kind = event_kind::refunded;
  ev.created = now;
  ev.reconciled = true;
  ev.intent = inv.provider_intent_id;
  ev.currency = info.currency.empty() ? inv.currency : info.currency;
  ev.amount_cents = info.charge_amount_cents.value_or(inv.amount_cents);
  ev.refunded_cents = info.charge_refunded_cents.value_or(inv.refunded_cents + info.amount_cents);
  // The charge says its mode; without it the answer is ours by construction.
  ev.livemode = info.charge_amount_cents ? info.livemode : mode == provider_mode::live;
  out.fresh = info.charge_refunded_cents ? *info.charge_refunded_cents > inv.refunded_cents : !info.replayed;
  return out;
}

failure refund_refusal(const invoice& inv, failure f) {
  if (inv.status != invoice_status::paid && f.code == billing_errc::invalid_argument)
    return not_refundable(inv);
  return f;
}

} // namespace billing
