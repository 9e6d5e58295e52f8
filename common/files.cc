#include "common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace lockshift {

Status writeFileAtomically(const std::string& dir, const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::ioError("cannot write " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::ioError("cannot write " + tmp + ": " + std::strerror(error));
    }
    off += static_cast<size_t>(n);
  }
  // The descriptor is closed whether or not the sync worked; a file that may not be on disk is
  // never renamed into place.
  int error = ::fsync(fd) == 0 ? 0 : errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    ::unlink(tmp.c_str());
    return Status::ioError("cannot sync " + tmp + ": " + std::strerror(error));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::ioError("cannot rename " + tmp + ": " + std::strerror(errno));
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::ok();
}

namespace {

void dropLineEnd(std::string& line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
}

}  // namespace

Result<std::string> readSecretFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::invalidArgument("cannot read " + path + ": " + std::strerror(errno));
  std::string secret;
  std::getline(in, secret);
  dropLineEnd(secret);
  if (secret.empty()) return Status::invalidArgument(path + " is empty");
  return secret;
}

Result<std::vector<std::string>> readSecretLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::invalidArgument("cannot read " + path + ": " + std::strerror(errno));
  std::vector<std::string> secrets;
  for (std::string line; std::getline(in, line);) {
    dropLineEnd(line);
    if (!line.empty()) secrets.push_back(std::move(line));
  }
  if (secrets.empty()) return Status::invalidArgument(path + " is empty");
  return secrets;
}

}  // namespace lockshift
