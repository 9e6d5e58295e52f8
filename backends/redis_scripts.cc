#include "backends/redis_scripts.h"

#include <boost/uuid/detail/sha1.hpp>
#include <cstdio>

namespace lockshift::redis {

std::string scriptSha1(std::string_view body) {
  boost::uuids::detail::sha1 sha;
  sha.process_bytes(body.data(), body.size());
  boost::uuids::detail::sha1::digest_type digest;
  sha.get_digest(digest);
  char hex[41];
  for (int i = 0; i < 5; ++i) std::snprintf(hex + 8 * i, 9, "%08x", digest[i]);
  return std::string(hex, 40);
}

const std::string& putScriptSha1() {
  static const std::string sha = scriptSha1(kPutScript);
  return sha;
}

}  // namespace lockshift::redis
