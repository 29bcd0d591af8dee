/*
 * fs-faults: an LD_PRELOAD library that injects storage faults into one process, for the files
 * under one directory (FS_FAULTS_DIR), at the boundary between the program and the OS (libc).
 * Built at test time by test/support/fs-faults.ts, which also explains how tests use it.
 *
 * - Durability. Each successful fsync/fdatasync of a regular file there copies its content to
 *   "<file>.synced". Whatever was not synced exists only in the real file, so replacing every file
 *   by its ".synced" copy (and removing those never synced) leaves the files as an OS crash that
 *   lost every unsynced write would: the harshest outcome a crash is allowed to have.
 * - Disk full. While "<FS_FAULTS_DIR>/.enospc" exists, writes to files there (write, pwrite,
 *   writev, pwritev, and a truncate that would grow a file) fail with ENOSPC, as on a full disk.
 *
 * Only the libc entry points SQLite uses are covered (`nm -D better_sqlite3.node`: write,
 * pwrite64, fsync, ftruncate64; fdatasync, pwrite, writev and pwritev for other builds); writes
 * through a shared memory map (SQLite's -shm file) are not seen, and need not be.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static char faults_dir[PATH_MAX];
static size_t faults_dir_length;
static char enospc_switch[PATH_MAX + sizeof "/.enospc"];

__attribute__((constructor)) static void read_configuration(void) {
  const char *dir = getenv("FS_FAULTS_DIR");
  /* /proc/self/fd names files by their canonical path: compare with the directory's. */
  if (!dir || !*dir || !realpath(dir, faults_dir)) return;
  faults_dir_length = strlen(faults_dir);
  snprintf(enospc_switch, sizeof enospc_switch, "%s/.enospc", faults_dir);
}

/* The next definition of a libc function (the real one), looked up once. */
#define REAL(name)                                                                                 \
  static __typeof__(name) *real_##name;                                                            \
  if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* True when `fd` is a file under FS_FAULTS_DIR; its path is then in `path` (PATH_MAX bytes). */
static int watched(int fd, char *path) {
  if (!faults_dir_length) return 0;
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t length = readlink(link, path, PATH_MAX - 1);
  if (length <= (ssize_t)faults_dir_length) return 0;
  path[length] = '\0';
  return strncmp(path, faults_dir, faults_dir_length) == 0 && path[faults_dir_length] == '/';
}

static int disk_full(int fd) {
  char path[PATH_MAX];
  if (!faults_dir_length || access(enospc_switch, F_OK) != 0) return 0;
  return watched(fd, path);
}

/* A write to a full disk: nothing is written and errno says why, as the kernel would. */
#define REFUSE_WHEN_FULL(fd)                                                                       \
  if (disk_full(fd)) {                                                                             \
    errno = ENOSPC;                                                                                \
    return -1;                                                                                     \
  }

/* Copies the file's current content to "<path>.synced" (through a rename: never half a copy). */
static int snapshot(int fd, const char *path) {
  REAL(write);
  struct stat status;
  if (fstat(fd, &status) != 0) return -1;
  if (!S_ISREG(status.st_mode)) return 0;
  char target[PATH_MAX], temporary[PATH_MAX];
  if (snprintf(target, sizeof target, "%s.synced", path) >= (int)sizeof target) return -1;
  if (snprintf(temporary, sizeof temporary, "%s.synced.tmp", path) >= (int)sizeof temporary) return -1;
  int copy = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (copy < 0) return -1;
  char buffer[1 << 14];
  off_t offset = 0;
  ssize_t count;
  int failed = 0;
  while (!failed && (count = pread(fd, buffer, sizeof buffer, offset)) > 0) {
    for (ssize_t done = 0; done < count;) {
      ssize_t written = real_write(copy, buffer + done, (size_t)(count - done));
      if (written <= 0) {
        failed = 1;
        break;
      }
      done += written;
    }
    offset += count;
  }
  if (count < 0) failed = 1;
  if (close(copy) != 0) failed = 1;
  if (!failed && rename(temporary, target) != 0) failed = 1;
  if (failed) unlink(temporary);
  return failed ? -1 : 0;
}

/* After a successful sync the snapshot must match, or the test would see losses that are not. */
static int after_sync(int fd, int result) {
  char path[PATH_MAX];
  if (result != 0 || !watched(fd, path)) return result;
  int saved = errno;
  if (snapshot(fd, path) != 0) {
    errno = EIO;
    return -1;
  }
  errno = saved;
  return 0;
}

int fsync(int fd) {
  REAL(fsync);
  return after_sync(fd, real_fsync(fd));
}

int fdatasync(int fd) {
  REAL(fdatasync);
  return after_sync(fd, real_fdatasync(fd));
}

ssize_t write(int fd, const void *buffer, size_t count) {
  REAL(write);
  REFUSE_WHEN_FULL(fd);
  return real_write(fd, buffer, count);
}

ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) {
  REAL(pwrite);
  REFUSE_WHEN_FULL(fd);
  return real_pwrite(fd, buffer, count, offset);
}

ssize_t pwrite64(int fd, const void *buffer, size_t count, off64_t offset) {
  REAL(pwrite64);
  REFUSE_WHEN_FULL(fd);
  return real_pwrite64(fd, buffer, count, offset);
}

ssize_t writev(int fd, const struct iovec *vectors, int count) {
  REAL(writev);
  REFUSE_WHEN_FULL(fd);
  return real_writev(fd, vectors, count);
}

ssize_t pwritev(int fd, const struct iovec *vectors, int count, off_t offset) {
  REAL(pwritev);
  REFUSE_WHEN_FULL(fd);
  return real_pwritev(fd, vectors, count, offset);
}

/* Shrinking frees space even on a full disk; only growing is refused. */
static int grows(int fd, off64_t length) {
  struct stat status;
  return fstat(fd, &status) == 0 && length > status.st_size;
}

int ftruncate(int fd, off_t length) {
  REAL(ftruncate);
  if (grows(fd, length)) REFUSE_WHEN_FULL(fd);
  return real_ftruncate(fd, length);
}

int ftruncate64(int fd, off64_t length) {
  REAL(ftruncate64);
  if (grows(fd, length)) REFUSE_WHEN_FULL(fd);
  return real_ftruncate64(fd, length);
}
