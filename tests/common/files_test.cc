#include "common/files.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace lockshift {
namespace {

namespace fs = std::filesystem;

class WriteFileAtomically : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lockshift-files-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  static size_t openDescriptors() {
    size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
  }

  fs::path dir_;
};

TEST_F(WriteFileAtomically, ReplacesTheFileWhole) {
  const fs::path path = dir_ / "state.json";
  ASSERT_TRUE(writeFileAtomically(dir_, path, "first\n").isOk());
  ASSERT_TRUE(writeFileAtomically(dir_, path, "second\n").isOk());
  EXPECT_EQ(read(path), "second\n");
  EXPECT_FALSE(fs::exists(dir_ / "state.json.tmp"));
}

// A write that fails half way (here: the file size limit, EFBIG) leaves the old file as it was,
// no temporary file and no open descriptor behind.
TEST_F(WriteFileAtomically, FailedWriteChangesNothingAndLeaksNothing) {
  const fs::path path = dir_ / "state.json";
  ASSERT_TRUE(writeFileAtomically(dir_, path, "kept\n").isOk());
  const size_t descriptors = openDescriptors();

  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 16;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  Status status = writeFileAtomically(dir_, path, std::string(4096, 'x'));
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("cannot write"), std::string::npos) << status.message();
  EXPECT_EQ(read(path), "kept\n");
  EXPECT_FALSE(fs::exists(dir_ / "state.json.tmp"));
  EXPECT_EQ(openDescriptors(), descriptors);
}

}  // namespace
}  // namespace lockshift
