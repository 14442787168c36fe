#pragma once
// Test support for the persistence actors: concurrent requesters on a real
// actor system.

#include "protocol/messages.hpp"

#include <caf/all.hpp>

#include <memory>
#include <string>
#include <vector>

namespace billing::test {

// Reports each answer to `report` as (invoice_id, int status) where status
// is the write_status, or -1 when the request itself failed; with
// `announce`, first reports the string "sent" once every request is out.
inline caf::behavior write_client(caf::event_based_actor* self, writer_actor writer,
                                  std::vector<write_command> cmds, caf::actor report,
                                  bool announce) {
  auto remaining = std::make_shared<size_t>(cmds.size());
  auto done = [self, remaining] {
    if (--*remaining == 0)
      self->quit();
  };
  for (auto& c : cmds) {
    auto id = c.change ? c.change->next.inv.id : invoice_id{};
    self->request(writer, std::chrono::seconds{60}, write_atom::value, std::move(c))
      .then(
        [self, report, id, done](write_status s) {
          self->send(report, id, static_cast<int>(s));
          done();
        },
        [self, report, id, done](caf::error&) {
          self->send(report, id, -1);
          done();
        });
  }
  if (announce)
    self->send(report, std::string{"sent"});
  if (cmds.empty())
    self->quit();
  return {[](stop_atom) {}};
}

// Spreads `cmds` over `clients` requesters that all send at once.
inline void spawn_clients(caf::actor_system& sys, const writer_actor& writer,
                          std::vector<write_command> cmds, size_t clients, caf::actor report,
                          bool announce = false) {
  std::vector<std::vector<write_command>> parts(clients);
  for (size_t i = 0; i < cmds.size(); ++i)
    parts[i % clients].push_back(std::move(cmds[i]));
  for (auto& p : parts)
    sys.spawn(write_client, writer, std::move(p), report, announce);
}

} // namespace billing::test
