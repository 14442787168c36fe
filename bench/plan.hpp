#pragma once
// A billing-bench plan: the invoices a run sets up, the Stripe events of
// each invoice's payment history (in creation order), and the order in
// which deliveries (events plus duplicate re-deliveries) are sent. Pure data
// plus a text file format (--plan-out / --plan-in), so a second run can
// replay exactly the same traffic (same event ids, same histories).
//
// Event ids are "evt_" + 19 random alphanumerics + a 5-character pass tag
// ("00000" in pass 0). With --duration the deliveries are repeated; pass p
// uses the same events with the tag replaced by p in base 62, so every pass
// has fresh, unique ids of the same length (the body is patched in place).

#include "protocol/stripe_event_builder.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace billing::bench {

struct plan_invoice {
  std::string workflow_id;
  std::string shipment_id;
  std::string user_id;
  int64_t amount_cents = 0;
  std::string currency;
  std::string id;     // invoice id: derive_invoice_id, confirmed by setup
  std::string intent; // provider intent id: the simulated provider's, confirmed by setup
};

struct plan_event {
  std::string id; // pass-0 id (tag "00000")
  uint32_t invoice = 0;
  simulated_outcome outcome = simulated_outcome::succeeded;
  int64_t created = 0;
  std::string decline_code; // failures only
};

struct plan {
  std::string run_id;
  std::vector<plan_invoice> invoices;
  std::vector<plan_event> events;   // grouped by invoice, each history in creation order
  std::vector<uint32_t> deliveries; // event index per delivery, in send order
};

struct plan_options {
  std::string run_id;
  uint64_t invoices = 0;
  uint64_t deliveries = 0; // events sent in one pass, duplicates included
  double dup_rate = 0.1;
  bool shuffle = true;
  uint64_t seed = 0;
  int64_t now = 0; // unix seconds; event `created` values lie in the last two hours
};

plan make_plan(const plan_options& o);

// Text format, one record per line; see plan.cpp.
bool write_plan(const plan& p, const std::string& path, std::string& error);
std::optional<plan> read_plan(const std::string& path, std::string& error);

constexpr size_t pass_tag_size = 5;
// The id of event `base` (a pass-0 id) in pass `pass`.
std::string event_id_for_pass(const std::string& base, uint64_t pass);
// The pass a tagged id belongs to and its pass-0 id; nullopt if malformed.
std::optional<std::pair<std::string, uint64_t>> split_pass(const std::string& id);

// The intent id billingd's simulated provider gives invoice `invoice_id`
// (mirrors net/simulated_provider.cpp; setup checks it against the answers).
std::string simulated_intent_id(const std::string& invoice_id);

// The Stripe event body of plan event `e` (2-5 KB, protocol's builder).
std::string build_body(const plan& p, const plan_event& e);

// Builds the same bodies as build_body() about a hundred times faster: the
// builder renders one template per (outcome, decline code) with sentinel
// values, which is then filled by concatenation. Every template is checked
// against build_body() on its first uses and every 997th; a template that
// ever differs is dropped for the builder itself. Not thread-safe.
class body_factory {
public:
  explicit body_factory(const plan& p) : p_(p) {}
  std::string build(const plan_event& e);
  uint64_t fallbacks() const noexcept { return fallbacks_; }

private:
  struct piece {
    std::string literal;
    int field = -1; // -1: literal only
  };
  struct templ {
    std::vector<piece> pieces;
    bool usable = true;
    uint64_t uses = 0;
  };
  std::string fill(const templ& t, const plan_event& e) const;

  const plan& p_;
  std::vector<std::pair<std::string, templ>> templates_;
  uint64_t fallbacks_ = 0;
};

} // namespace billing::bench
