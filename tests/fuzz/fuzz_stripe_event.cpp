// libFuzzer target for protocol/stripe_event. Besides "never crash, never
// read out of bounds" (ASan/UBSan), it checks invariants of a successful
// parse and, when nlohmann/json also accepts the input, that the two agree on
// every field billingd extracts (nlohmann is the reference: a full parser).
#include "protocol/stripe_event.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace {

[[noreturn]] void fail_check(const char* what) {
  (void)what; // visible in the debugger / crash report via the stack
  __builtin_trap();
}

#define FUZZ_CHECK(cond)        \
  do {                          \
    if (!(cond))                \
      fail_check(#cond);        \
  } while (0)

using json = nlohmann::json;

std::string str_or_empty(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

std::optional<int64_t> count_or_none(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    return std::nullopt;
  return it->get<int64_t>();
}

void compare_with_reference(const billing::stripe_event& ev, std::string_view body) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return; // on-demand skips some values unvalidated; nothing to compare
  FUZZ_CHECK(j.is_object());
  FUZZ_CHECK(j.at("id").get<std::string>() == ev.id.str());
  FUZZ_CHECK(j.at("type").get<std::string>() == ev.type);
  FUZZ_CHECK(j.at("created").get<int64_t>() == ev.created);
  const json& obj = j.at("data").at("object");
  FUZZ_CHECK(obj.at("id").get<std::string>() == ev.object_id);
  FUZZ_CHECK(str_or_empty(obj, "status") == ev.status);
  FUZZ_CHECK(str_or_empty(obj, "currency") == ev.currency);
  const std::string kind = str_or_empty(obj, "object");
  if (kind == "checkout.session") {
    FUZZ_CHECK(ev.object_kind == billing::stripe_object_kind::checkout_session);
    FUZZ_CHECK(count_or_none(obj, "amount_total") == ev.amount);
    FUZZ_CHECK(str_or_empty(obj, "payment_status") == ev.payment_status);
  } else {
    FUZZ_CHECK(count_or_none(obj, "amount") == ev.amount);
  }
  if (kind == "payment_intent") {
    FUZZ_CHECK(ev.intent.str() == ev.object_id);
  } else {
    FUZZ_CHECK(str_or_empty(obj, "payment_intent") == ev.intent.str());
  }
  if (kind == "charge")
    FUZZ_CHECK(count_or_none(obj, "amount_refunded") == ev.amount_refunded);
  auto meta = obj.find("metadata");
  if (meta != obj.end() && meta->is_object()) {
    FUZZ_CHECK(str_or_empty(*meta, "invoice_id") == ev.invoice_id);
    FUZZ_CHECK(str_or_empty(*meta, "workflow_id") == ev.workflow_id);
    FUZZ_CHECK(str_or_empty(*meta, "shipment_id") == ev.shipment_id);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy, so ASan flags any read past the body.
  std::unique_ptr<char[]> copy(new char[size == 0 ? 1 : size]);
  if (size != 0)
    std::memcpy(copy.get(), data, size);
  const std::string_view body(copy.get(), size);

  const billing::stripe_event_result r = billing::parse_stripe_event(body);
  // Same answer the second time (the thread's cached parser is reused).
  FUZZ_CHECK(billing::parse_stripe_event(body) == r);

  if (const auto* err = std::get_if<billing::event_parse_error>(&r)) {
    FUZZ_CHECK(!err->message().empty());
    return 0;
  }
  const auto& ev = std::get<billing::stripe_event>(r);
  FUZZ_CHECK(!ev.id.empty());
  FUZZ_CHECK(!ev.object_id.empty());
  FUZZ_CHECK(ev.created >= 0);
  FUZZ_CHECK(!ev.amount || *ev.amount >= 0);
  FUZZ_CHECK(!ev.amount_refunded || *ev.amount_refunded >= 0);
  const billing::invoice_event ie = billing::to_invoice_event(ev);
  FUZZ_CHECK(ie.id == ev.id);
  compare_with_reference(ev, body);
  return 0;
}
