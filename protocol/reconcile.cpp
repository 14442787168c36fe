#include "protocol/reconcile.hpp"

namespace billing {

event_id reconcile_event_id(std::string_view object_id, std::string_view what) {
  std::string id = "billingd-reconcile:";
  id.append(object_id);
  id += ':';
  id.append(what);
  return event_id{std::move(id)};
}

std::string reconcile_event_type(std::string_view object, std::string_view what) {
  std::string t = "billingd.reconcile.";
  t.append(object);
  t += '.';
  t.append(what);
  return t;
}

namespace {

reading make(event_kind kind, std::string_view object, std::string_view object_id, std::string_view what,
             unix_seconds now) {
  reading r;
  r.ev.kind = kind;
  r.ev.id = reconcile_event_id(object_id, what);
  r.ev.created = now;
  r.ev.reconciled = true;
  r.type = reconcile_event_type(object, what);
  return r;
}

} // namespace

std::optional<reading> intent_reading(const intent_info& pi, invoice_status status, unix_seconds now) {
  if (pi.id.empty())
    return std::nullopt;
  std::optional<reading> r;
  if (pi.status == "succeeded") {
    r = make(event_kind::payment_succeeded, "payment_intent", pi.id.str(), "succeeded", now);
    if (pi.amount_cents > 0)
      r->ev.amount_cents = pi.amount_cents;
  } else if (pi.status == "canceled") {
    r = make(event_kind::payment_canceled, "payment_intent", pi.id.str(), "canceled", now);
  } else if (pi.status == "requires_payment_method" && !pi.failure_code.empty()
             && status == invoice_status::pending) {
    // The id names the failure, so a second reading of the same failure
    // (another replica) dedupes; a later, different failure is a new id.
    r = make(event_kind::payment_failed, "payment_intent", pi.id.str(), "failed:" + pi.failure_code, now);
    r->ev.failure_code = pi.failure_code;
    r->ev.failure_message = pi.failure_message;
  } else {
    return std::nullopt;
  }
  r->ev.intent = pi.id;
  r->ev.currency = pi.currency;
  r->ev.livemode = pi.livemode;
  return r;
}

std::optional<reading> session_reading(const session_info& s, unix_seconds now) {
  if (s.id.empty())
    return std::nullopt;
  std::optional<reading> r;
  if (s.status == "complete" && (s.payment_status == "paid" || s.payment_status == "no_payment_required")) {
    r = make(event_kind::payment_succeeded, "checkout.session", s.id.str(), "paid", now);
    if (s.amount_cents > 0)
      r->ev.amount_cents = s.amount_cents;
  } else if (s.status == "expired") {
    r = make(event_kind::payment_canceled, "checkout.session", s.id.str(), "expired", now);
  } else {
    return std::nullopt;
  }
  r->ev.session = s.id;
  r->ev.intent = s.intent;
  r->ev.currency = s.currency;
  r->ev.livemode = s.livemode;
  return r;
}

} // namespace billing
