#include "backends/redis_fences.h"

#include <algorithm>
#include <boost/algorithm/string/predicate.hpp>
#include <charconv>
#include <iostream>
#include <string_view>

namespace lockshift::redis {

namespace {

// The value of `name=` in a CLIENT INFO line ("id=7 addr=127.0.0.1:50001 laddr=... fd=8 ...");
// empty when absent.
std::string_view field(std::string_view line, std::string_view name) {
  for (size_t at = 0; at < line.size();) {
    const size_t end = std::min(line.find_first_of(" \r\n", at), line.size());
    std::string_view token = line.substr(at, end - at);
    if (token.size() > name.size() && token.substr(0, name.size()) == name && token[name.size()] == '=') {
      return token.substr(name.size() + 1);
    }
    at = end + 1;
  }
  return {};
}

}  // namespace

ClientIdentity parseClientInfo(const resp::Value& reply) {
  if (reply.type != resp::Type::kBulkString && reply.type != resp::Type::kSimpleString) return {};
  const std::string_view id_text = field(reply.str, "id");
  const std::string_view addr = field(reply.str, "addr");
  uint64_t id = 0;
  auto [end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
  if (ec != std::errc() || end != id_text.data() + id_text.size() || addr.empty()) return {};
  return {id, std::string(addr)};
}

std::vector<Fences::Fence> Fences::since(uint64_t* seen) const {
  std::lock_guard lock(mu_);
  std::vector<Fence> newer;
  for (const Fence& fence : fences_) {
    if (fence.seq > *seen) newer.push_back(fence);
  }
  *seen = next_seq_ - 1;
  return newer;
}

void Fences::add(ClientIdentity client) {
  if (client.id == 0) return;
  std::lock_guard lock(mu_);
  if (!enabled_) return;
  addLocked(std::move(client));
  latest_.store(next_seq_ - 1, std::memory_order_release);
}

void Fences::absorb(const Fences& other) {
  if (&other == this) return;
  std::vector<Fence> open;
  {
    std::lock_guard lock(other.mu_);  // one list's lock at a time: no order between two lists
    open = other.fences_;
  }
  std::lock_guard lock(mu_);
  if (!enabled_) return;
  for (Fence& fence : open) {
    const bool known = std::any_of(fences_.begin(), fences_.end(), [&fence](const Fence& mine) {
      return mine.client.id == fence.client.id && mine.client.addr == fence.client.addr;
    });
    if (!known) addLocked(std::move(fence.client));
  }
  latest_.store(next_seq_ - 1, std::memory_order_release);
}

void Fences::addLocked(ClientIdentity client) {
  if (fences_.size() >= kMaxFences) fences_.erase(fences_.begin());
  fences_.push_back({next_seq_++, next_serial_++, std::move(client)});
}

void Fences::done(uint64_t serial) {
  std::lock_guard lock(mu_);
  std::erase_if(fences_, [serial](const Fence& fence) { return fence.serial == serial; });
}

void Fences::again(uint64_t serial) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(fences_.begin(), fences_.end(), [serial](const Fence& f) { return f.serial == serial; });
  if (it == fences_.end()) return;  // confirmed by another connection meanwhile
  Fence fence = std::move(*it);
  fences_.erase(it);
  fence.seq = next_seq_++;
  fences_.push_back(std::move(fence));
  latest_.store(next_seq_ - 1, std::memory_order_release);
}

void Fences::unavailable(const std::string& why) {
  {
    std::lock_guard lock(mu_);
    if (!enabled_) return;
    enabled_ = false;
    why_ = why;
    fences_.clear();
  }
  std::cerr << "lockshift: " << where_ << ": " << why
            << "; a command that timed out cannot be fenced off, and may still run after later ones\n";
}

bool Fences::enabled() const {
  std::lock_guard lock(mu_);
  return enabled_;
}

std::string Fences::whyUnavailable() const {
  std::lock_guard lock(mu_);
  return why_;
}

size_t Fences::size() const {
  std::lock_guard lock(mu_);
  return fences_.size();
}

std::string fencingWarning(const Fences& fences) {
  std::string why = fences.whyUnavailable();
  if (why.empty()) return why;
  return "commands left unanswered are not fenced off (" + why + "): one may still run after later ones";
}

bool Fences::refusedForGood(const std::string& error) {
  // NOPERM: the ACL user may not run it. Unknown command or subcommand, or a syntax error: a
  // server too old for the filter, or the command renamed away. Anything else (BUSY, LOADING)
  // may pass, and the kill is tried again.
  return error.rfind("NOPERM", 0) == 0 || boost::algorithm::icontains(error, "unknown") ||
         boost::algorithm::icontains(error, "syntax");
}

}  // namespace lockshift::redis
