/* client — herd's HTTP clients on libcurl: blocking JSON calls, the multi client (one thread
 * drives curl_multi for every request in flight) and the blocking SSE reader.
 *
 * The one thing to know: in the multi client every callback (on_data, on_done) runs on the
 * multi thread; the request lists are guarded by one mutex, which is never held while a
 * callback runs, so callbacks may submit and cancel. */
#define _GNU_SOURCE
#include "net.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "limits.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* A reply, kept up to max bytes. */
struct buf {
	struct herd_buf data;
	size_t max;
	bool over;
};

static bool buf_add(struct buf *b, const char *data, size_t n)
{
	if (b->data.len + n > b->max) {
		b->over = true;
		return false;
	}
	herd_buf_add(&b->data, data, n);
	return true;
}

static size_t buf_write(char *data, size_t size, size_t n, void *ud)
{
	return buf_add(ud, data, size * n) ? size * n : 0;
}

/* The herd error for a curl failure, with a message naming the URL. */
static enum herd_err curl_fail(CURLcode rc, const char *url, const char *detail, long timeout_ms)
{
	const char *what = detail && *detail ? detail : curl_easy_strerror(rc);
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return herd_fail(HERD_ERR_NET, "%s: could not connect: %s", url, what);
	case CURLE_OPERATION_TIMEDOUT:
		return herd_fail(HERD_ERR_TIMEOUT, "%s: timed out after %ld ms: %s", url,
				 timeout_ms, what);
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return herd_fail(HERD_ERR_BAD_INPUT, "url: '%s' is not a valid http URL: %s", url,
				 what);
	default:
		return herd_fail(HERD_ERR_NET, "%s: transfer failed: %s", url, what);
	}
}

static enum herd_err easy_json(const char *url, const json_t *body, long timeout_ms, long *status,
			       json_t **reply)
{
	pthread_once(&curl_once, curl_init_once);
	if (status)
		*status = 0;
	if (reply)
		*reply = NULL;
	if (!url || !*url)
		return herd_fail(HERD_ERR_BAD_INPUT, "url: must not be empty");
	if (timeout_ms <= 0)
		timeout_ms = HERD_HTTP_DEFAULT_TIMEOUT_MS;
	enum herd_err err = HERD_OK;
	char *text = NULL;
	struct curl_slist *hdrs = NULL;
	struct buf b = {.max = HERD_MAX_REQUEST_BYTES};
	char ebuf[CURL_ERROR_SIZE] = "";
	CURL *c = curl_easy_init();
	if (!c)
		return herd_fail(HERD_ERR_NOMEM, "curl_easy_init failed");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 timeout_ms < HERD_HTTP_CONNECT_TIMEOUT_MS
			     ? timeout_ms
			     : (long)HERD_HTTP_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (body) {
		text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!text) {
			err = herd_fail(HERD_ERR_BAD_INPUT, "body: not encodable as JSON");
			goto out;
		}
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	CURLcode rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		if (b.over)
			err = herd_fail(HERD_ERR_LIMIT, "%s: reply is over %zu bytes", url, b.max);
		else
			err = curl_fail(rc, url, ebuf, timeout_ms);
		goto out;
	}
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (status)
		*status = code;
	if (reply) {
		json_error_t je;
		json_t *j = b.data.len
				? json_loadb(b.data.p, b.data.len, JSON_REJECT_DUPLICATES, &je)
				: NULL;
		if (!j) {
			const char *ct = NULL;
			curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
			err = herd_fail(
			    HERD_ERR_NET,
			    "%s: reply is not JSON (status %ld, Content-Type %s, %zu bytes)%s%.80s",
			    url, code, ct ? ct : "none", b.data.len, b.data.len ? ": " : "",
			    b.data.len ? b.data.p : "");
			goto out;
		}
		*reply = j;
	}
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(text);
	free(b.data.p);
	return err;
}

enum herd_err herd_http_post_json(const char *url, const json_t *body, long timeout_ms,
				  long *status, json_t **reply)
{
	if (!body)
		return herd_fail(HERD_ERR_BAD_INPUT, "body: must not be NULL for a POST");
	return easy_json(url, body, timeout_ms, status, reply);
}

enum herd_err herd_http_get_json(const char *url, long timeout_ms, long *status, json_t **reply)
{
	return easy_json(url, NULL, timeout_ms, status, reply);
}

/* ====================================================================================== */

struct mreq {
	uint64_t id;
	CURL *easy;
	struct curl_slist *hdrs;
	char *url;
	char *body;
	struct buf reply;
	char ebuf[CURL_ERROR_SIZE];
	herd_http_data_fn on_data;
	herd_http_done_fn on_done;
	void *userdata;
	long timeout_ms, idle_timeout_ms;
	double start_ms, last_ms;
	bool cancel;	   /* asked by herd_http_multi_cancel / free (under mu) */
	bool data_stopped; /* on_data returned false */
	bool added;	   /* in curl_multi */
	struct mreq *next;
};

struct herd_http_multi {
	CURLM *cm;
	pthread_t thread;
	pthread_mutex_t mu;
	struct mreq *incoming; /* submitted, not yet in curl_multi (mu) */
	struct mreq *active;   /* in curl_multi (mu for the links) */
	uint64_t next_id;
	size_t pending;
	bool stop;
};

static size_t mreq_write(char *data, size_t size, size_t n, void *ud)
{
	struct mreq *r = ud;
	r->last_ms = herd_now_ms();
	if (r->on_data) {
		if (!r->on_data(data, size * n, r->userdata)) {
			r->data_stopped = true;
			return 0;
		}
		return size * n;
	}
	return buf_write(data, size, n, &r->reply);
}

static void mreq_free(struct mreq *r)
{
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	free(r->url);
	free(r->body);
	free(r->reply.data.p);
	free(r);
}

/* Ends r (already off every list): on_done, then free. Runs on the multi thread. */
static void mreq_finish(struct herd_http_multi *m, struct mreq *r, CURLcode rc, enum herd_err why)
{
	if (r->added)
		curl_multi_remove_handle(m->cm, r->easy);
	struct herd_http_result res = {.id = r->id, .curl_code = rc, .error = ""};
	res.elapsed_ms = herd_now_ms() - r->start_ms;
	if (r->easy)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
	if (why != HERD_OK) {
		res.err = why;
		if (why == HERD_ERR_CANCELLED)
			herd_fail(why, "%s: cancelled", r->url);
		else
			herd_fail(why, "%s: no data for %ld ms (idle timeout)", r->url,
				  r->idle_timeout_ms);
	} else if (r->data_stopped) {
		res.err = herd_fail(HERD_ERR_CANCELLED, "%s: stopped by the data callback", r->url);
	} else if (r->reply.over) {
		res.err =
		    herd_fail(HERD_ERR_LIMIT, "%s: reply is over %zu bytes", r->url, r->reply.max);
	} else if (rc != CURLE_OK) {
		res.err = curl_fail(rc, r->url, r->ebuf, r->timeout_ms);
	}
	if (res.err != HERD_OK)
		res.error = herd_last_error();
	res.body = r->reply.data.p ? r->reply.data.p : "";
	res.body_len = r->reply.data.len;
	/* Not pending any more once its result is final, so that on_done sees it gone. */
	pthread_mutex_lock(&m->mu);
	m->pending--;
	pthread_mutex_unlock(&m->mu);
	r->on_done(&res, r->userdata);
	mreq_free(r);
}

static void unlink_from(struct mreq **list, struct mreq *r)
{
	for (struct mreq **pp = list; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			r->next = NULL;
			return;
		}
	}
	HERD_ASSERT(!"request not on the list");
}

static void *multi_main(void *arg)
{
	struct herd_http_multi *m = arg;
	for (;;) {
		/* Take new requests in; collect cancelled and idle ones. */
		struct mreq *ended = NULL, *added = NULL;
		double now = herd_now_ms();
		pthread_mutex_lock(&m->mu);
		while (m->incoming) {
			struct mreq *r = m->incoming;
			m->incoming = r->next;
			r->next = added;
			added = r;
		}
		while (added) {
			struct mreq *r = added;
			added = r->next;
			if (r->cancel) {
				r->next = ended;
				ended = r;
				continue;
			}
			r->next = m->active;
			m->active = r;
			r->added = curl_multi_add_handle(m->cm, r->easy) == CURLM_OK;
			r->last_ms = now;
		}
		for (struct mreq **pp = &m->active; *pp;) {
			struct mreq *r = *pp;
			bool idle = r->idle_timeout_ms > 0 && now - r->last_ms > r->idle_timeout_ms;
			if (r->cancel || idle || !r->added) {
				*pp = r->next;
				r->next = ended;
				ended = r;
				/* not added: curl refused the handle (out of memory) */
				r->cancel = r->cancel || !idle;
				continue;
			}
			pp = &r->next;
		}
		bool stop = m->stop && !m->active && !m->incoming;
		pthread_mutex_unlock(&m->mu);
		while (ended) {
			struct mreq *r = ended;
			ended = r->next;
			mreq_finish(m, r, CURLE_OK,
				    r->cancel ? HERD_ERR_CANCELLED : HERD_ERR_TIMEOUT);
		}
		if (stop)
			break;

		int running = 0;
		curl_multi_perform(m->cm, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m->cm, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct mreq *r = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			CURLcode rc = msg->data.result;
			pthread_mutex_lock(&m->mu);
			unlink_from(&m->active, r);
			pthread_mutex_unlock(&m->mu);
			mreq_finish(m, r, rc, HERD_OK);
		}
		/* 50 ms at most: idle timers and cancels are checked at that pace. */
		curl_multi_poll(m->cm, NULL, 0, 50, NULL);
	}
	return NULL;
}

enum herd_err herd_http_multi_new(struct herd_http_multi **out)
{
	pthread_once(&curl_once, curl_init_once);
	*out = NULL;
	struct herd_http_multi *m = herd_xcalloc(1, sizeof *m);
	m->cm = curl_multi_init();
	if (!m->cm) {
		free(m);
		return herd_fail(HERD_ERR_NOMEM, "curl_multi_init failed");
	}
	/* Many fragments to one peer: let them share connections, but not wait for one. */
	curl_multi_setopt(m->cm, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	pthread_mutex_init(&m->mu, NULL);
	m->next_id = 1;
	if (pthread_create(&m->thread, NULL, multi_main, m) != 0) {
		curl_multi_cleanup(m->cm);
		pthread_mutex_destroy(&m->mu);
		free(m);
		return herd_fail(HERD_ERR_INTERNAL, "cannot start the http client thread");
	}
	*out = m;
	return HERD_OK;
}

enum herd_err herd_http_multi_submit(struct herd_http_multi *m, const struct herd_http_request *q,
				     uint64_t *id)
{
	if (!q->url || !*q->url)
		return herd_fail(HERD_ERR_BAD_INPUT, "request.url: must not be empty");
	if (!q->on_done)
		return herd_fail(HERD_ERR_BAD_INPUT, "request.on_done: required");
	struct mreq *r = herd_xcalloc(1, sizeof *r);
	r->easy = curl_easy_init();
	if (!r->easy) {
		free(r);
		return herd_fail(HERD_ERR_NOMEM, "curl_easy_init failed");
	}
	r->url = herd_xstrdup(q->url);
	r->on_data = q->on_data;
	r->on_done = q->on_done;
	r->userdata = q->userdata;
	r->timeout_ms = q->timeout_ms;
	r->idle_timeout_ms = q->idle_timeout_ms;
	r->reply.max = q->max_reply_bytes ? q->max_reply_bytes : HERD_MAX_REQUEST_BYTES;
	r->start_ms = herd_now_ms();
	CURL *c = r->easy;
	curl_easy_setopt(c, CURLOPT_URL, r->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PRIVATE, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->ebuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mreq_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 q->connect_timeout_ms > 0 ? q->connect_timeout_ms
						   : (long)HERD_HTTP_CONNECT_TIMEOUT_MS);
	if (q->timeout_ms > 0)
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, q->timeout_ms);
	for (size_t i = 0; i < q->n_headers; i++)
		r->hdrs = curl_slist_append(r->hdrs, q->headers[i]);
	if (q->body) {
		r->body = herd_xmalloc(q->body_len + 1);
		memcpy(r->body, q->body, q->body_len);
		char ct[256];
		snprintf(ct, sizeof ct, "Content-Type: %s",
			 q->content_type ? q->content_type : "application/json");
		r->hdrs = curl_slist_append(r->hdrs, ct);
		r->hdrs = curl_slist_append(r->hdrs, "Expect:");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
	}
	if (q->method)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->hdrs);

	pthread_mutex_lock(&m->mu);
	if (m->stop) {
		pthread_mutex_unlock(&m->mu);
		mreq_free(r);
		return herd_fail(HERD_ERR_CANCELLED, "http client: shutting down");
	}
	r->id = m->next_id++;
	r->next = m->incoming;
	m->incoming = r;
	m->pending++;
	if (id)
		*id = r->id;
	pthread_mutex_unlock(&m->mu);
	curl_multi_wakeup(m->cm);
	return HERD_OK;
}

enum herd_err herd_http_multi_cancel(struct herd_http_multi *m, uint64_t id)
{
	bool found = false;
	pthread_mutex_lock(&m->mu);
	struct mreq *lists[2] = {m->incoming, m->active};
	for (int l = 0; l < 2 && !found; l++)
		for (struct mreq *r = lists[l]; r; r = r->next)
			if (r->id == id) {
				r->cancel = true;
				found = true;
				break;
			}
	pthread_mutex_unlock(&m->mu);
	if (!found)
		return herd_fail(HERD_ERR_NOT_FOUND, "request %" PRIu64 ": not in flight", id);
	curl_multi_wakeup(m->cm);
	return HERD_OK;
}

size_t herd_http_multi_pending(struct herd_http_multi *m)
{
	pthread_mutex_lock(&m->mu);
	size_t n = m->pending;
	pthread_mutex_unlock(&m->mu);
	return n;
}

void herd_http_multi_free(struct herd_http_multi *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	m->stop = true;
	for (struct mreq *r = m->incoming; r; r = r->next)
		r->cancel = true;
	for (struct mreq *r = m->active; r; r = r->next)
		r->cancel = true;
	pthread_mutex_unlock(&m->mu);
	curl_multi_wakeup(m->cm);
	pthread_join(m->thread, NULL);
	HERD_ASSERT(m->pending == 0);
	curl_multi_cleanup(m->cm);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* ====================================================================================== */

struct sse_call {
	CURL *c;
	struct herd_sse_parser *parser;
	struct buf err_body; /* a non-2xx reply, for the message */
	long status;
	bool stopped, failed_parse;
	double last_ms;
};

static size_t sse_write(char *data, size_t size, size_t n, void *ud)
{
	struct sse_call *s = ud;
	s->last_ms = herd_now_ms();
	if (!s->status)
		curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status < 200 || s->status > 299) {
		buf_add(&s->err_body, data, size * n); /* keeps the first bytes only */
		return size * n;
	}
	if (!herd_sse_parser_feed(s->parser, data, size * n)) {
		s->stopped = true;
		return 0;
	}
	return size * n;
}

enum herd_err herd_http_sse(const char *url, const json_t *body, long idle_timeout_ms,
			    herd_sse_event_fn on_event, void *userdata)
{
	pthread_once(&curl_once, curl_init_once);
	if (!url || !*url)
		return herd_fail(HERD_ERR_BAD_INPUT, "url: must not be empty");
	enum herd_err err = HERD_OK;
	char ebuf[CURL_ERROR_SIZE] = "";
	char *text = NULL;
	struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: text/event-stream");
	struct sse_call s = {.err_body.max = 1024};
	s.parser = herd_sse_parser_new(on_event, userdata);
	s.c = curl_easy_init();
	CURLM *cm = curl_multi_init();
	if (!s.c || !cm) {
		err = herd_fail(HERD_ERR_NOMEM, "curl init failed");
		goto out;
	}
	curl_easy_setopt(s.c, CURLOPT_URL, url);
	curl_easy_setopt(s.c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(s.c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s.c, CURLOPT_CONNECTTIMEOUT_MS, (long)HERD_HTTP_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(s.c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(s.c, CURLOPT_WRITEFUNCTION, sse_write);
	curl_easy_setopt(s.c, CURLOPT_WRITEDATA, &s);
	if (body) {
		text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!text) {
			err = herd_fail(HERD_ERR_BAD_INPUT, "body: not encodable as JSON");
			goto out;
		}
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		hdrs = curl_slist_append(hdrs, "Expect:");
		curl_easy_setopt(s.c, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(s.c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
	}
	curl_easy_setopt(s.c, CURLOPT_HTTPHEADER, hdrs);
	curl_multi_add_handle(cm, s.c);
	s.last_ms = herd_now_ms();
	/* A private multi loop rather than curl_easy_perform: the idle timer is ours, to the
	 * millisecond, and a heartbeat comment counts as life. */
	CURLcode rc = CURLE_OK;
	bool done = false, idle = false;
	while (!done) {
		int running = 0;
		curl_multi_perform(cm, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(cm, &left)))
			if (msg->msg == CURLMSG_DONE) {
				rc = msg->data.result;
				done = true;
			}
		if (done)
			break;
		if (idle_timeout_ms > 0 && herd_now_ms() - s.last_ms > idle_timeout_ms) {
			idle = true;
			break;
		}
		curl_multi_poll(cm, NULL, 0, 50, NULL);
	}
	curl_multi_remove_handle(cm, s.c);
	if (idle) {
		err = herd_fail(HERD_ERR_TIMEOUT, "%s: no data for %ld ms (idle timeout)", url,
				idle_timeout_ms);
	} else if (s.stopped) {
		if (strstr(herd_last_error(), "sse: an event is over") == herd_last_error())
			err = HERD_ERR_LIMIT;
	} else if (rc != CURLE_OK) {
		err = curl_fail(rc, url, ebuf, 0);
	} else if (s.status < 200 || s.status > 299) {
		err = herd_fail(HERD_ERR_NET, "%s: status %ld%s%.200s", url, s.status,
				s.err_body.data.len ? ": " : "", s.err_body.data.len ? s.err_body.data.p : "");
	}
out:
	if (cm)
		curl_multi_cleanup(cm);
	if (s.c)
		curl_easy_cleanup(s.c);
	curl_slist_free_all(hdrs);
	herd_sse_parser_free(s.parser);
	free(s.err_body.data.p);
	free(text);
	return err;
}
