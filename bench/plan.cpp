#include "bench/plan.hpp"

#include "protocol/invoice.hpp"
#include "protocol/stripe_signature.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

namespace billing::bench {

namespace {

constexpr char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr char plan_magic[] = "billing-bench-plan 1";

const char* outcome_name(simulated_outcome o) {
  switch (o) {
    case simulated_outcome::succeeded: return "succeeded";
    case simulated_outcome::failed: return "failed";
    case simulated_outcome::canceled: return "canceled";
  }
  return "succeeded";
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos)
      return out;
    start = tab + 1;
  }
}

bool parse_u64(const std::string& s, uint64_t& v) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
    return false;
  v = std::stoull(s);
  return true;
}

} // namespace

std::string event_id_for_pass(const std::string& base, uint64_t pass) {
  std::string id = base;
  if (id.size() < pass_tag_size)
    return id;
  for (size_t i = 0; i < pass_tag_size; ++i) {
    id[id.size() - 1 - i] = alphabet[pass % 62];
    pass /= 62;
  }
  return id;
}

std::optional<std::pair<std::string, uint64_t>> split_pass(const std::string& id) {
  if (id.size() <= pass_tag_size + 4)
    return std::nullopt;
  uint64_t pass = 0;
  for (size_t i = id.size() - pass_tag_size; i < id.size(); ++i) {
    const char* at = std::find(alphabet, alphabet + 62, id[i]);
    if (at == alphabet + 62)
      return std::nullopt;
    pass = pass * 62 + static_cast<uint64_t>(at - alphabet);
  }
  return std::pair{event_id_for_pass(id, 0), pass};
}

std::string simulated_intent_id(const std::string& invoice_id) {
  return "pi_sim_" + hmac_sha256_hex("billingd-simulated-provider", "intent:" + invoice_id).substr(0, 24);
}

plan make_plan(const plan_options& o) {
  std::mt19937_64 rng{o.seed};
  auto uniform = [&](uint64_t n) { return n == 0 ? 0 : rng() % n; };
  auto random_id = [&](std::string_view prefix, size_t n) {
    std::string id{prefix};
    for (size_t i = 0; i < n; ++i)
      id += alphabet[uniform(62)];
    return id;
  };

  plan p;
  p.run_id = o.run_id;
  p.invoices.reserve(o.invoices);
  for (uint64_t i = 0; i < o.invoices; ++i) {
    plan_invoice inv;
    inv.workflow_id = o.run_id + "-wf-" + std::to_string(i);
    inv.shipment_id = o.run_id + "-shp-" + std::to_string(i);
    inv.user_id = "bench-user-" + std::to_string(i % 997);
    inv.amount_cents = 500 + static_cast<int64_t>(uniform(99'500));
    inv.currency = uniform(5) == 0 ? "eur" : "usd";
    inv.id = derive_invoice_id(inv.workflow_id, inv.shipment_id).str();
    inv.intent = simulated_intent_id(inv.id);
    p.invoices.push_back(std::move(inv));
  }

  // Unique events: at least one per invoice when there are enough; the rest
  // spread at random, so history lengths vary around deliveries/invoices.
  auto dups = static_cast<uint64_t>(std::llround(static_cast<double>(o.deliveries) * o.dup_rate));
  uint64_t unique = o.deliveries - std::min(dups, o.deliveries);
  std::vector<uint32_t> lengths(o.invoices, 0);
  if (o.invoices > 0) {
    for (uint64_t i = 0; i < std::min<uint64_t>(unique, o.invoices); ++i)
      lengths[i] = 1;
    for (uint64_t e = o.invoices; e < unique; ++e)
      ++lengths[uniform(o.invoices)];
  }

  static const char* declines[] = {"insufficient_funds", "generic_decline", "card_velocity_exceeded",
                                   "do_not_honor", "expired_card"};
  std::vector<std::vector<uint32_t>> by_invoice(o.invoices);
  for (uint64_t i = 0; i < o.invoices; ++i) {
    if (lengths[i] == 0)
      continue;
    // The history: failed attempts, then how the payment ended.
    auto roll = uniform(100);
    auto last = roll < 70 ? simulated_outcome::succeeded
                : roll < 85 ? simulated_outcome::failed
                            : simulated_outcome::canceled;
    int64_t base = o.now - 7200 + static_cast<int64_t>(i % 3600);
    for (uint32_t j = 0; j < lengths[i]; ++j) {
      plan_event e;
      e.id = random_id("evt_", 19) + std::string(pass_tag_size, '0');
      e.invoice = static_cast<uint32_t>(i);
      e.outcome = j + 1 == lengths[i] ? last : simulated_outcome::failed;
      e.created = base + 30 * static_cast<int64_t>(j);
      if (e.outcome == simulated_outcome::failed)
        e.decline_code = declines[uniform(std::size(declines))];
      by_invoice[i].push_back(static_cast<uint32_t>(p.events.size()));
      p.events.push_back(std::move(e));
    }
  }

  // In order: every invoice's first event, then every second event, ...; a
  // re-delivery follows its original within about a hundred deliveries (so
  // both copies are often in flight at once). Shuffled: any order at all.
  std::vector<std::pair<double, uint32_t>> keyed;
  keyed.reserve(o.deliveries);
  uint32_t max_len = lengths.empty() ? 0 : *std::max_element(lengths.begin(), lengths.end());
  for (uint32_t j = 0; j < max_len; ++j)
    for (uint64_t i = 0; i < o.invoices; ++i)
      if (j < by_invoice[i].size())
        keyed.emplace_back(static_cast<double>(keyed.size()), by_invoice[i][j]);
  std::vector<double> position(p.events.size());
  for (auto& [key, ev] : keyed)
    position[ev] = key;
  for (uint64_t d = 0; d < dups && !p.events.empty(); ++d) {
    auto ev = static_cast<uint32_t>(uniform(p.events.size()));
    keyed.emplace_back(position[ev] + 0.5 + static_cast<double>(uniform(100)), ev);
  }
  if (o.shuffle)
    std::shuffle(keyed.begin(), keyed.end(), rng);
  else
    std::stable_sort(keyed.begin(), keyed.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
  p.deliveries.reserve(keyed.size());
  for (auto& [key, ev] : keyed)
    p.deliveries.push_back(ev);
  return p;
}

std::string build_body(const plan& p, const plan_event& e) {
  const auto& inv = p.invoices[e.invoice];
  intent_event_spec s;
  s.event_id = e.id;
  s.outcome = e.outcome;
  s.created = e.created;
  s.intent_id = inv.intent;
  s.amount_cents = inv.amount_cents;
  s.currency = inv.currency;
  s.invoice_id = inv.id;
  s.workflow_id = inv.workflow_id;
  s.shipment_id = inv.shipment_id;
  if (!e.decline_code.empty())
    s.decline_code = e.decline_code;
  return build_payment_intent_event(s);
}

namespace {

// Sentinels put into the template spec, and what replaces each.
enum field : int { f_event, f_intent_tail, f_amount, f_currency, f_invoice, f_workflow, f_shipment,
                   f_created, f_created_30, f_created_5, f_count };
constexpr int64_t sentinel_created = 1'999'999'999;
const std::string sentinels[f_count] = {
  "evt_SENTINELEVENTID", "SENTINELINTENT", "987654321", "SENTINELCUR", "SENTINELINVOICE",
  "SENTINELWORKFLOW", "SENTINELSHIPMENT", std::to_string(sentinel_created),
  std::to_string(sentinel_created - 30), std::to_string(sentinel_created - 5)};

} // namespace

std::string body_factory::fill(const templ& t, const plan_event& e) const {
  const auto& inv = p_.invoices[e.invoice];
  std::string out;
  out.reserve(4096);
  for (auto& pc : t.pieces) {
    out += pc.literal;
    switch (pc.field) {
      case f_event: out += e.id; break;
      case f_intent_tail: out.append(inv.intent, std::min<size_t>(3, inv.intent.size())); break;
      case f_amount: out += std::to_string(inv.amount_cents); break;
      case f_currency: out += inv.currency; break;
      case f_invoice: out += inv.id; break;
      case f_workflow: out += inv.workflow_id; break;
      case f_shipment: out += inv.shipment_id; break;
      case f_created: out += std::to_string(e.created); break;
      case f_created_30: out += std::to_string(e.created - 30); break;
      case f_created_5: out += std::to_string(e.created - 5); break;
      default: break;
    }
  }
  return out;
}

std::string body_factory::build(const plan_event& e) {
  auto key = std::string{outcome_name(e.outcome)} + "/" + e.decline_code;
  auto it = std::find_if(templates_.begin(), templates_.end(), [&](auto& kv) { return kv.first == key; });
  if (it == templates_.end()) {
    intent_event_spec s;
    s.event_id = sentinels[f_event];
    s.outcome = e.outcome;
    s.created = sentinel_created;
    s.intent_id = "pi_" + sentinels[f_intent_tail];
    s.amount_cents = 987654321;
    s.currency = sentinels[f_currency];
    s.invoice_id = sentinels[f_invoice];
    s.workflow_id = sentinels[f_workflow];
    s.shipment_id = sentinels[f_shipment];
    if (!e.decline_code.empty())
      s.decline_code = e.decline_code;
    auto text = build_payment_intent_event(s);
    templ t;
    std::string literal;
    for (size_t i = 0; i < text.size();) {
      int found = -1;
      for (int f = 0; f < f_count; ++f)
        if (text.compare(i, sentinels[f].size(), sentinels[f]) == 0) {
          found = f;
          break;
        }
      if (found < 0) {
        literal += text[i++];
        continue;
      }
      t.pieces.push_back(piece{std::move(literal), found});
      literal.clear();
      i += sentinels[found].size();
    }
    t.pieces.push_back(piece{std::move(literal), -1});
    templates_.emplace_back(key, std::move(t));
    it = templates_.end() - 1;
  }
  auto& t = it->second;
  auto n = t.uses++;
  if (!t.usable) {
    ++fallbacks_;
    return build_body(p_, e);
  }
  auto body = fill(t, e);
  if (n < 8 || n % 997 == 0) {
    auto reference = build_body(p_, e);
    if (reference != body) {
      t.usable = false;
      ++fallbacks_;
      return reference;
    }
  }
  return body;
}

// File format (tab-separated, one record per line):
//   billing-bench-plan 1
//   run_id <id>
//   invoices <n>     then n lines: workflow shipment user amount currency id intent
//   events <n>       then n lines: id invoice outcome created decline_code
//   deliveries <n>   then n lines: event index
bool write_plan(const plan& p, const std::string& path, std::string& error) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    error = "cannot write " + path;
    return false;
  }
  out << plan_magic << '\n' << "run_id\t" << p.run_id << '\n';
  out << "invoices\t" << p.invoices.size() << '\n';
  for (auto& i : p.invoices)
    out << i.workflow_id << '\t' << i.shipment_id << '\t' << i.user_id << '\t' << i.amount_cents << '\t'
        << i.currency << '\t' << i.id << '\t' << i.intent << '\n';
  out << "events\t" << p.events.size() << '\n';
  for (auto& e : p.events)
    out << e.id << '\t' << e.invoice << '\t' << outcome_name(e.outcome) << '\t' << e.created << '\t'
        << e.decline_code << '\n';
  out << "deliveries\t" << p.deliveries.size() << '\n';
  for (auto d : p.deliveries)
    out << d << '\n';
  out.flush();
  if (!out) {
    error = "cannot write " + path;
    return false;
  }
  return true;
}

std::optional<plan> read_plan(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path;
    return std::nullopt;
  }
  plan p;
  std::string line;
  size_t line_no = 0;
  auto bad = [&](const std::string& why) {
    error = path + ":" + std::to_string(line_no) + ": " + why;
    return std::nullopt;
  };
  auto next = [&]() -> bool {
    if (!std::getline(in, line))
      return false;
    ++line_no;
    return true;
  };
  auto section = [&](const char* name, uint64_t& n) {
    if (!next())
      return false;
    auto f = split_tabs(line);
    return f.size() == 2 && f[0] == name && parse_u64(f[1], n);
  };
  if (!next() || line != plan_magic)
    return bad("not a billing-bench plan (expected '" + std::string{plan_magic} + "')");
  if (!next() || !line.starts_with("run_id\t"))
    return bad("expected run_id");
  p.run_id = line.substr(7);
  uint64_t n = 0;
  if (!section("invoices", n))
    return bad("expected invoices <n>");
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t amount = 0;
    if (!next())
      return bad("truncated");
    auto f = split_tabs(line);
    if (f.size() != 7 || !parse_u64(f[3], amount))
      return bad("malformed invoice line");
    p.invoices.push_back(plan_invoice{f[0], f[1], f[2], static_cast<int64_t>(amount), f[4], f[5], f[6]});
  }
  if (!section("events", n))
    return bad("expected events <n>");
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t invoice = 0, created = 0;
    if (!next())
      return bad("truncated");
    auto f = split_tabs(line);
    if (f.size() != 5 || !parse_u64(f[1], invoice) || !parse_u64(f[3], created) || invoice >= p.invoices.size())
      return bad("malformed event line");
    auto outcome = parse_simulated_outcome(f[2]);
    if (!outcome || !split_pass(f[0]))
      return bad("malformed event line");
    p.events.push_back(plan_event{f[0], static_cast<uint32_t>(invoice), *outcome, static_cast<int64_t>(created), f[4]});
  }
  if (!section("deliveries", n))
    return bad("expected deliveries <n>");
  p.deliveries.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t ev = 0;
    if (!next() || !parse_u64(line, ev) || ev >= p.events.size())
      return bad("malformed delivery line");
    p.deliveries.push_back(static_cast<uint32_t>(ev));
  }
  return p;
}

} // namespace billing::bench
