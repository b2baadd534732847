/* net: the HTTP server, the clients and SSE, over real sockets on 127.0.0.1 (real
 * libmicrohttpd, real libcurl; nothing mocked). */
#define _GNU_SOURCE
#include "herd_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- handlers ---- */

static void h_health(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	herd_http_resp_text(resp, 200, NULL, "ok\n");
}

/* Echoes what it was asked, so tests can check dispatch, query, headers and body. */
static void h_echo(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	json_t *body = NULL;
	size_t len;
	herd_http_req_body(req, &len);
	if (len && herd_http_req_json(req, &body) != HERD_OK) {
		herd_http_resp_error(resp, 400, HERD_ERR_BAD_INPUT, "%s", herd_last_error());
		return;
	}
	const char *q = herd_http_req_query(req, "x");
	const char *h = herd_http_req_header(req, "x-herd-test");
	herd_http_resp_json(resp, 200,
			    json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:o?, s:I}", "method",
				      herd_http_req_method(req), "path", herd_http_req_path(req),
				      "rest", herd_http_req_path_rest(req), "x", q, "header", h,
				      "body", body, "len", (json_int_t)len));
}

static void h_sleep100(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	sleep_ms(100);
	herd_http_resp_json(resp, 200, json_pack("{s:b}", "slept", 1));
}

/* Blocks until released (or 3 s), to make a client time out. */
static pthread_mutex_t slow_mu = PTHREAD_MUTEX_INITIALIZER;
static bool slow_release;

static void h_slow(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	pthread_mutex_lock(&slow_mu);
	double end = herd_now_ms() + 3000;
	while (!slow_release && herd_now_ms() < end) {
		pthread_mutex_unlock(&slow_mu);
		sleep_ms(10);
		pthread_mutex_lock(&slow_mu);
	}
	pthread_mutex_unlock(&slow_mu);
	herd_http_resp_text(resp, 200, NULL, "late");
}

static void release_slow(void)
{
	pthread_mutex_lock(&slow_mu);
	slow_release = true;
	pthread_mutex_unlock(&slow_mu);
}

/* ---- SSE producer: sends "first", waits until the client saw it, then 2..5 ---- */
struct sse_fix {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct herd_sse *stream;
	pthread_t producer;
	bool have_producer;
	bool client_saw_first;
	bool producer_saw_client; /* the first event arrived while the producer still ran */
	bool gone;
	enum herd_err send_after_gone;
	char events[512];
	int n_events;
	int stop_after; /* client: return false after this many events (0 = never) */
};
static struct sse_fix fx = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *produce_in_order(void *arg)
{
	struct herd_sse *s = arg;
	herd_sse_send(s, "progress", "first");
	pthread_mutex_lock(&fx.mu);
	double end = herd_now_ms() + 3000;
	while (!fx.client_saw_first && herd_now_ms() < end) {
		pthread_mutex_unlock(&fx.mu);
		sleep_ms(5);
		pthread_mutex_lock(&fx.mu);
	}
	fx.producer_saw_client = fx.client_saw_first;
	pthread_mutex_unlock(&fx.mu);
	char d[32];
	for (int i = 2; i <= 5; i++) {
		snprintf(d, sizeof d, "{\"i\":%d}", i);
		herd_sse_send(s, "result", d);
	}
	herd_sse_send(s, NULL, "two\nlines");
	herd_sse_close(s);
	return NULL;
}

static void h_sse_ordered(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	struct herd_sse *s = herd_http_resp_sse(resp, NULL, NULL);
	fx.have_producer = pthread_create(&fx.producer, NULL, produce_in_order, s) == 0;
}

static void on_gone(struct herd_sse *s, void *ud)
{
	pthread_mutex_lock(&fx.mu);
	fx.gone = true;
	pthread_cond_broadcast(&fx.cv);
	pthread_mutex_unlock(&fx.mu);
}

static void h_sse_forever(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	fx.stream = herd_http_resp_sse(resp, on_gone, NULL);
	herd_sse_send(fx.stream, "hello", "1");
}

static const struct herd_http_route routes[] = {
    {"GET", "/health", false, h_health, NULL},
    {"POST", "/v1/echo", false, h_echo, NULL},
    {"GET", "/v1/jobs/", true, h_echo, NULL},
    {"DELETE", "/v1/jobs/", true, h_echo, NULL},
    {"POST", "/sleep", false, h_sleep100, NULL},
    {"GET", "/slow", false, h_slow, NULL},
    {"GET", "/sse", false, h_sse_ordered, NULL},
    {"GET", "/sse-forever", false, h_sse_forever, NULL},
};

static struct herd_http_server *start(size_t max_body, char *base, size_t n)
{
	struct herd_http_server_params p = herd_http_server_default_params();
	p.routes = routes;
	p.n_routes = sizeof routes / sizeof routes[0];
	p.max_request_bytes = max_body;
	p.sse_heartbeat_ms = 50;
	struct herd_http_server *srv = NULL;
	assert_int_equal(herd_http_server_new(&p, &srv), HERD_OK);
	assert_true(herd_http_server_port(srv) > 0);
	snprintf(base, n, "http://127.0.0.1:%u", herd_http_server_port(srv));
	return srv;
}

static const char *err_code(json_t *reply)
{
	return json_string_value(json_object_get(json_object_get(reply, "error"), "code"));
}

/* ---- tests ---- */

static void route_dispatch_404_405(void **state)
{
	char base[64], url[160];
	struct herd_http_server *srv = start(0, base, sizeof base);
	long status;
	json_t *r;

	snprintf(url, sizeof url, "%s/v1/jobs/abc-1/events?x=7", base);
	assert_int_equal(herd_http_get_json(url, 2000, &status, &r), HERD_OK);
	assert_int_equal(status, 200);
	assert_string_equal(json_string_value(json_object_get(r, "method")), "GET");
	assert_string_equal(json_string_value(json_object_get(r, "path")), "/v1/jobs/abc-1/events");
	assert_string_equal(json_string_value(json_object_get(r, "rest")), "abc-1/events");
	assert_string_equal(json_string_value(json_object_get(r, "x")), "7");
	json_decref(r);

	snprintf(url, sizeof url, "%s/nowhere", base);
	assert_int_equal(herd_http_get_json(url, 2000, &status, &r), HERD_OK);
	assert_int_equal(status, 404);
	assert_string_equal(err_code(r), "NOT_FOUND");
	assert_non_null(
	    strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
		   "/nowhere"));
	json_decref(r);

	snprintf(url, sizeof url, "%s/v1/echo", base); /* POST only */
	assert_int_equal(herd_http_get_json(url, 2000, &status, &r), HERD_OK);
	assert_int_equal(status, 405);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "error");
	assert_string_equal(err_code(r), "BAD_INPUT");
	json_decref(r);

	/* A text route answered as text, and the JSON client says it is not JSON. */
	snprintf(url, sizeof url, "%s/health", base);
	assert_int_equal(herd_http_get_json(url, 2000, &status, &r), HERD_ERR_NET);
	assert_null(r);
	assert_non_null(strstr(herd_last_error(), "not JSON"));
	assert_non_null(strstr(herd_last_error(), url));
	herd_http_server_free(srv);
}

static void json_echo_round_trip(void **state)
{
	char base[64], url[160];
	struct herd_http_server *srv = start(0, base, sizeof base);
	snprintf(url, sizeof url, "%s/v1/echo", base);
	json_t *body = json_pack("{s:s, s:[i,i,i], s:I}", "text", "h\xc3\xa9llo \"w\"\n", "a", 1, 2,
				 3, "big", (json_int_t)9007199254740993LL);
	long status;
	json_t *r;
	assert_int_equal(herd_http_post_json(url, body, 2000, &status, &r), HERD_OK);
	assert_int_equal(status, 200);
	assert_true(json_equal(json_object_get(r, "body"), body));
	assert_string_equal(json_string_value(json_object_get(r, "method")), "POST");
	json_decref(r);
	json_decref(body);

	herd_http_server_free(srv);
}

/* ---- multi-client helpers ---- */
struct done {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n;
	int ok200;
	long last_status;
	enum herd_err last_err;
	char last_error[512];
	char last_body[1024];
};

static void on_done(const struct herd_http_result *res, void *ud)
{
	struct done *d = ud;
	pthread_mutex_lock(&d->mu);
	d->n++;
	if (res->err == HERD_OK && res->status == 200)
		d->ok200++;
	d->last_status = res->status;
	d->last_err = res->err;
	snprintf(d->last_error, sizeof d->last_error, "%s", res->error);
	snprintf(d->last_body, sizeof d->last_body, "%.*s", (int)res->body_len, res->body);
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

static void wait_done(struct done *d, int n, long max_ms)
{
	double end = herd_now_ms() + max_ms;
	pthread_mutex_lock(&d->mu);
	while (d->n < n && herd_now_ms() < end) {
		pthread_mutex_unlock(&d->mu);
		sleep_ms(5);
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
}

static void body_limit_413(void **state)
{
	char base[64], url[160];
	struct herd_http_server *srv = start(1000, base, sizeof base);
	snprintf(url, sizeof url, "%s/v1/echo", base);

	/* With Content-Length: refused before the body is read. */
	char big[2001];
	memset(big, 'x', 2000);
	big[2000] = 0;
	json_t *body = json_pack("{s:s}", "text", big);
	long status;
	json_t *r;
	assert_int_equal(herd_http_post_json(url, body, 2000, &status, &r), HERD_OK);
	assert_int_equal(status, 413);
	assert_string_equal(err_code(r), "LIMIT_EXCEEDED");
	assert_non_null(
	    strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
		   "limit of 1000 bytes"));
	json_decref(r);

	/* Just under the limit passes. */
	json_decref(body);
	big[900] = 0;
	body = json_pack("{s:s}", "text", big);
	assert_int_equal(herd_http_post_json(url, body, 2000, &status, &r), HERD_OK);
	assert_int_equal(status, 200);
	json_decref(r);
	json_decref(body);

	/* Invalid JSON: the handler's 400 names line and column. */
	struct herd_http_multi *m;
	assert_int_equal(herd_http_multi_new(&m), HERD_OK);
	struct done d = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct herd_http_request bad = {.url = url,
					.body = "{\"a\":\n 01}",
					.body_len = 10,
					.on_done = on_done,
					.userdata = &d};
	assert_int_equal(herd_http_multi_submit(m, &bad, NULL), HERD_OK);
	wait_done(&d, 1, 3000);
	assert_int_equal(d.last_status, 400);
	assert_non_null(strstr(d.last_body, "line 2 column"));

	/* Chunked, no Content-Length: stopped when it grows over the limit. */
	static char payload[64 * 1024];
	memset(payload, 'y', sizeof payload);
	const char *hdrs[] = {"Transfer-Encoding: chunked"};
	struct herd_http_request q = {.url = url,
				      .body = payload,
				      .body_len = 1500,
				      .headers = hdrs,
				      .n_headers = 1,
				      .timeout_ms = 3000,
				      .on_done = on_done,
				      .userdata = &d};
	assert_int_equal(herd_http_multi_submit(m, &q, NULL), HERD_OK);
	wait_done(&d, 2, 4000);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.last_status, 413);
	assert_non_null(strstr(d.last_body, "LIMIT_EXCEEDED"));
	/* One that goes on past twice the limit is cut off: no 413, a closed connection. */
	q.body_len = sizeof payload;
	assert_int_equal(herd_http_multi_submit(m, &q, NULL), HERD_OK);
	wait_done(&d, 3, 4000);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.last_err, HERD_ERR_NET);
	herd_http_multi_free(m);
	herd_http_server_free(srv);
}

static void concurrent_64_requests(void **state)
{
	char base[64], url[160];
	struct herd_http_server *srv = start(0, base, sizeof base);
	snprintf(url, sizeof url, "%s/sleep", base);
	struct herd_http_multi *m;
	assert_int_equal(herd_http_multi_new(&m), HERD_OK);
	struct done d = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	double t0 = herd_now_ms();
	for (int i = 0; i < 64; i++) {
		char b[32];
		int n = snprintf(b, sizeof b, "{\"i\":%d}", i);
		struct herd_http_request q = {.url = url,
					      .body = b,
					      .body_len = (size_t)n,
					      .timeout_ms = 5000,
					      .on_done = on_done,
					      .userdata = &d};
		assert_int_equal(herd_http_multi_submit(m, &q, NULL), HERD_OK);
	}
	wait_done(&d, 64, 6000);
	double dt = herd_now_ms() - t0;
	assert_int_equal(d.n, 64);
	assert_int_equal(d.ok200, 64);
	assert_true(dt < 3000); /* serially this would be 6400 ms */
	assert_int_equal(herd_http_multi_pending(m), 0);
	herd_http_multi_free(m);
	herd_http_server_free(srv);
}

static uint16_t free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bind(fd, (struct sockaddr *)&a, sizeof a);
	socklen_t l = sizeof a;
	getsockname(fd, (struct sockaddr *)&a, &l);
	close(fd); /* nothing listens there now */
	return ntohs(a.sin_port);
}

static void connection_refused_names_url(void **state)
{
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/command", free_port());
	json_t *body = json_pack("{s:s}", "command", "PING");
	long status = -1;
	json_t *r = (json_t *)1;
	assert_int_equal(herd_http_post_json(url, body, 2000, &status, &r), HERD_ERR_NET);
	assert_null(r);
	assert_int_equal(status, 0);
	assert_non_null(strstr(herd_last_error(), url));
	assert_non_null(strstr(herd_last_error(), "could not connect"));
	json_decref(body);

	struct herd_http_multi *m;
	assert_int_equal(herd_http_multi_new(&m), HERD_OK);
	struct done d = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct herd_http_request q = {.url = url, .on_done = on_done, .userdata = &d};
	assert_int_equal(herd_http_multi_submit(m, &q, NULL), HERD_OK);
	wait_done(&d, 1, 3000);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.last_err, HERD_ERR_NET);
	assert_non_null(strstr(d.last_error, url));
	/* A missing URL is refused at submit, and then on_done never runs. */
	struct herd_http_request bad = {.on_done = on_done, .userdata = &d};
	assert_int_equal(herd_http_multi_submit(m, &bad, NULL), HERD_ERR_BAD_INPUT);
	herd_http_multi_free(m);
	assert_int_equal(d.n, 1);
}

static void timeouts_and_cancel(void **state)
{
	char base[64], url[160];
	slow_release = false;
	struct herd_http_server *srv = start(0, base, sizeof base);
	snprintf(url, sizeof url, "%s/slow", base);

	double t0 = herd_now_ms();
	long status;
	json_t *r;
	assert_int_equal(herd_http_get_json(url, 200, &status, &r), HERD_ERR_TIMEOUT);
	double dt = herd_now_ms() - t0;
	assert_true(dt >= 190 && dt < 1500);
	assert_non_null(strstr(herd_last_error(), url));

	struct herd_http_multi *m;
	assert_int_equal(herd_http_multi_new(&m), HERD_OK);
	struct done d = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	/* Idle timeout: no byte for 150 ms. */
	struct herd_http_request q = {
	    .url = url, .idle_timeout_ms = 150, .on_done = on_done, .userdata = &d};
	t0 = herd_now_ms();
	assert_int_equal(herd_http_multi_submit(m, &q, NULL), HERD_OK);
	wait_done(&d, 1, 2000);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.last_err, HERD_ERR_TIMEOUT);
	assert_true(herd_now_ms() - t0 < 1000);
	/* Total timeout. */
	q.idle_timeout_ms = 0;
	q.timeout_ms = 150;
	assert_int_equal(herd_http_multi_submit(m, &q, NULL), HERD_OK);
	wait_done(&d, 2, 2000);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.last_err, HERD_ERR_TIMEOUT);
	/* Cancel by id. */
	q.timeout_ms = 0;
	uint64_t id;
	assert_int_equal(herd_http_multi_submit(m, &q, &id), HERD_OK);
	sleep_ms(50);
	assert_int_equal(herd_http_multi_cancel(m, id), HERD_OK);
	wait_done(&d, 3, 2000);
	assert_int_equal(d.n, 3);
	assert_int_equal(d.last_err, HERD_ERR_CANCELLED);
	assert_int_equal(herd_http_multi_cancel(m, id), HERD_ERR_NOT_FOUND);
	herd_http_multi_free(m);
	release_slow();
	herd_http_server_free(srv);
}

static bool collect_event(const char *event, const char *data, const char *id, void *ud)
{
	pthread_mutex_lock(&fx.mu);
	size_t n = strlen(fx.events);
	snprintf(fx.events + n, sizeof fx.events - n, "%s=%s;", event, data);
	fx.n_events++;
	if (!strcmp(data, "first"))
		fx.client_saw_first = true;
	bool go_on = !(fx.stop_after && fx.n_events >= fx.stop_after);
	pthread_mutex_unlock(&fx.mu);
	return go_on;
}

static void sse_events_in_order_incrementally(void **state)
{
	char base[64], url[160];
	struct herd_http_server *srv = start(0, base, sizeof base);
	snprintf(url, sizeof url, "%s/sse", base);
	memset(fx.events, 0, sizeof fx.events);
	fx.n_events = 0;
	fx.stop_after = 0;
	fx.client_saw_first = fx.producer_saw_client = false;
	assert_int_equal(herd_http_sse(url, NULL, 2000, collect_event, NULL), HERD_OK);
	assert_true(fx.have_producer);
	pthread_join(fx.producer, NULL);
	/* The producer waited for the client to see "first" before sending more: it arrived
	 * while the handler's stream was still open. */
	assert_true(fx.producer_saw_client);
	assert_string_equal(fx.events, "progress=first;result={\"i\":2};result={\"i\":3};"
				       "result={\"i\":4};result={\"i\":5};message=two\nlines;");
	herd_http_server_free(srv);
}

static void sse_client_gone_is_reported(void **state)
{
	char base[64], url[160];
	struct herd_http_server *srv = start(0, base, sizeof base);
	snprintf(url, sizeof url, "%s/sse-forever", base);
	memset(fx.events, 0, sizeof fx.events);
	fx.n_events = 0;
	fx.stop_after = 1; /* hang up after the first event */
	fx.gone = false;
	assert_int_equal(herd_http_sse(url, NULL, 2000, collect_event, NULL), HERD_OK);
	assert_string_equal(fx.events, "hello=1;");
	double end = herd_now_ms() + 3000;
	pthread_mutex_lock(&fx.mu);
	while (!fx.gone && herd_now_ms() < end) {
		pthread_mutex_unlock(&fx.mu);
		sleep_ms(10);
		pthread_mutex_lock(&fx.mu);
	}
	bool gone = fx.gone;
	pthread_mutex_unlock(&fx.mu);
	assert_true(gone);
	assert_true(herd_sse_is_gone(fx.stream));
	assert_int_equal(herd_sse_send(fx.stream, "more", "x"), HERD_ERR_CANCELLED);
	herd_sse_close(fx.stream);
	herd_http_server_free(srv);
}

static char streamed[4096];
static size_t streamed_len;
static bool on_streamed(const char *data, size_t len, void *ud)
{
	/* runs on the multi thread; the test thread polls streamed[] (a NUL-terminated prefix) */
	pthread_mutex_lock(&fx.mu);
	if (streamed_len + len < sizeof streamed) {
		memcpy(streamed + streamed_len, data, len);
		streamed_len += len;
		streamed[streamed_len] = 0;
	}
	pthread_mutex_unlock(&fx.mu);
	return true;
}

static bool streamed_has(const char *what)
{
	pthread_mutex_lock(&fx.mu);
	bool has = strstr(streamed, what) != NULL;
	pthread_mutex_unlock(&fx.mu);
	return has;
}

static void sse_shutdown_ends_open_streams(void **state)
{
	/* A stream the producer never closes must not keep the server from stopping. */
	char base[64], url[160];
	struct herd_http_server *srv = start(0, base, sizeof base);
	snprintf(url, sizeof url, "%s/sse-forever", base);
	struct herd_http_multi *m;
	assert_int_equal(herd_http_multi_new(&m), HERD_OK);
	struct done d = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	fx.gone = false;
	streamed_len = 0;
	streamed[0] = 0;
	struct herd_http_request q = {
	    .url = url, .on_data = on_streamed, .on_done = on_done, .userdata = &d};
	assert_int_equal(herd_http_multi_submit(m, &q, NULL), HERD_OK);
	for (int i = 0; i < 300 && !streamed_has("data: 1\n\n"); i++)
		sleep_ms(10);
	herd_http_server_free(srv); /* returns: the stream was ended */
	assert_true(fx.gone);
	herd_sse_close(fx.stream);
	wait_done(&d, 1, 2000);
	assert_int_equal(d.n, 1);
	if (d.last_err != HERD_OK)
		fprintf(stderr, "client: %s\n", d.last_error);
	assert_int_equal(d.last_err, HERD_OK); /* a clean end of the chunked stream */
	assert_non_null(strstr(streamed, "event: hello\ndata: 1\n\n"));
	herd_http_multi_free(m);
}

static bool parsed(const char *event, const char *data, const char *id, void *ud)
{
	char *out = ud;
	size_t n = strlen(out);
	snprintf(out + n, 512 - n, "[%s|%s|%s]", event, data, id);
	return true;
}

static void sse_parser_rules(void **state)
{
	/* CR, LF and CRLF line ends, comments, a space after the colon removed once, multi-line
	 * data joined by \n, id kept, events without data not dispatched. */
	const char *stream = ": hi\r\nevent: a\r\ndata: 1\r\ndata:  2\r\n\r\n"
			     "data:x\rid: 9\r\r"
			     "event: empty\n\n"
			     "retry: 10\nfoo\ndata\n\n";
	char out[512] = "";
	struct herd_sse_parser *p = herd_sse_parser_new(parsed, out);
	for (size_t i = 0; stream[i]; i++) /* byte by byte: the worst split */
		assert_true(herd_sse_parser_feed(p, stream + i, 1));
	herd_sse_parser_free(p);
	assert_string_equal(out, "[a|1\n 2|][message|x|9][message||9]");
}

static void sse_client_errors(void **state)
{
	char base[64], url[160];
	slow_release = false;
	struct herd_http_server *srv = start(0, base, sizeof base);
	fx.stop_after = 0;
	snprintf(url, sizeof url, "%s/no-stream", base);
	assert_int_equal(herd_http_sse(url, NULL, 2000, collect_event, NULL), HERD_ERR_NET);
	assert_non_null(strstr(herd_last_error(), "status 404"));
	assert_non_null(strstr(herd_last_error(), url));
	snprintf(url, sizeof url, "%s/slow", base);
	double t0 = herd_now_ms();
	assert_int_equal(herd_http_sse(url, NULL, 150, collect_event, NULL), HERD_ERR_TIMEOUT);
	assert_true(herd_now_ms() - t0 < 1500);
	assert_non_null(strstr(herd_last_error(), "idle timeout"));
	release_slow();
	herd_http_server_free(srv);
}

static void server_params_are_checked(void **state)
{
	struct herd_http_server_params p = herd_http_server_default_params();
	p.host = "not-an-address";
	struct herd_http_server *srv = (struct herd_http_server *)1;
	assert_int_equal(herd_http_server_new(&p, &srv), HERD_ERR_BAD_INPUT);
	assert_null(srv);
	assert_non_null(strstr(herd_last_error(), "not-an-address"));

	/* A port in use. */
	char base[64];
	struct herd_http_server *a = start(0, base, sizeof base);
	p = herd_http_server_default_params();
	p.port = herd_http_server_port(a);
	assert_int_equal(herd_http_server_new(&p, &srv), HERD_ERR_NET);
	herd_http_server_free(a);
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
	cmocka_unit_test(route_dispatch_404_405),
	cmocka_unit_test(json_echo_round_trip),
	cmocka_unit_test(body_limit_413),
	cmocka_unit_test(concurrent_64_requests),
	cmocka_unit_test(connection_refused_names_url),
	cmocka_unit_test(timeouts_and_cancel),
	cmocka_unit_test(sse_events_in_order_incrementally),
	cmocka_unit_test(sse_client_gone_is_reported),
	cmocka_unit_test(sse_shutdown_ends_open_streams),
	cmocka_unit_test(sse_parser_rules),
	cmocka_unit_test(sse_client_errors),
	cmocka_unit_test(server_params_are_checked),
}))
