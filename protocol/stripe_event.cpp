// Stripe event parsing with simdjson on-demand: every object billingd reads
// is walked once, field by field, matching the keys it needs and letting
// simdjson skip the rest. Nothing here throws; simdjson is used through its
// error-code API only.

#include "protocol/stripe_event.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

namespace billing {

namespace {

namespace od = simdjson::ondemand;

event_parse_errc map_error(simdjson::error_code e) noexcept {
  switch (e) {
    case simdjson::EMPTY:
      return event_parse_errc::empty_body;
    case simdjson::INCORRECT_TYPE:
      return event_parse_errc::wrong_type;
    case simdjson::NUMBER_OUT_OF_RANGE:
      return event_parse_errc::value_out_of_range;
    case simdjson::DEPTH_ERROR:
      return event_parse_errc::too_deep;
    case simdjson::CAPACITY:
      return event_parse_errc::too_large;
    case simdjson::MEMALLOC:
      return event_parse_errc::out_of_memory;
    default: // UTF8_ERROR, TAPE_ERROR, STRING_ERROR, *_ATOM_ERROR, ...
      return event_parse_errc::invalid_json;
  }
}

// Walks the document and fills `ev`; on the first problem records it in
// `err` and returns false. Every reader returns false iff it failed.
class extractor {
public:
  stripe_event ev;
  event_parse_error err;

  bool run(od::document& doc);

private:
  // Raw values of data.object; which of them count depends on the object
  // kind, which may only be known once the object is fully read.
  struct object_fields {
    std::string object_type;
    std::string payment_intent;
    std::optional<int64_t> amount, amount_total, amount_refunded;
    std::string failure_code, failure_message;
  };

  bool fail(event_parse_errc c, std::string_view path, std::string_view key = {}) {
    err.code = c;
    err.field.assign(path);
    if (!key.empty()) {
      err.field += '.';
      err.field += key;
    }
    return false;
  }
  bool fail(simdjson::error_code e, std::string_view path, std::string_view key = {}) {
    return fail(map_error(e), path, key);
  }

  // Marks `bit` seen in `seen`; false if it already was.
  bool first_time(uint32_t& seen, uint32_t bit, std::string_view path) {
    if (seen & bit)
      return fail(event_parse_errc::duplicate_field, path);
    seen |= bit;
    return true;
  }

  // type() said null: check the token really is `null` and step over it.
  bool consume_null(od::value& v, std::string_view path) {
    bool null = false;
    if (v.is_null().get(null) != simdjson::SUCCESS || !null)
      return fail(event_parse_errc::invalid_json, path);
    return true;
  }

  bool type_of(od::value& v, od::json_type& t, std::string_view path) {
    if (auto e = v.type().get(t))
      return fail(e, path);
    return true;
  }

  // A string, or (if nullable) null, which leaves `out` empty.
  bool read_string(od::value v, std::string& out, std::string_view path, bool nullable = true);
  // A non-negative integer fitting int64, or (if nullable) null.
  bool read_count(od::value v, std::optional<int64_t>& out, std::string_view path,
                  bool nullable = true);
  bool read_bool(od::value v, bool& out, std::string_view path);
  // Fails unless `v` is an object (or, if nullable, null); `is_null` says which.
  bool open_object(od::value& v, od::object& obj, bool& is_null, std::string_view path,
                   bool nullable);

  bool read_data(od::value v);
  bool read_object(od::value v);
  bool read_metadata(od::value v);
  bool read_last_payment_error(od::value v, object_fields& f);

  static constexpr std::string_view obj_path = "data.object";
};

bool extractor::read_string(od::value v, std::string& out, std::string_view path, bool nullable) {
  od::json_type t;
  if (!type_of(v, t, path))
    return false;
  if (t == od::json_type::string) {
    std::string_view s;
    if (auto e = v.get_string().get(s))
      return fail(e, path);
    out.assign(s);
    return true;
  }
  if (t == od::json_type::null && nullable) {
    if (!consume_null(v, path))
      return false;
    out.clear();
    return true;
  }
  return fail(event_parse_errc::wrong_type, path);
}

bool extractor::read_count(od::value v, std::optional<int64_t>& out, std::string_view path,
                           bool nullable) {
  od::json_type t;
  if (!type_of(v, t, path))
    return false;
  if (t == od::json_type::null && nullable) {
    if (!consume_null(v, path))
      return false;
    out.reset();
    return true;
  }
  if (t != od::json_type::number)
    return fail(event_parse_errc::wrong_type, path);
  int64_t x = 0;
  auto e = v.get_int64().get(x);
  if (e == simdjson::INCORRECT_TYPE) {
    // A fraction or exponent: out of range if no int64 could hold it,
    // otherwise simply not an integer.
    double d = 0;
    if (auto e2 = v.get_double().get(d))
      return fail(e2, path);
    return fail(std::fabs(d) >= 9223372036854775808.0 ? event_parse_errc::value_out_of_range
                                                       : event_parse_errc::wrong_type,
                path);
  }
  if (e)
    return fail(e, path); // NUMBER_OUT_OF_RANGE for integers beyond int64
  if (x < 0)
    return fail(event_parse_errc::value_out_of_range, path);
  out = x;
  return true;
}

bool extractor::read_bool(od::value v, bool& out, std::string_view path) {
  od::json_type t;
  if (!type_of(v, t, path))
    return false;
  if (t == od::json_type::null) {
    if (!consume_null(v, path))
      return false;
    out = false;
    return true;
  }
  if (t != od::json_type::boolean)
    return fail(event_parse_errc::wrong_type, path);
  if (v.get_bool().get(out) != simdjson::SUCCESS) // "tru", "falsey"
    return fail(event_parse_errc::invalid_json, path);
  return true;
}

bool extractor::open_object(od::value& v, od::object& obj, bool& is_null, std::string_view path,
                            bool nullable) {
  od::json_type t;
  if (!type_of(v, t, path))
    return false;
  is_null = false;
  if (t == od::json_type::null && nullable) {
    is_null = true;
    return consume_null(v, path);
  }
  if (t != od::json_type::object)
    return fail(event_parse_errc::wrong_type, path);
  if (auto e = v.get_object().get(obj))
    return fail(e, path);
  return true;
}

bool extractor::run(od::document& doc) {
  od::object top;
  if (auto e = doc.get_object().get(top))
    return fail(e == simdjson::INCORRECT_TYPE ? event_parse_errc::not_an_object : map_error(e), "");

  enum : uint32_t { k_id = 1, k_type = 2, k_created = 4, k_livemode = 8, k_api = 16, k_data = 32 };
  uint32_t seen = 0;
  std::string id;
  std::optional<int64_t> created;
  for (auto field : top) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key))
      return fail(e, "");
    od::value v;
    if (auto e = field.value().get(v))
      return fail(e, key);
    if (key == "id") {
      if (!first_time(seen, k_id, "id") || !read_string(v, id, "id", false))
        return false;
    } else if (key == "type") {
      if (!first_time(seen, k_type, "type") || !read_string(v, ev.type, "type", false))
        return false;
    } else if (key == "created") {
      if (!first_time(seen, k_created, "created") || !read_count(v, created, "created", false))
        return false;
    } else if (key == "livemode") {
      if (!first_time(seen, k_livemode, "livemode") || !read_bool(v, ev.livemode, "livemode"))
        return false;
    } else if (key == "api_version") {
      if (!first_time(seen, k_api, "api_version") ||
          !read_string(v, ev.api_version, "api_version"))
        return false;
    } else if (key == "data") {
      if (!first_time(seen, k_data, "data") || !read_data(v))
        return false;
    }
  }
  // Anything after the closing brace is not JSON.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS)
    return fail(event_parse_errc::invalid_json, "");

  if (!(seen & k_id))
    return fail(event_parse_errc::missing_field, "id");
  if (id.empty())
    return fail(event_parse_errc::empty_value, "id");
  if (!(seen & k_type))
    return fail(event_parse_errc::missing_field, "type");
  if (!(seen & k_created))
    return fail(event_parse_errc::missing_field, "created");
  if (!(seen & k_data))
    return fail(event_parse_errc::missing_field, "data");
  ev.id = event_id{std::move(id)};
  ev.created = *created;
  return true;
}

bool extractor::read_data(od::value v) {
  od::object obj;
  bool null = false;
  if (!open_object(v, obj, null, "data", false))
    return false;
  bool have_object = false;
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key))
      return fail(e, "data");
    if (key != "object")
      continue;
    if (have_object)
      return fail(event_parse_errc::duplicate_field, obj_path);
    have_object = true;
    od::value ov;
    if (auto e = field.value().get(ov))
      return fail(e, obj_path);
    if (!read_object(ov))
      return false;
  }
  if (!have_object)
    return fail(event_parse_errc::missing_field, obj_path);
  return true;
}

bool extractor::read_object(od::value v) {
  od::object obj;
  bool null = false;
  if (!open_object(v, obj, null, obj_path, false))
    return false;

  enum : uint32_t {
    k_id = 1 << 0, k_object = 1 << 1, k_intent = 1 << 2, k_status = 1 << 3,
    k_payment_status = 1 << 4, k_amount = 1 << 5, k_amount_total = 1 << 6,
    k_amount_refunded = 1 << 7, k_currency = 1 << 8, k_metadata = 1 << 9, k_lpe = 1 << 10,
  };
  uint32_t seen = 0;
  object_fields f;
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key))
      return fail(e, obj_path);
    od::value fv;
    if (auto e = field.value().get(fv))
      return fail(e, obj_path, key);
    bool ok = true;
    if (key == "id") {
      ok = first_time(seen, k_id, "data.object.id") &&
           read_string(fv, ev.object_id, "data.object.id", false);
    } else if (key == "object") {
      ok = first_time(seen, k_object, "data.object.object") &&
           read_string(fv, f.object_type, "data.object.object");
    } else if (key == "payment_intent") {
      ok = first_time(seen, k_intent, "data.object.payment_intent") &&
           read_string(fv, f.payment_intent, "data.object.payment_intent");
    } else if (key == "status") {
      ok = first_time(seen, k_status, "data.object.status") &&
           read_string(fv, ev.status, "data.object.status");
    } else if (key == "payment_status") {
      ok = first_time(seen, k_payment_status, "data.object.payment_status") &&
           read_string(fv, ev.payment_status, "data.object.payment_status");
    } else if (key == "amount") {
      ok = first_time(seen, k_amount, "data.object.amount") &&
           read_count(fv, f.amount, "data.object.amount");
    } else if (key == "amount_total") {
      ok = first_time(seen, k_amount_total, "data.object.amount_total") &&
           read_count(fv, f.amount_total, "data.object.amount_total");
    } else if (key == "amount_refunded") {
      ok = first_time(seen, k_amount_refunded, "data.object.amount_refunded") &&
           read_count(fv, f.amount_refunded, "data.object.amount_refunded");
    } else if (key == "currency") {
      ok = first_time(seen, k_currency, "data.object.currency") &&
           read_string(fv, ev.currency, "data.object.currency");
    } else if (key == "metadata") {
      ok = first_time(seen, k_metadata, "data.object.metadata") && read_metadata(fv);
    } else if (key == "last_payment_error") {
      ok = first_time(seen, k_lpe, "data.object.last_payment_error") &&
           read_last_payment_error(fv, f);
    }
    if (!ok)
      return false;
  }
  if (!(seen & k_id))
    return fail(event_parse_errc::missing_field, "data.object.id");
  if (ev.object_id.empty())
    return fail(event_parse_errc::empty_value, "data.object.id");

  // Now that the kind is known, keep what belongs to it.
  const std::string_view ot = f.object_type;
  ev.object_kind = ot == "payment_intent"     ? stripe_object_kind::payment_intent
                   : ot == "charge"           ? stripe_object_kind::charge
                   : ot == "dispute"          ? stripe_object_kind::dispute
                   : ot == "checkout.session" ? stripe_object_kind::checkout_session
                                              : stripe_object_kind::other;
  switch (ev.object_kind) {
    case stripe_object_kind::payment_intent:
      ev.intent = intent_id{ev.object_id};
      ev.amount = f.amount;
      ev.failure_code = std::move(f.failure_code);
      ev.failure_message = std::move(f.failure_message);
      break;
    case stripe_object_kind::charge:
      ev.intent = intent_id{std::move(f.payment_intent)};
      ev.amount = f.amount;
      ev.amount_refunded = f.amount_refunded;
      break;
    case stripe_object_kind::checkout_session:
      ev.intent = intent_id{std::move(f.payment_intent)};
      ev.amount = f.amount_total;
      break;
    case stripe_object_kind::dispute:
    case stripe_object_kind::other:
      ev.intent = intent_id{std::move(f.payment_intent)};
      ev.amount = f.amount;
      break;
  }
  if (ev.object_kind != stripe_object_kind::checkout_session)
    ev.payment_status.clear();
  return true;
}

bool extractor::read_metadata(od::value v) {
  static constexpr std::string_view path = "data.object.metadata";
  od::object obj;
  bool null = false;
  if (!open_object(v, obj, null, path, true))
    return false;
  if (null)
    return true;
  uint32_t seen = 0;
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key))
      return fail(e, path);
    od::value mv;
    if (auto e = field.value().get(mv))
      return fail(e, path, key);
    std::string* target = nullptr;
    uint32_t bit = 0;
    if (key == "invoice_id") {
      target = &ev.invoice_id;
      bit = 1;
    } else if (key == "workflow_id") {
      target = &ev.workflow_id;
      bit = 2;
    } else if (key == "shipment_id") {
      target = &ev.shipment_id;
      bit = 4;
    }
    if (seen & bit)
      return fail(event_parse_errc::duplicate_field, path, key);
    seen |= bit;
    // Stripe metadata values are always strings, ours or not.
    od::json_type t;
    if (auto e = mv.type().get(t))
      return fail(e, path, key);
    if (t != od::json_type::string)
      return fail(event_parse_errc::wrong_type, path, key);
    if (target == nullptr)
      continue; // not ours: left for simdjson to skip
    std::string_view s;
    if (auto e = mv.get_string().get(s))
      return fail(e, path, key);
    target->assign(s);
  }
  return true;
}

bool extractor::read_last_payment_error(od::value v, object_fields& f) {
  static constexpr std::string_view path = "data.object.last_payment_error";
  od::object obj;
  bool null = false;
  if (!open_object(v, obj, null, path, true))
    return false;
  if (null)
    return true;
  uint32_t seen = 0;
  for (auto field : obj) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key))
      return fail(e, path);
    // payment_method (card details) and the rest are skipped unread.
    std::string* target = nullptr;
    uint32_t bit = 0;
    std::string_view field_path;
    if (key == "code") {
      target = &f.failure_code;
      bit = 1;
      field_path = "data.object.last_payment_error.code";
    } else if (key == "message") {
      target = &f.failure_message;
      bit = 2;
      field_path = "data.object.last_payment_error.message";
    } else {
      continue;
    }
    if (!first_time(seen, bit, field_path))
      return false;
    od::value lv;
    if (auto e = field.value().get(lv))
      return fail(e, field_path);
    if (!read_string(lv, *target, field_path))
      return false;
  }
  return true;
}

// Bodies up to this size go through the thread's cached parser and buffer;
// larger ones get a one-off parser so a rare huge body does not pin its
// memory to the thread forever.
constexpr size_t cached_limit = 256 * 1024;

struct thread_scratch {
  od::parser parser;
  std::unique_ptr<char[]> buf;
  size_t cap = 0;
};

stripe_event_result parse_with(od::parser& parser, const char* padded, size_t len, size_t cap) {
  od::document doc;
  if (auto e = parser.iterate(padded, len, cap).get(doc))
    return event_parse_error{map_error(e), ""};
  extractor x;
  if (!x.run(doc))
    return std::move(x.err);
  return std::move(x.ev);
}

} // namespace

std::string_view to_string(stripe_object_kind k) noexcept {
  switch (k) {
    case stripe_object_kind::payment_intent: return "payment_intent";
    case stripe_object_kind::charge: return "charge";
    case stripe_object_kind::dispute: return "dispute";
    case stripe_object_kind::checkout_session: return "checkout_session";
    case stripe_object_kind::other: return "other";
  }
  return "other";
}

std::string_view to_string(event_parse_errc c) noexcept {
  switch (c) {
    case event_parse_errc::empty_body: return "empty_body";
    case event_parse_errc::invalid_json: return "invalid_json";
    case event_parse_errc::not_an_object: return "not_an_object";
    case event_parse_errc::missing_field: return "missing_field";
    case event_parse_errc::wrong_type: return "wrong_type";
    case event_parse_errc::value_out_of_range: return "value_out_of_range";
    case event_parse_errc::empty_value: return "empty_value";
    case event_parse_errc::duplicate_field: return "duplicate_field";
    case event_parse_errc::too_deep: return "too_deep";
    case event_parse_errc::too_large: return "too_large";
    case event_parse_errc::out_of_memory: return "out_of_memory";
  }
  return "unknown";
}

std::string event_parse_error::message() const {
  std::string s{to_string(code)};
  if (!field.empty()) {
    s += " at ";
    s += field;
  }
  return s;
}

stripe_event_result parse_stripe_event(std::string_view body) noexcept {
  try {
    const size_t need = body.size() + simdjson::SIMDJSON_PADDING;
    if (body.size() > cached_limit) {
      simdjson::padded_string copy(body); // zero-filled padding
      if (copy.size() != body.size())
        return event_parse_error{event_parse_errc::out_of_memory, ""};
      od::parser parser;
      return parse_with(parser, copy.data(), copy.size(), need);
    }
    thread_local thread_scratch scratch;
    if (scratch.cap < need) {
      const size_t cap = std::max<size_t>(need, 4096 + simdjson::SIMDJSON_PADDING);
      scratch.buf = std::make_unique<char[]>(cap); // value-initialised: zeros
      scratch.cap = cap;
    }
    if (!body.empty())
      std::memcpy(scratch.buf.get(), body.data(), body.size());
    // simdjson may read the padding; keep it deterministic.
    std::memset(scratch.buf.get() + body.size(), 0, simdjson::SIMDJSON_PADDING);
    return parse_with(scratch.parser, scratch.buf.get(), body.size(), scratch.cap);
  } catch (...) { // std::bad_alloc from a std::string or buffer
    return event_parse_error{event_parse_errc::out_of_memory, ""};
  }
}

invoice_event to_invoice_event(const stripe_event& ev) {
  using k = stripe_object_kind;
  invoice_event out;
  out.kind = event_kind::informational;
  out.id = ev.id;
  out.created = ev.created;
  out.amount_cents = ev.amount;
  out.currency = ev.currency;
  out.intent = ev.intent;
  out.livemode = ev.livemode;
  out.metadata_invoice = ev.invoice_id;

  const std::string_view t = ev.type;
  const k kind = ev.object_kind;
  if (kind == k::payment_intent) {
    if (t == "payment_intent.succeeded") {
      out.kind = event_kind::payment_succeeded;
    } else if (t == "payment_intent.payment_failed") {
      out.kind = event_kind::payment_failed;
      out.failure_code = ev.failure_code;
      out.failure_message = ev.failure_message;
    } else if (t == "payment_intent.canceled") {
      out.kind = event_kind::payment_canceled;
    }
  } else if (kind == k::charge) {
    // Partial or full: the charge says its total refunded so far, which the
    // state machine compares with what the invoice has recorded.
    if (t == "charge.refunded" && ev.amount && ev.amount_refunded && *ev.amount_refunded > 0) {
      out.kind = event_kind::refunded;
      out.refunded_cents = std::min(*ev.amount_refunded, *ev.amount);
    }
  } else if (kind == k::dispute) {
    if (t == "charge.dispute.created")
      out.kind = event_kind::disputed;
    out.amount_cents.reset(); // a dispute may cover part of the payment
  } else if (kind == k::checkout_session) {
    out.session = session_id{ev.object_id};
    if (t == "checkout.session.completed") {
      if (ev.payment_status == "paid" || ev.payment_status == "no_payment_required")
        out.kind = event_kind::payment_succeeded;
    } else if (t == "checkout.session.async_payment_succeeded") {
      out.kind = event_kind::payment_succeeded;
    } else if (t == "checkout.session.async_payment_failed") {
      out.kind = event_kind::payment_failed;
    } else if (t == "checkout.session.expired") {
      out.kind = event_kind::payment_canceled;
    }
  }
  return out;
}

} // namespace billing
