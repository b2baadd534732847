/* sse — Server-Sent Events: the server-side stream (producer writes from any thread, the
 * connection thread blocks in the MHD reader on a condition variable) and the incremental
 * parser used by the clients.
 *
 * The one thing to know: the stream lives until both the producer (herd_sse_close) and the
 * MHD response (free callback) have let go; whichever is last frees it. */
#define _GNU_SOURCE
#include "net_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "limits.h"

struct herd_sse *herd_sse_new_(unsigned heartbeat_ms, herd_sse_gone_fn on_gone, void *userdata)
{
	struct herd_sse *s = herd_xcalloc(1, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	s->refs = 2;
	s->heartbeat_ms = heartbeat_ms ? heartbeat_ms : HERD_SSE_HEARTBEAT_MS;
	s->on_gone = on_gone;
	s->userdata = userdata;
	return s;
}

static void sse_destroy(struct herd_sse *s)
{
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->buf);
	free(s);
}

/* Drops one reference; s->mu is held on entry and released here. */
static void unref_unlock(struct herd_sse *s)
{
	HERD_ASSERT(s->refs > 0);
	int left = --s->refs;
	pthread_mutex_unlock(&s->mu);
	if (left == 0)
		sse_destroy(s);
}

static void append(struct herd_sse *s, const char *p, size_t n)
{
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->len + n)
			cap *= 2;
		s->buf = herd_xrealloc(s->buf, cap);
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

enum herd_err herd_sse_send(struct herd_sse *s, const char *event, const char *data)
{
	HERD_ASSERT(s);
	if (!data)
		data = "";
	if (event && (strpbrk(event, "\r\n") || !*event))
		return herd_fail(HERD_ERR_BAD_INPUT, "sse event name: must be one non-empty line");
	pthread_mutex_lock(&s->mu);
	enum herd_err err = HERD_OK;
	if (s->closed) {
		err = herd_fail(HERD_ERR_BAD_INPUT, "sse: send after herd_sse_close");
		goto out;
	}
	if (s->gone || s->stopping) {
		err = herd_fail(HERD_ERR_CANCELLED, "sse: the client has gone");
		goto out;
	}
	if (s->len - s->off + strlen(data) > HERD_SSE_MAX_QUEUED_BYTES) {
		err = herd_fail(HERD_ERR_LIMIT, "sse: over %u bytes queued for a slow client",
				HERD_SSE_MAX_QUEUED_BYTES);
		goto out;
	}
	if (event) {
		append(s, "event: ", 7);
		append(s, event, strlen(event));
		append(s, "\n", 1);
	}
	/* One data: line per line; CR, LF and CRLF all end a line for the reader, so all
	 * three are split here (data can never inject a field or end the event). */
	const char *p = data;
	for (;;) {
		size_t n = strcspn(p, "\r\n");
		append(s, "data: ", 6);
		append(s, p, n);
		append(s, "\n", 1);
		p += n;
		if (!*p)
			break;
		p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
	}
	append(s, "\n", 1);
	pthread_cond_broadcast(&s->cv);
out:
	pthread_mutex_unlock(&s->mu);
	return err;
}

enum herd_err herd_sse_send_json(struct herd_sse *s, const char *event, const json_t *data)
{
	char *text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		return herd_fail(HERD_ERR_BAD_INPUT, "sse: data cannot be encoded as JSON");
	enum herd_err err = herd_sse_send(s, event, text);
	free(text);
	return err;
}

bool herd_sse_is_gone(struct herd_sse *s)
{
	pthread_mutex_lock(&s->mu);
	bool gone = s->gone || s->stopping;
	pthread_mutex_unlock(&s->mu);
	return gone;
}

void herd_sse_close(struct herd_sse *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	HERD_ASSERT(!s->closed);
	s->closed = true;
	pthread_cond_broadcast(&s->cv);
	/* Promise of the header: on_gone does not run after close returns — unless close is
	 * called from inside on_gone itself. */
	while (s->in_gone_cb && !pthread_equal(s->gone_thread, pthread_self()))
		pthread_cond_wait(&s->cv, &s->mu);
	unref_unlock(s);
}

void herd_sse_stop_(struct herd_sse *s)
{
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

ssize_t herd_sse_read_(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	struct herd_sse *s = cls;
	static const char heartbeat[] = ": heartbeat\n\n";
	ssize_t ret;
	pthread_mutex_lock(&s->mu);
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += s->heartbeat_ms / 1000;
	deadline.tv_nsec += (long)(s->heartbeat_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	for (;;) {
		if (s->len > s->off) {
			size_t n = s->len - s->off < max ? s->len - s->off : max;
			memcpy(buf, s->buf + s->off, n);
			s->off += n;
			if (s->off == s->len)
				s->off = s->len = 0;
			ret = (ssize_t)n;
			break;
		}
		if (s->closed || s->stopping) {
			ret = MHD_CONTENT_READER_END_OF_STREAM;
			break;
		}
		if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT &&
		    s->len == s->off && !s->closed && !s->stopping) {
			/* Nothing to say: a comment, so that a dead client shows up as a
			 * failed write and the connection ends. */
			size_t n = sizeof heartbeat - 1 < max ? sizeof heartbeat - 1 : max;
			memcpy(buf, heartbeat, n);
			ret = (ssize_t)n;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}

void herd_sse_server_release_(void *cls)
{
	struct herd_sse *s = cls;
	if (s->srv)
		herd_http_server_unlink_stream_(s->srv, s);
	pthread_mutex_lock(&s->mu);
	s->gone = true;
	bool tell = !s->closed && s->on_gone;
	if (tell) {
		s->in_gone_cb = true;
		s->gone_thread = pthread_self();
		pthread_mutex_unlock(&s->mu);
		s->on_gone(s, s->userdata);
		pthread_mutex_lock(&s->mu);
		s->in_gone_cb = false;
		pthread_cond_broadcast(&s->cv);
	}
	unref_unlock(s);
}

/* ---- parser ---- */

struct herd_sse_parser {
	herd_sse_event_fn on_event;
	void *userdata;
	char *line; /* the current, unfinished line */
	size_t line_len, line_cap;
	bool skip_lf; /* the last line ended with CR: a following LF belongs to it */
	char *data;   /* data: lines so far, joined with \n */
	size_t data_len, data_cap;
	bool has_data;
	char event[256];
	char id[256];
	bool stopped;
};

struct herd_sse_parser *herd_sse_parser_new(herd_sse_event_fn on_event, void *userdata)
{
	struct herd_sse_parser *p = herd_xcalloc(1, sizeof *p);
	p->on_event = on_event;
	p->userdata = userdata;
	return p;
}

void herd_sse_parser_free(struct herd_sse_parser *p)
{
	if (!p)
		return;
	free(p->line);
	free(p->data);
	free(p);
}

static void grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return;
	size_t c = *cap ? *cap : 256;
	while (c < need)
		c *= 2;
	*buf = herd_xrealloc(*buf, c);
	*cap = c;
}

static void copy_field(char *dst, size_t size, const char *src, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

/* One complete line (without its terminator). */
static void parser_line(struct herd_sse_parser *p, const char *line, size_t n)
{
	if (n == 0) { /* blank line: dispatch */
		if (p->has_data) {
			grow(&p->data, &p->data_cap, p->data_len + 1);
			p->data[p->data_len] = 0;
			if (!p->on_event(p->event[0] ? p->event : "message", p->data, p->id,
					 p->userdata))
				p->stopped = true;
		}
		p->has_data = false;
		p->data_len = 0;
		p->event[0] = 0;
		return;
	}
	if (line[0] == ':')
		return; /* comment (heartbeat) */
	const char *colon = memchr(line, ':', n);
	size_t fn = colon ? (size_t)(colon - line) : n;
	const char *val = colon ? colon + 1 : line + n;
	size_t vn = line + n - val;
	if (vn && *val == ' ') {
		val++;
		vn--;
	}
	if (fn == 4 && !memcmp(line, "data", 4)) {
		size_t need = p->data_len + (p->has_data ? 1 : 0) + vn + 1;
		grow(&p->data, &p->data_cap, need);
		if (p->has_data)
			p->data[p->data_len++] = '\n';
		memcpy(p->data + p->data_len, val, vn);
		p->data_len += vn;
		p->has_data = true;
	} else if (fn == 5 && !memcmp(line, "event", 5)) {
		copy_field(p->event, sizeof p->event, val, vn);
	} else if (fn == 2 && !memcmp(line, "id", 2)) {
		copy_field(p->id, sizeof p->id, val, vn);
	} /* retry and unknown fields are ignored, as the spec says */
}

bool herd_sse_parser_feed(struct herd_sse_parser *p, const char *data, size_t len)
{
	for (size_t i = 0; i < len && !p->stopped; i++) {
		char c = data[i];
		if (p->skip_lf) {
			p->skip_lf = false;
			if (c == '\n')
				continue;
		}
		if (c == '\r' || c == '\n') {
			parser_line(p, p->line ? p->line : "", p->line_len);
			p->line_len = 0;
			p->skip_lf = c == '\r';
			continue;
		}
		if (p->line_len + p->data_len >= HERD_SSE_MAX_EVENT_BYTES) {
			herd_fail(HERD_ERR_LIMIT, "sse: an event is over %u bytes",
				  (unsigned)HERD_SSE_MAX_EVENT_BYTES);
			p->stopped = true;
			break;
		}
		grow(&p->line, &p->line_cap, p->line_len + 1);
		p->line[p->line_len++] = c;
	}
	return !p->stopped;
}
