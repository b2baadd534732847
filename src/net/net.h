/* net — herd's generic networking: an HTTP server (libmicrohttpd, one thread per connection,
 * so handlers may block for minutes), HTTP clients (libcurl: a blocking JSON helper and a
 * multi client for many requests in flight) and Server-Sent Events in both directions.
 * It knows nothing of jobs or models; the node part wires handlers to it.
 *
 * The one thing to know: every callback says on which thread it runs (docs/threading.md);
 * memory handed to a callback is valid only during the call unless stated otherwise. */
#ifndef HERD_NET_H
#define HERD_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base.h"

/* ======================================================================================
 * Server
 * ====================================================================================== */

struct herd_http_server;
struct herd_http_req;  /* one request, valid only during the handler call */
struct herd_http_resp; /* what the handler answers, valid only during the handler call */
struct herd_sse;       /* a Server-Sent Events stream, see herd_http_resp_sse() */

/* Runs on the connection's own thread; may block (inference) without delaying other
 * connections. It answers by calling one of the herd_http_resp_* functions; answering
 * nothing gives 500. */
typedef void (*herd_http_handler)(struct herd_http_req *req, struct herd_http_resp *resp,
				  void *userdata);

struct herd_http_route {
	const char *method; /* "GET", "POST", … */
	const char *path;   /* "/v1/command"; with prefix: "/v1/jobs/" matches "/v1/jobs/abc" */
	bool prefix;
	herd_http_handler handler;
	void *userdata;
};

struct herd_http_server_params {
	const char *host; /* address to bind, "127.0.0.1" (default), "0.0.0.0" */
	uint16_t port;	  /* 0 = any free port; herd_http_server_port() reads it back */
	const struct herd_http_route *routes; /* copied; the first match wins */
	size_t n_routes;
	size_t max_request_bytes;  /* body limit, over it → 413; default HERD_MAX_REQUEST_BYTES */
	unsigned max_connections;  /* default HERD_HTTP_MAX_CONNECTIONS */
	size_t thread_stack_bytes; /* per connection thread; default HERD_HTTP_THREAD_STACK_BYTES */
	unsigned sse_heartbeat_ms; /* idle SSE streams get a comment this often; default
				      HERD_SSE_HEARTBEAT_MS */
	unsigned idle_timeout_s;   /* close connections idle this long; 0 = default
				      HERD_HTTP_IDLE_TIMEOUT_S */
};

struct herd_http_server_params herd_http_server_default_params(void);

/* Binds and starts serving. Fails (no server) with HERD_ERR_BAD_INPUT for a bad host or
 * route, HERD_ERR_NET when the address cannot be bound. Ignores SIGPIPE process-wide. */
enum herd_err herd_http_server_new(const struct herd_http_server_params *params,
				   struct herd_http_server **out);

/* The bound port (the real one when params.port was 0). */
uint16_t herd_http_server_port(const struct herd_http_server *srv);

/* Stops accepting, ends every SSE stream (producers see HERD_ERR_CANCELLED and their
 * on_gone), waits for running handlers to return, frees. NULL is a no-op. Must not be
 * called from a handler. */
void herd_http_server_free(struct herd_http_server *srv);

/* ---- the request (valid during the handler call only) ---- */
const char *herd_http_req_method(const struct herd_http_req *req);
const char *herd_http_req_path(const struct herd_http_req *req); /* without the query */
/* The part of the path after a prefix route's path ("abc/events" for "/v1/jobs/abc/events"
 * on "/v1/jobs/"); "" for exact routes. */
const char *herd_http_req_path_rest(const struct herd_http_req *req);
/* One query argument ("?stream=1" → "1"; "?flag" → ""), NULL when absent. */
const char *herd_http_req_query(const struct herd_http_req *req, const char *key);
/* A request header, case-insensitive name; NULL when absent. */
const char *herd_http_req_header(const struct herd_http_req *req, const char *name);
/* The whole body (NUL-terminated for convenience; len excludes the NUL). Never NULL. */
const char *herd_http_req_body(const struct herd_http_req *req, size_t *len);
/* Parses the body as JSON (strict, duplicate keys rejected). On failure returns
 * HERD_ERR_BAD_INPUT with a message naming line and column; *out is then NULL.
 * The caller owns *out. */
enum herd_err herd_http_req_json(const struct herd_http_req *req, json_t **out);

/* ---- the response (call exactly one of json/text/error/sse; a later call replaces) ---- */
/* Takes ownership of body (a reference is stolen, even on failure). */
void herd_http_resp_json(struct herd_http_resp *resp, unsigned status, json_t *body);
/* text is copied; content_type NULL = "text/plain; charset=utf-8". */
void herd_http_resp_text(struct herd_http_resp *resp, unsigned status, const char *content_type,
			 const char *text);
/* JSON error envelope {"status":"error","error":{"code":herd_errcode(err),"message":...}}. */
void herd_http_resp_error(struct herd_http_resp *resp, unsigned status, enum herd_err err,
			  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Adds a response header (copied). */
void herd_http_resp_header(struct herd_http_resp *resp, const char *name, const char *value);

/* Called at most once, on a server thread, when the client went away (or the server is
 * shutting down) before the producer closed the stream — the node cancels work here.
 * It does not run after herd_sse_close() has returned. */
typedef void (*herd_sse_gone_fn)(struct herd_sse *stream, void *userdata);

/* Answers 200 text/event-stream. The returned stream belongs to the caller (the producer),
 * who writes events from any thread, even after the handler returned, and must call
 * herd_sse_close() exactly once. The headers go out when the handler returns; events sent
 * before that are queued. */
struct herd_sse *herd_http_resp_sse(struct herd_http_resp *resp, herd_sse_gone_fn on_gone,
				    void *userdata);

/* Queues one event: `event: NAME` (omitted when event is NULL) and the data, one `data:`
 * line per line of text. Any thread; does not block on the network. Returns
 * HERD_ERR_CANCELLED when the client has gone (the event is dropped), HERD_ERR_LIMIT when
 * the client reads too slowly and HERD_SSE_MAX_QUEUED_BYTES are waiting. */
enum herd_err herd_sse_send(struct herd_sse *stream, const char *event, const char *data);
/* The same with a JSON value as data (compact, one line); data is not stolen. */
enum herd_err herd_sse_send_json(struct herd_sse *stream, const char *event, const json_t *data);
/* True once the client is gone or the server is stopping. */
bool herd_sse_is_gone(struct herd_sse *stream);
/* Ends the stream after the queued events are sent and drops the producer's reference; the
 * stream must not be used afterwards. NULL is a no-op. */
void herd_sse_close(struct herd_sse *stream);

/* ======================================================================================
 * Blocking client (easy interface; for the CLI and simple calls)
 * ====================================================================================== */

/* POST body (not stolen) as JSON to url and parse the reply. On HERD_OK, *status is the HTTP
 * status (any status: a 4xx with a JSON error envelope is still OK here) and *reply (when
 * reply is not NULL) the parsed reply, owned by the caller. Errors (with a message naming
 * the URL): HERD_ERR_NET could not connect / transfer failed / reply is not JSON,
 * HERD_ERR_TIMEOUT after timeout_ms (0 = HERD_HTTP_DEFAULT_TIMEOUT_MS). */
enum herd_err herd_http_post_json(const char *url, const json_t *body, long timeout_ms,
				  long *status, json_t **reply);
enum herd_err herd_http_get_json(const char *url, long timeout_ms, long *status, json_t **reply);

/* ======================================================================================
 * Multi client: many requests in flight, one thread drives curl_multi
 * ====================================================================================== */

struct herd_http_multi;

struct herd_http_result {
	uint64_t id;	   /* the id submit returned */
	enum herd_err err; /* HERD_OK when an HTTP reply arrived (any status) */
	long status;	   /* HTTP status, 0 when none */
	int curl_code;	   /* CURLcode, 0 when fine */
	const char *error; /* "" on success, else what went wrong, naming the URL */
	const char *body;  /* reply body (NUL-terminated), empty when on_data consumed it */
	size_t body_len;
	double elapsed_ms;
};

/* Runs on the multi thread, exactly once per submitted request (success, error, timeout or
 * cancel). result and everything it points to is valid only during the call. Do not block
 * here: it stalls every request; submit and cancel may be called from it. */
typedef void (*herd_http_done_fn)(const struct herd_http_result *result, void *userdata);
/* Optional streaming: called on the multi thread with each piece of the body as it arrives
 * (the body is then not collected). Return false to abort the request (err CANCELLED). */
typedef bool (*herd_http_data_fn)(const char *data, size_t len, void *userdata);

struct herd_http_request {
	const char *method; /* NULL = POST when there is a body, else GET */
	const char *url;
	const char *const *headers; /* "Name: value" lines, copied */
	size_t n_headers;
	const void *body; /* copied; NULL = none */
	size_t body_len;
	const char *content_type;  /* for the body; NULL = "application/json" */
	long connect_timeout_ms;   /* 0 = HERD_HTTP_CONNECT_TIMEOUT_MS */
	long timeout_ms;	   /* whole transfer; 0 = none (use idle_timeout_ms for streams) */
	long idle_timeout_ms;	   /* no byte received for this long → timeout; 0 = none */
	size_t max_reply_bytes;	   /* 0 = HERD_MAX_REQUEST_BYTES; over it → HERD_ERR_LIMIT */
	herd_http_data_fn on_data; /* optional */
	herd_http_done_fn on_done; /* required */
	void *userdata;
};

enum herd_err herd_http_multi_new(struct herd_http_multi **out);
/* Thread-safe. On success *id (may be NULL) identifies the request for cancel and its
 * on_done will run exactly once. On failure on_done never runs. */
enum herd_err herd_http_multi_submit(struct herd_http_multi *m, const struct herd_http_request *r,
				     uint64_t *id);
/* Thread-safe. The request ends with err HERD_ERR_CANCELLED (its on_done runs on the multi
 * thread, maybe after this returns). HERD_ERR_NOT_FOUND when it already finished. */
enum herd_err herd_http_multi_cancel(struct herd_http_multi *m, uint64_t id);
/* Number of requests submitted and not yet finished. */
size_t herd_http_multi_pending(struct herd_http_multi *m);
/* Cancels what is in flight (their on_done runs with CANCELLED), stops the thread, frees.
 * Not from an on_done. NULL is a no-op. */
void herd_http_multi_free(struct herd_http_multi *m);

/* ======================================================================================
 * Server-Sent Events client side
 * ====================================================================================== */

/* One parsed event: name ("message" when the stream gave none), data (the data: lines
 * joined by "\n"), id ("" when none). Return false to stop the stream. */
typedef bool (*herd_sse_event_fn)(const char *event, const char *data, const char *id,
				  void *userdata);

/* Incremental parser (text/event-stream, WHATWG rules: comments, CR/LF/CRLF, one leading
 * space after the colon removed), for feeding from a herd_http_data_fn. */
struct herd_sse_parser;
struct herd_sse_parser *herd_sse_parser_new(herd_sse_event_fn on_event, void *userdata);
/* Returns false once on_event asked to stop, or when an event grew over
 * HERD_SSE_MAX_EVENT_BYTES (then herd_last_error() says so). */
bool herd_sse_parser_feed(struct herd_sse_parser *p, const char *data, size_t len);
void herd_sse_parser_free(struct herd_sse_parser *p);

/* Blocking: GET url (or POST body as JSON when body is not NULL) and call on_event for each
 * event as it arrives, on the calling thread. Returns HERD_OK when the server ended the
 * stream or on_event returned false; HERD_ERR_NET on connection failure or a non-2xx
 * status (the message names URL and status), HERD_ERR_TIMEOUT when nothing (not even a
 * heartbeat) arrived for idle_timeout_ms (0 = no limit). */
enum herd_err herd_http_sse(const char *url, const json_t *body, long idle_timeout_ms,
			    herd_sse_event_fn on_event, void *userdata);

#endif
