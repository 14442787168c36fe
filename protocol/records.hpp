#pragma once
// What the invoice actors ask the persistence actors to read and write.
// Plain data, shared by actors/ (the callers) and persistence/ (the store).

#include "protocol/errors.hpp"
#include "protocol/ids.hpp"
#include "protocol/invoice.hpp"
#include "protocol/state_machine.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace billing {

// An invoice as stored: the model plus its client secret, sealed
// (secret_box) so the database never holds it in the clear.
struct stored_invoice {
  invoice inv;
  std::string sealed_client_secret; // empty until the provider answered
  friend bool operator==(const stored_invoice&, const stored_invoice&) = default;
};

// One row of webhook_events: the event id is unique, so a re-delivery is
// recognised by the database even across restarts and replicas.
struct webhook_record {
  event_id id;
  std::string type;
  invoice_id invoice; // empty when no invoice matched
  outcome result = outcome::applied;
  unix_seconds received_at = 0;
};

// One row of outbox: a signal the workflow bridge must deliver.
struct outbox_record {
  invoice_id invoice;
  std::string signal;  // canonical name, e.g. "PaymentConfirmed"
  std::string payload; // JSON, see json_codec: signal_payload()
  unix_seconds created_at = 0;
};

// A new state for one invoice, written only if the row still has
// `expected_version` (compare-and-set); expected_version == 0 inserts.
struct invoice_change {
  stored_invoice next; // next.inv.version == expected_version + 1
  int64_t expected_version = 0;
};

// Everything one transition writes, in one transaction with its batch.
struct write_command {
  std::optional<invoice_change> change;
  std::optional<webhook_record> event;
  std::optional<outbox_record> signal;
};

enum class write_status : uint8_t {
  committed,
  duplicate_event,  // the event id was already recorded: nothing written
  version_conflict, // someone else moved the invoice (or inserted it) first: nothing written
  unavailable,      // database unreachable: nothing written, retry later
  overloaded,       // too many commands waiting for a commit
};

std::string_view to_string(write_status s) noexcept;

struct invoice_filter {
  std::string shipment_id;
  std::string workflow_id;
  int32_t limit = 100;
};

using load_result = result<std::optional<stored_invoice>>;
using find_result = result<std::optional<invoice_id>>;
using list_result = result<std::vector<invoice>>;
using due_result = result<std::vector<invoice_id>>;

} // namespace billing
