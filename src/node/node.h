/* node — one herd process: the HTTP API, the worker (models, slots, a queue of fragments),
 * the coordinator (split a job, dispatch its fragments to peers and to itself, aggregate),
 * job state with Server-Sent Events, and the OpenAI-compatible endpoints.
 *
 * The one thing to know: every request runs on its own connection thread (net), and may
 * block there; inference only ever runs on the worker's slot threads. Threads, the life of
 * a job and the endpoints: docs/node.md. */
#ifndef HERD_NODE_H
#define HERD_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

/* A model to serve: requests name it `name`; `path` is its GGUF file. */
struct herd_node_model {
	const char *name;
	const char *path;
};

struct herd_node_params {
	const char *host;	  /* address to bind; default "127.0.0.1" */
	uint16_t port;		  /* 0 = a free port (read it back with herd_node_port) */
	const char *advertise;	  /* "host:port" others reach us at; NULL = host:bound port */
	const char *const *peers; /* base URLs of peers ("http://10.0.0.2:7070"), copied */
	size_t n_peers;
	const struct herd_node_model *models; /* copied; each loaded once at start */
	size_t n_models;
	int threads; /* compute threads in all; 0 = the machine's cores */
	int slots;   /* fragments run at once; 1..HERD_MAX_SLOTS, default 1 */
	/* Discovery (OpenDHT) starts when dht is true (docs/protocol.md "Discovery in the node") */
	bool dht;
	uint16_t dht_port;
	const char *const *bootstrap;
	size_t n_bootstrap;
	const char *swarm;
	const char *data_dir;
	int cores;	   /* > 0: advertise at most this many cores */
	int64_t memory_mb; /* > 0: advertise at most this much memory */
};

/* host 127.0.0.1, port 0, slots 1, everything else empty. */
struct herd_node_params herd_node_default_params(void);

struct herd_node;

/* Loads the models, starts the worker's slot threads and the HTTP server (and discovery when
 * asked). Errors name the field or file ("models[0] (tiny): ...", "listen: cannot bind ...").
 * *out on success; stop and free with herd_node_free. */
enum herd_err herd_node_start(const struct herd_node_params *p, struct herd_node **out);

/* Cancels every job and fragment in flight (their clients get a CANCELLED error), stops the
 * server, joins every thread, frees. NULL is a no-op. Not from a handler. */
void herd_node_free(struct herd_node *n);

/* The node's id (the peer id with discovery, else a random 32-hex id). Valid until free. */
const char *herd_node_id(const struct herd_node *n);
/* The bound HTTP port. */
uint16_t herd_node_port(const struct herd_node *n);
/* "http://host:port" of the advertised address. Valid until free. */
const char *herd_node_url(const struct herd_node *n);

#endif
