/* discovery — the node's view of the swarm: glue between the node process and src/swarm
 * (identity, signed capability records on OpenDHT, the peer table, FIND_NODES).
 *
 * The node starts one herd_discovery with its config; discovery announces the node's record
 * and keeps it fresh, tells the swarm about load changes and measured speeds, answers
 * FIND_NODES and GET /v1/nodes, and gives the coordinator the peers it may use for a model.
 * The one thing to know: records come from strangers. A discovered peer is handed to the
 * coordinator only after its own NODE_INFO answer (POST http://ADDRESS/v1/command) names the
 * same peer id and the same models as its record; a background thread does that check and
 * repeats it when the record's address or models change. Thread-safe throughout. */
#ifndef HERD_DISCOVERY_H
#define HERD_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base.h"
#include "limits.h"
#include "swarm.h"

/* A model the node serves: its request name and its GGUF file. */
struct herd_discovery_model {
	const char *name;
	const char *path;
};

struct herd_discovery_params {
	const char *advertise;	      /* "host:port" of our HTTP API as others reach it (required;
					 not 0.0.0.0) */
	uint16_t dht_port;	      /* UDP port of the DHT; 0 = any */
	const char *const *bootstrap; /* "HOST:PORT" DHT addresses; none = first node */
	size_t n_bootstrap;
	const char *swarm;    /* NULL = "default" */
	const char *data_dir; /* identity.key lives here; NULL = herd_discovery_default_data_dir */
	const struct herd_discovery_model *models; /* copied; at most HERD_CAP_MAX_MODELS */
	size_t n_models;
	int slots;		      /* fragments run at once, 1..HERD_MAX_SLOTS */
	int cores;		      /* > 0: advertise min(cores, measured) */
	int64_t memory_mb;	      /* > 0: advertise min(memory_mb, measured) */
	int64_t announce_interval_ms; /* 0 = 3000 (also the DHT get interval) */
	int64_t stale_ms; /* peer records older than this vanish; 0 = HERD_PEERS_STALE_MS */
	bool verify;	  /* NODE_INFO check before a peer is used (default true) */
};

/* advertise NULL, swarm "default", slots 1, verify true, everything else 0/NULL. */
struct herd_discovery_params herd_discovery_default_params(void);

/* The data dir used when none is given, for one advertise address: $XDG_STATE_HOME/herd/
 * node-<address> when XDG_STATE_HOME is set, else /tmp/herd-<uid>/node-<address> (':', '[' and
 * ']' of the address become '_'). Writes at most size bytes; false when it does not fit. */
bool herd_discovery_default_data_dir(const char *advertise, char *out, size_t size);

struct herd_discovery;

/* Loads (or creates) the identity, reads every model file once (size, SHA-256 streamed with
 * libsodium, tensor types from the GGUF header), measures the machine, starts the DHT and
 * announces the record. Errors name the field or file ("models[1] (other): ...: not a GGUF
 * file", "advertise: must be HOST:PORT ..."); HERD_ERR_BAD_INPUT / IO / FORMAT / LIMIT.
 * *out on success; free with herd_discovery_free. */
enum herd_err herd_discovery_start(const struct herd_discovery_params *p,
				   struct herd_discovery **out);

/* Stops announcing, shuts the DHT down cleanly (DEPENDENCIES.md), stops the verifier, frees.
 * NULL is a no-op. */
void herd_discovery_free(struct herd_discovery *d);

/* Our peer id (32 hex chars; stable for a data dir). Valid until free. */
const char *herd_discovery_peer_id(const struct herd_discovery *d);
/* The UDP port of the DHT runner (others bootstrap off HOST:this). */
uint16_t herd_discovery_dht_port(const struct herd_discovery *d);
/* The data dir actually used. Valid until free. */
const char *herd_discovery_data_dir(const struct herd_discovery *d);

/* The worker's load changed: fragments running and waiting. Re-announced at once (at most
 * every 250 ms). Values are clamped to the record's ranges. */
void herd_discovery_set_load(struct herd_discovery *d, int running, int queued);

/* A measured generation speed of one of our models (0 = unknown); re-announced with the next
 * record. HERD_ERR_NOT_FOUND for a model we do not serve, HERD_ERR_BAD_INPUT for a speed
 * outside 0..HERD_CAP_MAX_TOKENS_PER_S. */
enum herd_err herd_discovery_set_speed(struct herd_discovery *d, const char *model_name,
				       double tokens_per_s);

/* FIND_NODES: params (the command's params object, NULL = no filters) to the result
 * {"nodes": [peer, ...], "count": N}, best first (herd_peers_find; each peer as
 * herd_peer_to_json plus "verified": bool and "self": bool). Bad params: HERD_ERR_BAD_INPUT
 * naming the field, *result NULL. Caller owns *result. */
enum herd_err herd_discovery_find_nodes(struct herd_discovery *d, const json_t *params,
					json_t **result);

/* GET /v1/nodes: {"peer_id", "swarm", "dht_port", "nodes": [...], "count"} — the same table
 * as FIND_NODES without filters. New reference. */
json_t *herd_discovery_nodes_json(struct herd_discovery *d);

/* Adds discovery's part of a NODE_INFO result to result (an object): "peer_id" and "node_id"
 * (both our peer id), "swarm", "dht_port", "capability" (our current record, no signature)
 * and, when result has no "models" yet, "models" (the record's model entries). Peers verify
 * each other with exactly these fields. */
void herd_discovery_node_info(struct herd_discovery *d, json_t *result);

/* A peer the coordinator may send fragments to. */
struct herd_discovered_peer {
	char peer_id[HERD_PEER_ID_HEX + 1];
	char url[HERD_CAP_MAX_ADDRESS + 8]; /* "http://host:port" (no trailing slash) */
	int slots, free_slots;
	double tokens_per_s; /* of the model asked for; 0 = not measured */
	double reputation;   /* 0..1 */
	bool is_self;	     /* this node itself (never NODE_INFO-checked) */
};

/* The fresh peers that serve model_name (NULL = any) and passed the NODE_INFO check, plus
 * this node itself when it serves the model, best first (as FIND_NODES). A peer whose check
 * has not run yet is checked now (HERD_DISCOVERY_VERIFY_TIMEOUT_MS each); a peer that failed
 * it is left out until a later check passes. *out is malloc'd (caller frees; NULL when none);
 * returns the count. */
size_t herd_discovery_peers_for_model(struct herd_discovery *d, const char *model_name,
				      struct herd_discovered_peer **out);

/* The scheduler's verdict on a peer (0..1); HERD_ERR_NOT_FOUND when unknown. */
enum herd_err herd_discovery_set_reputation(struct herd_discovery *d, const char *peer_id,
					    double reputation);

/* The peer table itself (borrowed; lives as long as d), for code that needs more. */
struct herd_peers *herd_discovery_peers(struct herd_discovery *d);

#endif
