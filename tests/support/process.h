#pragma once
// Child processes for integration tests (redis-server, lockshift, redis-cli), with bounded waits.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace lockshift::testing {

class Process {
 public:
  Process() = default;
  // Starts argv[0] (searched in PATH) with stdout and stderr appended to log_path.
  static Process spawn(const std::vector<std::string>& argv, const std::string& log_path);
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();  // SIGKILL if still running

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `sig`; waits up to `timeout` for exit, then SIGKILLs. Returns the exit status
  // (exit code, or 128+signal), or -1 if it had already been reaped.
  int stop(int sig = 15, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void signal(int sig);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// Runs a command to completion (stdin from `input`), returning its exit code and stdout.
struct CommandResult {
  int exit_code;
  std::string out;
};
CommandResult runCommand(const std::vector<std::string>& argv, const std::string& input = "",
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// True once a TCP connect to 127.0.0.1:port succeeds, polling until `timeout`.
bool waitForPort(uint16_t port, std::chrono::milliseconds timeout);

// A fresh directory under the test temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& content);

}  // namespace lockshift::testing
