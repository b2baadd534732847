/* base — errors, logging, assertions, clocks and checked allocation. */
#define _GNU_SOURCE
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const struct {
	const char *text, *code;
} errs[HERD_ERR_COUNT_] = {
	[HERD_OK] = {"ok", "OK"},
	[HERD_ERR_NOMEM] = {"out of memory", "NO_MEMORY"},
	[HERD_ERR_IO] = {"input/output error", "IO_ERROR"},
	[HERD_ERR_BAD_INPUT] = {"bad input", "BAD_INPUT"},
	[HERD_ERR_FORMAT] = {"malformed file", "BAD_FORMAT"},
	[HERD_ERR_UNSUPPORTED] = {"unsupported", "UNSUPPORTED"},
	[HERD_ERR_NOT_FOUND] = {"not found", "NOT_FOUND"},
	[HERD_ERR_LIMIT] = {"limit exceeded", "LIMIT_EXCEEDED"},
	[HERD_ERR_NET] = {"network error", "NETWORK_ERROR"},
	[HERD_ERR_TIMEOUT] = {"timed out", "TIMEOUT"},
	[HERD_ERR_CANCELLED] = {"cancelled", "CANCELLED"},
	[HERD_ERR_INTERNAL] = {"internal error", "INTERNAL_ERROR"},
};

const char *herd_strerror(enum herd_err err)
{
	if ((unsigned)err >= HERD_ERR_COUNT_)
		return "unknown error";
	return errs[err].text;
}

const char *herd_errcode(enum herd_err err)
{
	if ((unsigned)err >= HERD_ERR_COUNT_)
		return "INTERNAL_ERROR";
	return errs[err].code;
}

static _Thread_local char last_error[16384]; /* a failed job names every attempt */

enum herd_err herd_fail(enum herd_err err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	va_end(ap);
	return err;
}

const char *herd_last_error(void)
{
	return last_error;
}

static int log_level = -1;

void herd_log_set_level(enum herd_log_level level)
{
	log_level = (int)level;
}

static int current_level(void)
{
	if (log_level < 0) {
		const char *e = getenv("HERD_LOG");
		log_level = HERD_LOG_INFO;
		if (e && !strcasecmp(e, "debug"))
			log_level = HERD_LOG_DEBUG;
		else if (e && !strcasecmp(e, "warn"))
			log_level = HERD_LOG_WARN;
		else if (e && !strcasecmp(e, "error"))
			log_level = HERD_LOG_ERROR;
	}
	return log_level;
}

void herd_log_at(enum herd_log_level level, const char *func, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	if ((int)level < current_level())
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	/* one fprintf per line so that lines of concurrent threads do not interleave */
	fprintf(stderr, "%02d:%02d:%02d.%03ld %-5s %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
		ts.tv_nsec / 1000000, names[level], func, msg);
}

_Noreturn void herd_assert_fail(const char *expr, const char *file, int line, const char *func)
{
	fprintf(stderr, "herd: assertion failed: %s (%s:%d, %s)\n", expr, file, line, func);
	abort();
}

uint64_t herd_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double herd_now_ms(void)
{
	return (double)herd_now_ns() / 1e6;
}

static void *oom(size_t n)
{
	fprintf(stderr, "herd: out of memory allocating %zu bytes\n", n);
	abort();
}

void *herd_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	return p ? p : oom(n);
}

void *herd_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	return p ? p : oom(n * size);
}

void *herd_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	return q ? q : oom(n);
}

char *herd_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(herd_xmalloc(n), s, n);
}

void herd_buf_add(struct herd_buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2 + 64; /* doubling: appends cost O(1) amortized */
		b->p = herd_xrealloc(b->p, b->cap);
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void herd_buf_puts(struct herd_buf *b, const char *s)
{
	herd_buf_add(b, s, strlen(s));
}
