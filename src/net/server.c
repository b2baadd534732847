/* server — herd's HTTP server on libmicrohttpd, one thread per connection.
 *
 * The one thing to know: every handler runs on its connection's own thread, so it may block
 * (inference takes minutes) without holding up anyone else; the bodies are collected before
 * the handler runs, and over-limit bodies are refused with 413 before they are stored. */
#define _GNU_SOURCE
#include "net_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "limits.h"

struct herd_http_server {
	struct MHD_Daemon *daemon;
	struct herd_http_route *routes; /* method and path strdup'd */
	size_t n_routes;
	size_t max_body;
	unsigned heartbeat_ms;
	uint16_t port;
	pthread_mutex_t mu;
	pthread_cond_t streams_cv; /* signalled when a stream leaves the list */
	struct herd_sse *streams;  /* live SSE streams, to end them at shutdown */
	bool stopping;
};

struct herd_http_req {
	struct MHD_Connection *conn;
	const char *method, *path, *rest;
	char *body;
	size_t len, cap;
	bool answered;	  /* a response was queued (a 413 possibly before the body was read) */
	bool too_large;	  /* a body without Content-Length grew over the limit */
	size_t discarded; /* bytes dropped since */
};

struct resp_header {
	char *name, *value;
};

struct herd_http_resp {
	struct herd_http_server *srv;
	unsigned status;
	char *body;
	size_t len;
	char *content_type;
	struct resp_header *headers;
	size_t n_headers;
	struct herd_sse *sse;
	bool set;
};

struct herd_http_server_params herd_http_server_default_params(void)
{
	return (struct herd_http_server_params){
	    .host = "127.0.0.1",
	    .max_request_bytes = HERD_MAX_REQUEST_BYTES,
	    .max_connections = HERD_HTTP_MAX_CONNECTIONS,
	    .thread_stack_bytes = HERD_HTTP_THREAD_STACK_BYTES,
	    .sse_heartbeat_ms = HERD_SSE_HEARTBEAT_MS,
	    .idle_timeout_s = HERD_HTTP_IDLE_TIMEOUT_S,
	};
}

/* ---- the request ---- */

const char *herd_http_req_method(const struct herd_http_req *req)
{
	return req->method;
}

const char *herd_http_req_path(const struct herd_http_req *req)
{
	return req->path;
}

const char *herd_http_req_path_rest(const struct herd_http_req *req)
{
	return req->rest ? req->rest : "";
}

const char *herd_http_req_query(const struct herd_http_req *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *herd_http_req_header(const struct herd_http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *herd_http_req_body(const struct herd_http_req *req, size_t *len)
{
	if (len)
		*len = req->len;
	return req->body ? req->body : "";
}

enum herd_err herd_http_req_json(const struct herd_http_req *req, json_t **out)
{
	*out = NULL;
	if (req->len == 0)
		return herd_fail(HERD_ERR_BAD_INPUT, "body: empty, expected a JSON document");
	json_error_t e;
	json_t *j = json_loadb(req->body, req->len, JSON_REJECT_DUPLICATES, &e);
	if (!j)
		return herd_fail(HERD_ERR_BAD_INPUT, "body: invalid JSON at line %d column %d: %s",
				 e.line, e.column, e.text);
	*out = j;
	return HERD_OK;
}

/* ---- the response ---- */

static void resp_reset(struct herd_http_resp *resp)
{
	free(resp->body);
	free(resp->content_type);
	resp->body = resp->content_type = NULL;
	resp->len = 0;
	if (resp->sse) { /* replaced: the server lets go of the stream it will never serve */
		struct herd_sse *s = resp->sse;
		resp->sse = NULL;
		herd_sse_server_release_(s);
	}
	resp->set = true;
}

void herd_http_resp_json(struct herd_http_resp *resp, unsigned status, json_t *body)
{
	resp_reset(resp);
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(body);
	if (!text) {
		herd_http_resp_error(resp, 500, HERD_ERR_INTERNAL,
				     "response: not encodable as JSON");
		return;
	}
	resp->status = status;
	resp->len = strlen(text);
	resp->body = text;
	resp->content_type = herd_xstrdup("application/json");
}

void herd_http_resp_text(struct herd_http_resp *resp, unsigned status, const char *content_type,
			 const char *text)
{
	resp_reset(resp);
	resp->status = status;
	resp->body = herd_xstrdup(text ? text : "");
	resp->len = strlen(resp->body);
	resp->content_type =
	    herd_xstrdup(content_type ? content_type : "text/plain; charset=utf-8");
}

static json_t *error_envelope(enum herd_err err, const char *message)
{
	return json_pack("{s:s, s:{s:s, s:s}}", "status", "error", "error", "code",
			 herd_errcode(err), "message", message);
}

void herd_http_resp_error(struct herd_http_resp *resp, unsigned status, enum herd_err err,
			  const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	herd_http_resp_json(resp, status, error_envelope(err, msg));
}

void herd_http_resp_header(struct herd_http_resp *resp, const char *name, const char *value)
{
	resp->headers = herd_xrealloc(resp->headers, (resp->n_headers + 1) * sizeof *resp->headers);
	resp->headers[resp->n_headers++] =
	    (struct resp_header){herd_xstrdup(name), herd_xstrdup(value)};
}

struct herd_sse *herd_http_resp_sse(struct herd_http_resp *resp, herd_sse_gone_fn on_gone,
				    void *userdata)
{
	resp_reset(resp);
	struct herd_http_server *srv = resp->srv;
	struct herd_sse *s = herd_sse_new_(srv->heartbeat_ms, on_gone, userdata);
	pthread_mutex_lock(&srv->mu);
	s->srv = srv;
	s->next = srv->streams;
	if (srv->streams)
		srv->streams->prev = s;
	srv->streams = s;
	if (srv->stopping)
		s->stopping = true;
	pthread_mutex_unlock(&srv->mu);
	resp->status = 200;
	resp->sse = s;
	return s;
}

void herd_http_server_unlink_stream_(struct herd_http_server *srv, struct herd_sse *s)
{
	pthread_mutex_lock(&srv->mu);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->srv = NULL;
	pthread_cond_broadcast(&srv->streams_cv);
	pthread_mutex_unlock(&srv->mu);
}

static enum MHD_Result queue(struct MHD_Connection *conn, struct herd_http_resp *resp)
{
	struct MHD_Response *r;
	if (resp->sse) {
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, herd_sse_read_,
						      resp->sse, herd_sse_server_release_);
		if (!r) {
			herd_sse_server_release_(resp->sse);
			resp->sse = NULL;
			return MHD_NO;
		}
		resp->sse = NULL; /* the response owns the server's reference now */
		MHD_add_response_header(r, "Content-Type", "text/event-stream");
		MHD_add_response_header(r, "Cache-Control", "no-cache");
	} else {
		r = MHD_create_response_from_buffer(resp->len, resp->body, MHD_RESPMEM_MUST_FREE);
		if (!r)
			return MHD_NO;
		resp->body = NULL;
		if (resp->content_type)
			MHD_add_response_header(r, "Content-Type", resp->content_type);
	}
	for (size_t i = 0; i < resp->n_headers; i++)
		MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
	enum MHD_Result ret = MHD_queue_response(conn, resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static void resp_free(struct herd_http_resp *resp)
{
	if (resp->sse)
		herd_sse_server_release_(resp->sse);
	free(resp->body);
	free(resp->content_type);
	for (size_t i = 0; i < resp->n_headers; i++) {
		free(resp->headers[i].name);
		free(resp->headers[i].value);
	}
	free(resp->headers);
}

static enum MHD_Result answer_error(struct herd_http_server *srv, struct MHD_Connection *conn,
				    unsigned status, enum herd_err err, const char *extra_header,
				    const char *extra_value, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static enum MHD_Result answer_error(struct herd_http_server *srv, struct MHD_Connection *conn,
				    unsigned status, enum herd_err err, const char *extra_header,
				    const char *extra_value, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct herd_http_resp resp = {.srv = srv};
	herd_http_resp_json(&resp, status, error_envelope(err, msg));
	if (extra_header)
		herd_http_resp_header(&resp, extra_header, extra_value);
	enum MHD_Result ret = queue(conn, &resp);
	resp_free(&resp);
	return ret;
}

static bool path_matches(const struct herd_http_route *r, const char *path)
{
	if (r->prefix)
		return strncmp(path, r->path, strlen(r->path)) == 0;
	return strcmp(path, r->path) == 0;
}

static enum MHD_Result dispatch(struct herd_http_server *srv, struct herd_http_req *req)
{
	const struct herd_http_route *route = NULL;
	char allow[256] = "";
	for (size_t i = 0; i < srv->n_routes; i++) {
		const struct herd_http_route *r = &srv->routes[i];
		if (!path_matches(r, req->path))
			continue;
		if (strcmp(r->method, req->method) == 0 ||
		    (strcmp(req->method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
			route = r;
			break;
		}
		if (!strstr(allow, r->method) &&
		    strlen(allow) + strlen(r->method) + 3 < sizeof allow) {
			if (allow[0])
				strcat(allow, ", ");
			strcat(allow, r->method);
		}
	}
	if (!route && allow[0])
		return answer_error(srv, req->conn, 405, HERD_ERR_BAD_INPUT, "Allow", allow,
				    "%s %s: method not allowed (allowed: %s)", req->method,
				    req->path, allow);
	if (!route)
		return answer_error(srv, req->conn, 404, HERD_ERR_NOT_FOUND, NULL, NULL,
				    "%s: no such path", req->path);
	req->rest = route->prefix ? req->path + strlen(route->path) : "";
	struct herd_http_resp resp = {.srv = srv};
	route->handler(req, &resp, route->userdata);
	if (!resp.set)
		herd_http_resp_error(&resp, 500, HERD_ERR_INTERNAL,
				     "%s %s: the handler gave no answer", req->method, req->path);
	enum MHD_Result ret = queue(req->conn, &resp);
	resp_free(&resp);
	return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct herd_http_server *srv = cls;
	struct herd_http_req *req = *con_cls;
	if (!req) { /* first call: headers only */
		req = herd_xcalloc(1, sizeof *req);
		req->conn = conn;
		req->method = method;
		req->path = url;
		*con_cls = req;
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			unsigned long long n = strtoull(cl, &end, 10);
			if (end != cl && n > srv->max_body) {
				req->answered = true;
				return answer_error(
				    srv, conn, 413, HERD_ERR_LIMIT, NULL, NULL,
				    "body: %llu bytes is over the limit of %zu bytes", n,
				    srv->max_body);
			}
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (req->answered)
			return MHD_YES; /* refused at the headers already: drop the rest */
		if (req->too_large) {
			/* MHD 0.9.75 cannot answer in the middle of an upload, so the rest is
			 * read and dropped, and the 413 goes out when it ends. A body that
			 * goes on past twice the limit gets the connection closed instead. */
			req->discarded += n;
			return req->discarded > srv->max_body ? MHD_NO : MHD_YES;
		}
		if (req->len + n > srv->max_body) {
			/* A chunked upload without Content-Length grew over the limit: stop
			 * storing. */
			req->too_large = true;
			req->discarded = req->len + n - srv->max_body;
			free(req->body);
			req->body = NULL;
			req->len = req->cap = 0;
			return MHD_YES;
		}
		if (req->len + n + 1 > req->cap) {
			size_t cap = req->cap ? req->cap : 4096;
			while (cap < req->len + n + 1)
				cap *= 2;
			req->body = herd_xrealloc(req->body, cap);
			req->cap = cap;
		}
		memcpy(req->body + req->len, upload_data, n);
		req->len += n;
		req->body[req->len] = 0;
		return MHD_YES;
	}
	if (req->answered)
		return MHD_YES;
	req->answered = true;
	if (req->too_large)
		return answer_error(srv, conn, 413, HERD_ERR_LIMIT, NULL, NULL,
				    "body: over the limit of %zu bytes", srv->max_body);
	return dispatch(srv, req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct herd_http_req *req = *con_cls;
	if (!req)
		return;
	free(req->body);
	free(req);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = 0;
	herd_log(DEBUG, "microhttpd: %s", msg);
}

enum herd_err herd_http_server_new(const struct herd_http_server_params *p,
				   struct herd_http_server **out)
{
	*out = NULL;
	struct herd_http_server_params d = herd_http_server_default_params();
	const char *host = p->host ? p->host : d.host;
	struct sockaddr_storage ss = {0};
	unsigned ipv6 = 0;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(p->port);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(p->port);
		ipv6 = MHD_USE_IPv6;
	} else {
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "listen host: must be an IPv4 or IPv6 address, got '%s'", host);
	}
	for (size_t i = 0; i < p->n_routes; i++) {
		const struct herd_http_route *r = &p->routes[i];
		if (!r->method || !r->path || r->path[0] != '/' || !r->handler)
			return herd_fail(
			    HERD_ERR_BAD_INPUT,
			    "routes[%zu]: needs a method, a path starting with '/' and a handler",
			    i);
	}
	signal(SIGPIPE, SIG_IGN);

	struct herd_http_server *srv = herd_xcalloc(1, sizeof *srv);
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->streams_cv, NULL);
	srv->max_body = p->max_request_bytes ? p->max_request_bytes : d.max_request_bytes;
	srv->heartbeat_ms = p->sse_heartbeat_ms ? p->sse_heartbeat_ms : d.sse_heartbeat_ms;
	srv->n_routes = p->n_routes;
	srv->routes = herd_xcalloc(p->n_routes ? p->n_routes : 1, sizeof *srv->routes);
	for (size_t i = 0; i < p->n_routes; i++) {
		srv->routes[i] = p->routes[i];
		srv->routes[i].method = herd_xstrdup(p->routes[i].method);
		srv->routes[i].path = herd_xstrdup(p->routes[i].path);
	}
	unsigned max_conn = p->max_connections ? p->max_connections : d.max_connections;
	size_t stack = p->thread_stack_bytes ? p->thread_stack_bytes : d.thread_stack_bytes;
	unsigned idle = p->idle_timeout_s ? p->idle_timeout_s : d.idle_timeout_s;
	/* poll, not select: connection fds may be above FD_SETSIZE with hundreds held. */
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD |
			 MHD_USE_ITC | MHD_USE_ERROR_LOG | ipv6;
	srv->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, max_conn,
	    MHD_OPTION_THREAD_STACK_SIZE, stack, MHD_OPTION_CONNECTION_TIMEOUT, idle,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, srv, MHD_OPTION_END);
	if (!srv->daemon) {
		enum herd_err err = herd_fail(
		    HERD_ERR_NET,
		    "listen %s:%u: cannot bind (in use, or not an address of this machine)", host,
		    (unsigned)p->port);
		herd_http_server_free(srv);
		return err;
	}
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : p->port;
	*out = srv;
	return HERD_OK;
}

uint16_t herd_http_server_port(const struct herd_http_server *srv)
{
	return srv->port;
}

void herd_http_server_free(struct herd_http_server *srv)
{
	if (!srv)
		return;
	if (srv->daemon) {
		/* Quiescing hands the listening socket to us; it may be closed only after
		 * MHD_stop_daemon (a connection thread could still look at it). */
		MHD_socket ls = MHD_quiesce_daemon(srv->daemon);
		pthread_mutex_lock(&srv->mu);
		srv->stopping = true;
		for (struct herd_sse *s = srv->streams; s; s = s->next)
			herd_sse_stop_(s);
		/* Let the streams end cleanly (last chunk written, so clients see an end and
		 * not a cut) before MHD_stop_daemon closes the sockets; bounded, as a client
		 * that reads nothing must not hold up shutdown. */
		struct timespec deadline;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += HERD_HTTP_SHUTDOWN_DRAIN_MS / 1000;
		while (srv->streams &&
		       pthread_cond_timedwait(&srv->streams_cv, &srv->mu, &deadline) == 0)
			;
		pthread_mutex_unlock(&srv->mu);
		/* Joins every connection thread: waits for handlers still running. */
		MHD_stop_daemon(srv->daemon);
		if (ls != MHD_INVALID_SOCKET)
			close(ls);
	}
	HERD_ASSERT(srv->streams == NULL);
	for (size_t i = 0; i < srv->n_routes; i++) {
		free((char *)srv->routes[i].method);
		free((char *)srv->routes[i].path);
	}
	free(srv->routes);
	pthread_mutex_destroy(&srv->mu);
	pthread_cond_destroy(&srv->streams_cv);
	free(srv);
}
