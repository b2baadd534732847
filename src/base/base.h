/* base — what every part of herd shares: one error space, one log, one assert.
 *
 * Errors: a function that can fail returns enum herd_err (0 = ok). Where the caller
 * needs to know *what* was wrong, the failing function also records a message with
 * herd_fail(); herd_last_error() reads it back on the same thread. */
#ifndef HERD_BASE_H
#define HERD_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum herd_err {
	HERD_OK = 0,
	HERD_ERR_NOMEM,       /* allocation failed */
	HERD_ERR_IO,          /* a file or socket operation failed */
	HERD_ERR_BAD_INPUT,   /* a request, parameter or argument is invalid */
	HERD_ERR_FORMAT,      /* a file (GGUF, …) is malformed or corrupt */
	HERD_ERR_UNSUPPORTED, /* well-formed but not something herd can do */
	HERD_ERR_NOT_FOUND,   /* a named thing (model, key, job, tensor) does not exist */
	HERD_ERR_LIMIT,       /* a size or count limit (limits.h) was exceeded */
	HERD_ERR_NET,         /* a peer could not be reached or answered badly */
	HERD_ERR_TIMEOUT,     /* a deadline passed */
	HERD_ERR_CANCELLED,   /* the work was cancelled */
	HERD_ERR_INTERNAL,    /* anything else */
	HERD_ERR_COUNT_
};

/* Short fixed name of an error code ("bad input"); never NULL. */
const char *herd_strerror(enum herd_err err);

/* Stable machine-readable code for the JSON error envelope ("BAD_INPUT"). */
const char *herd_errcode(enum herd_err err);

/* Records a message for the calling thread and returns err, so that a failing
 * function can say `return herd_fail(HERD_ERR_BAD_INPUT, "x: must be > 0, got %d", x);` */
enum herd_err herd_fail(enum herd_err err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The message of the last herd_fail() on this thread ("" when none). The pointer
 * stays valid until the next herd_fail() on this thread. */
const char *herd_last_error(void);

enum herd_log_level { HERD_LOG_DEBUG, HERD_LOG_INFO, HERD_LOG_WARN, HERD_LOG_ERROR };

/* Messages below the level are dropped. Default INFO, or $HERD_LOG (debug|info|warn|error). */
void herd_log_set_level(enum herd_log_level level);
void herd_log_at(enum herd_log_level level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define herd_log(level, ...) herd_log_at(HERD_LOG_##level, __func__, __VA_ARGS__)

/* Broken invariants (bugs, never bad input) stop the process, in every build. */
_Noreturn void herd_assert_fail(const char *expr, const char *file, int line, const char *func);
#define HERD_ASSERT(e) ((e) ? (void)0 : herd_assert_fail(#e, __FILE__, __LINE__, __func__))

/* Monotonic time in milliseconds / nanoseconds, for durations. */
double herd_now_ms(void);
uint64_t herd_now_ns(void);

/* Allocation that never returns NULL for a non-zero size (aborts when memory is
 * exhausted: herd cannot make progress then). */
void *herd_xmalloc(size_t n);
void *herd_xcalloc(size_t n, size_t size);
void *herd_xrealloc(void *p, size_t n);
char *herd_xstrdup(const char *s);

/* A growable byte buffer. Start from {0}; once anything (even 0 bytes) was added, p holds len
 * bytes and a NUL after them. The owner frees p. */
struct herd_buf {
	char *p;
	size_t len, cap;
};
void herd_buf_add(struct herd_buf *b, const void *data, size_t n);
void herd_buf_puts(struct herd_buf *b, const char *s); /* adds strlen(s) bytes */

#endif
