#pragma once
// An in-memory stand-in for persistence/ with the same contract as the
// PostgreSQL store (compare-and-set, unique event ids, outbox rows only for
// committed transitions), so actor tests run without a database. A switch
// makes it "unavailable".

#include "protocol/messages.hpp"

#include <caf/all.hpp>

#include <map>
#include <mutex>

namespace billing::test {

struct fake_db {
  std::mutex mtx;
  std::map<std::string, stored_invoice> invoices;
  std::map<std::string, webhook_record> events;
  std::vector<outbox_record> outbox;
  bool down = false;
  size_t writes = 0;

  write_status write(const write_command& cmd) {
    std::lock_guard lock{mtx};
    ++writes;
    if (down)
      return write_status::unavailable;
    if (cmd.event && events.count(cmd.event->id.str()))
      return write_status::duplicate_event;
    if (cmd.change) {
      auto& next = cmd.change->next;
      auto it = invoices.find(next.inv.id.str());
      if (cmd.change->expected_version == 0) {
        if (it != invoices.end())
          return write_status::version_conflict;
      } else if (it == invoices.end() || it->second.inv.version != cmd.change->expected_version) {
        return write_status::version_conflict;
      }
      invoices[next.inv.id.str()] = next;
    }
    if (cmd.event)
      events[cmd.event->id.str()] = *cmd.event;
    if (cmd.signal)
      outbox.push_back(*cmd.signal);
    return write_status::committed;
  }
};

inline writer_actor::behavior_type fake_writer(std::shared_ptr<fake_db> db) {
  return {[db](write_atom, const write_command& cmd) { return db->write(cmd); }};
}

// Holds writes: while `hold` is set, a write is neither applied nor
// answered, so its invoice actor stays in the middle of a request. Records
// who asked (the invoice actor), so a test can kill it there.
struct write_gate {
  std::mutex mtx;
  bool hold = false;
  std::vector<caf::strong_actor_ptr> requesters; // of the held writes, in order
};

struct holding_writer_state {
  std::vector<caf::typed_response_promise<write_status>> held; // answered only on stop_atom
};

// A writer that holds writes while the gate says so; stop_atom answers the
// held ones `unavailable`, as the real writer does at its statement timeout.
using holding_writer_actor = writer_actor::extend<caf::reacts_to<stop_atom>>;

inline holding_writer_actor::behavior_type
holding_writer(holding_writer_actor::stateful_pointer<holding_writer_state> self, std::shared_ptr<fake_db> db,
               std::shared_ptr<write_gate> gate) {
  return {[self](stop_atom) {
            for (auto& rp : self->state.held)
              rp.deliver(write_status::unavailable);
            self->state.held.clear();
          },
          [self, db, gate](write_atom, const write_command& cmd) -> caf::result<write_status> {
    {
      std::lock_guard lock{gate->mtx};
      if (gate->hold) {
        gate->requesters.push_back(self->current_sender());
        auto rp = self->make_response_promise<write_status>();
        self->state.held.push_back(rp);
        return rp;
      }
    }
    return db->write(cmd);
  }};
}

inline reader_actor::behavior_type fake_reader(std::shared_ptr<fake_db> db) {
  return {
    [db](load_atom, const invoice_id& id) -> load_result {
      std::lock_guard lock{db->mtx};
      if (db->down)
        return fail(billing_errc::unavailable, "down");
      auto it = db->invoices.find(id.str());
      if (it == db->invoices.end())
        return std::optional<stored_invoice>{};
      return std::optional<stored_invoice>{it->second};
    },
    [db](find_atom, const intent_id& intent) -> find_result {
      std::lock_guard lock{db->mtx};
      for (auto& [id, s] : db->invoices)
        if (s.inv.provider_intent_id == intent)
          return std::optional<invoice_id>{s.inv.id};
      return std::optional<invoice_id>{};
    },
    [db](list_atom, const invoice_filter&) -> list_result { return std::vector<invoice>{}; },
    [db](due_atom, unix_seconds now, int32_t limit) -> due_result {
      std::lock_guard lock{db->mtx};
      std::vector<invoice_id> due;
      for (auto& [id, s] : db->invoices)
        if ((s.inv.status == invoice_status::pending || s.inv.status == invoice_status::failed)
            && s.inv.expires_at <= now && due.size() < static_cast<size_t>(limit))
          due.push_back(s.inv.id);
      return due;
    },
  };
}

} // namespace billing::test
