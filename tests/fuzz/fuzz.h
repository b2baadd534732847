/* Shared by the libFuzzer targets of tests/fuzz/: a check that aborts (libFuzzer then saves
 * the input as a crash), and a way to hand bytes to APIs that take a file path. */
#ifndef HERD_FUZZ_H
#define HERD_FUZZ_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base.h"

/* An invariant the code under test promised; a broken one is a finding, so abort. */
#define FUZZ_CHECK(e, ...)                                                                         \
	do {                                                                                       \
		if (!(e)) {                                                                        \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #e);      \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Writes the bytes into an anonymous in-memory file and gives its /proc/self/fd path (the
 * file stays open, so mmap of the path works); close *fd when done. No disk, no leftovers. */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char path[64])
{
	int fd = memfd_create("herd-fuzz", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	size_t off = 0;
	while (off < size) {
		ssize_t w = write(fd, data + off, size - off);
		if (w <= 0)
			abort();
		off += (size_t)w;
	}
	snprintf(path, 64, "/proc/self/fd/%d", fd);
	return fd;
}

/* Quiet: the code under test logs errors it handled; that is noise at a million runs. */
static inline void fuzz_quiet(void)
{
	herd_log_set_level((enum herd_log_level)(HERD_LOG_ERROR + 1));
}

#endif
