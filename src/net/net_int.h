/* net internals shared by server.c and sse.c: the server side of an SSE stream.
 * A stream has two owners — the producer (released by herd_sse_close) and the MHD response
 * (released by the response's free callback) — and is freed when both are done. */
#ifndef HERD_NET_INT_H
#define HERD_NET_INT_H

#include <pthread.h>
#include <sys/types.h>

#include "net.h"

struct herd_sse {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *buf; /* bytes queued for the client: buf[off..len) */
	size_t len, cap, off;
	int refs;	 /* producer + response */
	bool closed;	 /* the producer called herd_sse_close */
	bool gone;	 /* the server is done with it (client left, stream ended, shutdown) */
	bool stopping;	 /* the server is shutting down: end now */
	bool in_gone_cb; /* on_gone is running on gone_thread */
	pthread_t gone_thread;
	unsigned heartbeat_ms;
	herd_sse_gone_fn on_gone;
	void *userdata;
	struct herd_http_server *srv; /* for unlinking; NULL once unlinked */
	struct herd_sse *prev, *next; /* the server's list of live streams (srv->mu) */
};

struct herd_sse *herd_sse_new_(unsigned heartbeat_ms, herd_sse_gone_fn on_gone, void *userdata);
/* MHD content reader: blocks until data, end, heartbeat time or shutdown. */
ssize_t herd_sse_read_(void *cls, uint64_t pos, char *buf, size_t max);
/* The response's reference is dropped (MHD free callback); tells the producer if it
 * has not closed yet. */
void herd_sse_server_release_(void *cls);
/* Shutdown: make the reader end now. */
void herd_sse_stop_(struct herd_sse *s);

/* The server's list of live streams (server.c). */
void herd_http_server_unlink_stream_(struct herd_http_server *srv, struct herd_sse *s);

#endif
