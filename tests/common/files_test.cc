#include "common/files.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

using SecretFiles = WriteFileAtomically;  // the same scratch directory

TEST_F(SecretFiles, TheFirstLineIsTheSecret) {
  const std::string file = (dir_ / "secret").string();
  ASSERT_TRUE(writeFileAtomically(dir_.string(), file, "s3cret\r\nsecond\n").isOk());
  EXPECT_EQ(readSecretFile(file).value(), "s3cret");
  ASSERT_TRUE(writeFileAtomically(dir_.string(), file, "\n").isOk());
  EXPECT_EQ(readSecretFile(file).status().message(), file + " is empty");
  EXPECT_EQ(readSecretFile((dir_ / "absent").string()).status().message(),
            "cannot read " + (dir_ / "absent").string() + ": No such file or directory");
}

TEST_F(SecretFiles, EveryNonEmptyLineIsAccepted) {
  const std::string file = (dir_ / "secrets").string();
  ASSERT_TRUE(writeFileAtomically(dir_.string(), file, "old\r\n\nnew").isOk());
  EXPECT_EQ(readSecretLines(file).value(), (std::vector<std::string>{"old", "new"}));
  ASSERT_TRUE(writeFileAtomically(dir_.string(), file, "\r\n\n").isOk());
  EXPECT_EQ(readSecretLines(file).status().message(), file + " is empty");
  EXPECT_EQ(readSecretLines((dir_ / "absent").string()).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace lockshift
