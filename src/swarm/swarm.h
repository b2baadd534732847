/* swarm — finding other nodes (discovery: identity, capability records over OpenDHT, the
 * peer table) and deciding where fragments go (the scheduler).
 *
 * Discovery in one paragraph: every node has an ed25519 identity kept in its data dir. It
 * announces a signed capability record (JSON, docs/protocol.md "Capability records") under the
 * DHT key "herd/v1/swarm/<swarm>", re-announcing every few seconds with a fresh timestamp.
 * Every node listens on that key and keeps a peer table of the newest valid record per peer;
 * records older than the staleness window are dropped, so a dead node vanishes within it even
 * though its DHT value lingers for 10 minutes. Records from the DHT are input from strangers:
 * decoded field by field, size-limited and signature-checked.
 *
 * The scheduler decides but does not send: it is a pure, event-driven state machine with
 * no I/O, no threads and no clock (time is passed in as now_ms). The coordinator feeds it
 * events (peers seen or gone, jobs, attempt results) and carries out the actions that
 * herd_sched_poll() returns; bench/sched_sim.c drives the very same code in simulation.
 * The model and its constants are described in docs/scheduling.md. */
#ifndef HERD_SWARM_H
#define HERD_SWARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base.h"
#include "limits.h"

/* ---- discovery ---- */

#define HERD_PEER_ID_HEX 32    /* hex chars of a peer id (16 bytes) */
#define HERD_PUBLIC_KEY_LEN 32 /* ed25519 public key bytes */
#define HERD_SECRET_KEY_LEN 64 /* ed25519 secret key bytes (libsodium layout: seed || public key)  \
				*/
#define HERD_SIGNATURE_LEN 64  /* ed25519 signature bytes */

/* A node's identity. The secret key never leaves the process. */
struct herd_identity {
	uint8_t public_key[HERD_PUBLIC_KEY_LEN];
	uint8_t secret_key[HERD_SECRET_KEY_LEN];
	char peer_id[HERD_PEER_ID_HEX +
		     1]; /* hex of the first 16 bytes of BLAKE2b-256(public_key) */
};

/* Loads DIR/identity.key, or creates it (mode 0600; DIR is created, mode 0700, when missing)
 * on first start. The same dir always gives the same peer id. A corrupt or unreadable file
 * is an error (HERD_ERR_FORMAT / HERD_ERR_IO, message names the file); it is never replaced. */
enum herd_err herd_identity_load_or_create(const char *data_dir, struct herd_identity *out);

/* A fresh identity that lives in memory only (tests, throw-away nodes). */
void herd_identity_generate(struct herd_identity *out);

/* Writes the peer id of a public key: 32 lower-case hex chars and a NUL. */
void herd_peer_id_of(const uint8_t public_key[HERD_PUBLIC_KEY_LEN], char out[HERD_PEER_ID_HEX + 1]);

/* Current Unix time in milliseconds (wall clock: records carry it across machines). */
int64_t herd_unix_ms(void);

struct herd_model_cap {
	char name[HERD_CAP_MAX_NAME + 1]; /* the name requests use (-m NAME=...) */
	uint64_t size_bytes;		  /* size of the GGUF file */
	char sha256[65];		  /* of the GGUF file, lower-case hex */
	char tensor_types[HERD_CAP_MAX_TENSOR_TYPES]
			 [HERD_CAP_MAX_TYPE_NAME + 1]; /* "q8_0", "f32" */
	int n_tensor_types;
	double tokens_per_s; /* measured generation speed; 0 = not measured yet */
};

/* What a node offers, as announced in its capability record. Plain data: copy freely. */
struct herd_capability {
	char peer_id[HERD_PEER_ID_HEX + 1];
	uint8_t public_key[HERD_PUBLIC_KEY_LEN];
	char address[HERD_CAP_MAX_ADDRESS +
		     1];		    /* "host:port" of the HTTP API, reachable by others */
	char swarm[HERD_CAP_MAX_SWARM + 1]; /* [A-Za-z0-9._-]{1,64} */
	int cpu_cores;			    /* 1..HERD_CAP_MAX_CORES */
	int64_t memory_mb;		    /* 1..HERD_CAP_MAX_MEMORY_MB */
	bool has_gpu;			    /* false: "gpu": null (herd has no GPU backend yet) */
	char gpu_name[HERD_CAP_MAX_NAME + 1];
	int64_t gpu_memory_mb;
	struct herd_model_cap models[HERD_CAP_MAX_MODELS];
	int n_models;
	int slots;   /* fragments the node runs at once, 1..HERD_MAX_SLOTS */
	int running; /* fragments running now, 0..slots */
	int queued;  /* fragments waiting, >= 0 */
	char version[HERD_CAP_MAX_VERSION + 1];
	int64_t timestamp_ms; /* Unix ms when the record was signed */
	uint64_t seq;	      /* grows with every announce of one identity (< 2^53) */
};

/* Fills cap with this machine's measurements and the identity: cpu_cores (sysconf online
 * processors), memory_mb (/proc/meminfo MemTotal), slots 1, version HERD_VERSION, no models,
 * no GPU. The caller then sets address, swarm and models and may lower cores/memory
 * (operator flags). Fails (HERD_ERR_IO) only when the machine cannot be measured. */
enum herd_err herd_capability_measure(const struct herd_identity *id, struct herd_capability *cap);

/* Signs cap with id and writes the record as compact JSON with sorted keys. cap->peer_id and
 * cap->public_key must be id's (HERD_ASSERT). Every field is validated as decode would, so a
 * node never announces a record others refuse; the first bad field is named in the message
 * ("capability.slots: must be 1..256, got 0"). *out is malloc'd, NUL-terminated, *out_len
 * excludes the NUL; caller frees. HERD_ERR_LIMIT when the record exceeds HERD_CAP_MAX_BYTES. */
enum herd_err herd_capability_encode(const struct herd_capability *cap,
				     const struct herd_identity *id, char **out, size_t *out_len);

/* Decodes and checks a record received from anyone: size, JSON, every field's type and range,
 * address syntax, peer id = id of the public key, timestamp at most HERD_CAP_MAX_FUTURE_MS
 * ahead of now_ms, not older than max_age_ms (0 = any age; checked before the signature so
 * stale copies cost little), then the signature over the canonical bytes. On error *out is
 * unspecified and the message names the field ("capability.peer_id: does not match
 * public_key"). Unknown fields are allowed (they are covered by the signature). */
enum herd_err herd_capability_decode(const void *data, size_t len, int64_t now_ms,
				     int64_t max_age_ms, struct herd_capability *out);

/* The record's fields as a new JSON object (no signature): the shape of docs/protocol.md.
 * Caller owns the reference. */
json_t *herd_capability_to_json(const struct herd_capability *cap);

/* One entry of the peer table. */
struct herd_peer {
	struct herd_capability cap;
	double reputation;     /* 0..1, default 1.0; set by the scheduler */
	int64_t first_seen_ms; /* Unix ms when this table first saw the peer */
};

/* The peer table: the newest valid record per peer id. Thread-safe (one mutex). */
struct herd_peers;

/* stale_ms: records whose timestamp is older than this are invisible and dropped
 * (default HERD_PEERS_STALE_MS when 0). */
#define HERD_PEERS_STALE_MS 15000
struct herd_peers *herd_peers_new(int64_t stale_ms);
void herd_peers_free(struct herd_peers *t); /* NULL is a no-op */

/* The table's staleness window in ms. */
int64_t herd_peers_stale_ms(const struct herd_peers *t);

/* Inserts or replaces the peer's entry when cap is newer (timestamp, then seq) than the one
 * held; keeps the reputation. Returns 1 when the table changed, 0 when cap was not newer
 * or already stale, or -1 when the table is full (HERD_MAX_PEERS fresh peers). cap must be
 * a decoded, valid record. */
int herd_peers_update(struct herd_peers *t, const struct herd_capability *cap, int64_t now_ms);

/* Removes entries stale at now_ms (0 = current time); returns how many. */
size_t herd_peers_expire(struct herd_peers *t, int64_t now_ms);

/* Copies every fresh entry into a malloc'd array (*out, caller frees; NULL when none), sorted
 * by peer id; returns the count. now_ms 0 = current time. */
size_t herd_peers_snapshot(struct herd_peers *t, int64_t now_ms, struct herd_peer **out);

/* Copies the fresh entry of peer_id into *out; false when there is none. */
bool herd_peers_lookup(struct herd_peers *t, const char *peer_id, int64_t now_ms,
		       struct herd_peer *out);

/* Sets a peer's reputation (clamped to 0..1). HERD_ERR_NOT_FOUND when the peer is unknown. */
enum herd_err herd_peers_set_reputation(struct herd_peers *t, const char *peer_id,
					double reputation);

/* FIND_NODES filters. Zero / false / "" / negative max_load mean "no filter". */
struct herd_find_nodes {
	int min_cpu_cores;
	int64_t min_memory_mb;
	bool requires_gpu;
	char model_name[HERD_CAP_MAX_NAME + 1]; /* peer must list this model */
	double max_load; /* (running + queued) / slots must be <= this; < 0: any */
	int limit;	 /* at most this many results; 0 = all */
};

/* No filters, max_load -1, limit 0. */
struct herd_find_nodes herd_find_nodes_default(void);

/* Reads FIND_NODES params (a JSON object or NULL = no filters) into *out. Unknown fields and
 * wrong types are errors naming the field: "params.min_cpu_cores: must be a non-negative
 * integer". HERD_ERR_BAD_INPUT. */
enum herd_err herd_find_nodes_parse(const json_t *params, struct herd_find_nodes *out);

/* The fresh peers matching q, best first, in a malloc'd array (*out, caller frees). Order:
 * peers with a free slot first; then by score = reputation × speed × free slots (speed =
 * tokens/s of q->model_name, or the best of the peer's models when none is named; an
 * unmeasured speed counts as 1); then more free slots, higher reputation, peer id. */
size_t herd_peers_find(struct herd_peers *t, const struct herd_find_nodes *q, int64_t now_ms,
		       struct herd_peer **out);

/* A peer as JSON for FIND_NODES results and GET /v1/nodes: the record's fields (no "sig") plus
 * "reputation", "load_ratio" ((running + queued) / slots) and "free_slots". Caller owns the
 * reference. */
json_t *herd_peer_to_json(const struct herd_peer *p);

/* The DHT side: an OpenDHT runner that announces our record and fills a peer table. */
struct herd_dht;

struct herd_dht_params {
	uint16_t port;		      /* UDP port of the DHT runner; 0 = any (see herd_dht_port) */
	const char *const *bootstrap; /* "HOST:PORT" strings; none = first node of the swarm */
	size_t n_bootstrap;
	const char *swarm;	      /* swarm name; swarms never see each other */
	int64_t announce_interval_ms; /* re-announce period (default 3000) */
	int64_t get_interval_ms; /* full get of the swarm key besides the listen (default 5000) */
};

/* Defaults: port 0, no bootstrap, swarm "default", 3000 / 5000 ms. */
struct herd_dht_params herd_dht_default_params(void);

/* Starts a runner, bootstraps, listens on the swarm key and feeds peers (borrowed: it must
 * outlive the herd_dht). Our own record goes into peers too (the node is a worker as well);
 * filter by id.peer_id where only others are wanted. Nothing is announced until herd_dht_announce.
 * The record's staleness window is the peer table's. *out on success; caller frees with
 * herd_dht_free. */
enum herd_err herd_dht_start(const struct herd_dht_params *p, const struct herd_identity *id,
			     struct herd_peers *peers, struct herd_dht **out);

/* The UDP port the runner is bound to (IPv4). */
uint16_t herd_dht_port(const struct herd_dht *d);

/* Sets our record (copied; timestamp and seq are set here) and announces it now, then every
 * announce interval. cap->swarm must be the DHT's swarm. Errors as herd_capability_encode;
 * on error nothing changes. */
enum herd_err herd_dht_announce(struct herd_dht *d, const struct herd_capability *cap);

/* Updates the load in our record; re-announces at once when it changed. */
void herd_dht_set_load(struct herd_dht *d, int running, int queued);

/* Stops announcing (cancels the put), shuts the runner down (waits for OpenDHT's callback)
 * and frees it. NULL is a no-op. */
void herd_dht_free(struct herd_dht *d);

/* ---- scheduler ---- */

/* Tuning of the scheduler. Get the defaults with herd_sched_default_params() and change
 * what you need; every field is checked by herd_sched_new(). Times are milliseconds. */
struct herd_sched_params {
	int max_attempts;            /* failed attempts a fragment may use before its job fails (1..HERD_SCHED_MAX_ATTEMPTS) */
	double timeout_factor;       /* deadline = start + max(timeout_factor * expected, timeout_floor_ms) */
	double timeout_floor_ms;
	double retry_backoff_ms;     /* a failed fragment waits retry_backoff_ms * 2^(failures-1) ... */
	double retry_backoff_max_ms; /* ... at most this long, before it may start again */
	double peer_cooldown_ms;     /* a peer that failed gets no work for peer_cooldown_ms * 2^(consecutive-1) ... */
	double peer_cooldown_max_ms; /* ... at most this long */
	double straggler_done_frac;  /* backups start once this fraction of a job's fragments is done */
	double straggler_factor;     /* ... for attempts running longer than factor * median duration */
	double rep_alpha;            /* EWMA weight of the newest observation, 0 < alpha <= 1 */
	double rep_half_life_ms;     /* reputation moves halfway back to neutral in this time */
	double no_peers_grace_ms;    /* with no live peer for this long, waiting fragments fail */
};

/* The defaults (see docs/scheduling.md for why these values). */
struct herd_sched_params herd_sched_default_params(void);

/* What the caller must do. Every field is a copy: an action owns no memory. */
enum herd_sched_action_kind {
	HERD_SCHED_START,      /* send fragment `fragment` of `job_id` to `peer_id` as attempt `attempt` */
	HERD_SCHED_CANCEL,     /* abort attempt `attempt` (its result, if any comes, is discarded) */
	HERD_SCHED_JOB_DONE,   /* every fragment of `job_id` has an accepted result */
	HERD_SCHED_JOB_FAILED, /* every fragment settled, some used up their attempts: herd_sched_job_error() */
};

struct herd_sched_action {
	enum herd_sched_action_kind kind;
	char job_id[HERD_SCHED_MAX_ID + 1];
	size_t fragment;                     /* START, CANCEL: index within the job */
	uint64_t attempt;                    /* START, CANCEL: never 0 */
	char peer_id[HERD_SCHED_MAX_ID + 1]; /* START, CANCEL */
	double deadline_ms;                  /* START: the scheduler times the attempt out at this time */
	bool backup;                         /* START: a second copy for a straggler */
};

/* A peer's standing, for FIND_NODES / `herd nodes`. success and speed are in [0, 1] and
 * [0.05, 20]; neutral is 1 for both. */
struct herd_sched_peer_info {
	bool live;             /* false once removed (its record is kept for error messages) */
	int slots, running;
	double tokens_per_s;   /* claimed, per slot */
	double success;        /* EWMA of 1 = ok, 0 = failed, decayed toward 1 over time */
	double speed;          /* EWMA of measured / claimed tokens per second, decayed toward 1 */
	double effective_tps;  /* tokens_per_s * speed * success: what the scheduler plans with */
	int consecutive_failures;
	bool cooling;          /* given no work until cooling_until_ms (after failures) */
	double cooling_until_ms;
	uint64_t completed, failed;
};

struct herd_sched;

/* A new scheduler, or NULL with herd_last_error() naming the bad parameter. params may be
 * NULL for the defaults. Free with herd_sched_free (NULL is a no-op). */
struct herd_sched *herd_sched_new(const struct herd_sched_params *params);
void herd_sched_free(struct herd_sched *s);

/* Adds a peer, or updates one (and revives a removed one). id is copied (1..HERD_SCHED_MAX_ID
 * bytes); slots 1..HERD_MAX_SLOTS fragments at once; tokens_per_s > 0 is the claimed speed
 * of one slot on the job's model. HERD_ERR_BAD_INPUT / HERD_ERR_LIMIT, changing nothing. */
enum herd_err herd_sched_peer_upsert(struct herd_sched *s, const char *id, int slots,
				     double tokens_per_s);

/* Removes a peer: its running attempts fail ("peer removed"), and the next poll returns a
 * CANCEL for each. HERD_ERR_NOT_FOUND when no live peer has that id. */
enum herd_err herd_sched_peer_remove(struct herd_sched *s, const char *id);

/* The peer's standing at time now_ms; HERD_ERR_NOT_FOUND for an unknown id. */
enum herd_err herd_sched_peer_info(const struct herd_sched *s, const char *id, double now_ms,
				   struct herd_sched_peer_info *out);

/* Sets a known peer's standing as carried over from earlier jobs: success 0..1, speed
 * (measured / claimed) 0.05..20, the counts, and when it was last observed (the standing
 * decays toward neutral from then, as herd_sched_peer_info describes). HERD_ERR_NOT_FOUND
 * for an unknown id, HERD_ERR_BAD_INPUT for values out of range; nothing changes then. */
enum herd_err herd_sched_peer_restore(struct herd_sched *s, const char *id, double success,
				      double speed, uint64_t completed, uint64_t failed,
				      double observed_ms);

/* Adds a job of n fragments; cost[i] > 0 is fragment i's expected work in tokens (prompt
 * tokens + max_tokens). id and cost are copied. Jobs run in the order they were added.
 * HERD_ERR_BAD_INPUT (duplicate id, bad cost: the message names the index), HERD_ERR_LIMIT. */
enum herd_err herd_sched_job_add(struct herd_sched *s, const char *job_id, size_t n,
				 const double *cost);

/* Cancels a job: returns how many running attempts it had; the next poll returns a CANCEL
 * for each (and no JOB_DONE/FAILED). The job is forgotten at once. -1 when unknown. */
long herd_sched_job_cancel(struct herd_sched *s, const char *job_id);

/* Forgets a job after its JOB_DONE/JOB_FAILED (or at any time: like cancel). Unknown: no-op. */
void herd_sched_job_remove(struct herd_sched *s, const char *job_id);

/* Why a job failed: one line naming every failed fragment and each of its attempts' peer
 * and cause, e.g. "fragment 3 failed after 4 attempts: [1] peer a: connection refused; ...".
 * Owned by the scheduler; valid until the job is removed or this is called again for it.
 * NULL when the job is unknown or has no failed fragment. */
const char *herd_sched_job_error(struct herd_sched *s, const char *job_id);

/* Progress counts of a job; HERD_ERR_NOT_FOUND when unknown. Any pointer may be NULL. */
enum herd_err herd_sched_job_progress(const struct herd_sched *s, const char *job_id,
				      size_t *done, size_t *failed, size_t *running);

/* The decisions due at now_ms: timeouts (CANCEL), job endings, new attempts (START), and
 * straggler backups. Writes at most max actions to out and returns how many; when it
 * returns max, call it again. Call it after every event and when now_ms reaches
 * herd_sched_next_deadline(). now_ms must not go backwards (earlier values are raised). */
size_t herd_sched_poll(struct herd_sched *s, double now_ms, struct herd_sched_action *out,
		       size_t max);

/* The result of an attempt. ok = false for an error, a disconnect, or a result the caller
 * found invalid; reason says which (copied, may be NULL). Returns true when the caller
 * should use this result as the fragment's result: false for a failure, for an attempt
 * already cancelled or timed out, and for the slower of two copies. Unknown ids: false. */
bool herd_sched_result(struct herd_sched *s, uint64_t attempt, double now_ms, bool ok,
		       const char *reason);

/* The earliest time at which herd_sched_poll() has something to do without a new event
 * (a deadline, a backoff or cooldown ending, a straggler check); INFINITY when none. */
double herd_sched_next_deadline(const struct herd_sched *s);

/* Dynamic fragment sizing: how many fragments a job of input_tokens should be cut into for
 * a swarm with total_slots slots in all, when the request does not say:
 *   n = clamp(min(HERD_SCHED_FRAGMENTS_PER_SLOT * total_slots,
 *                 floor(input_tokens / HERD_SCHED_MIN_FRAGMENT_TOKENS)), 1, HERD_MAX_FRAGMENTS)
 * Several fragments per slot let fast peers pull more and keep the tail short; the floor on
 * tokens per fragment keeps each worth its network round trip and context overlap. */
size_t herd_sched_fragment_count(size_t input_tokens, size_t total_slots);

/* The same for an array input of n_items prompts:
 *   n = clamp(min(HERD_SCHED_FRAGMENTS_PER_SLOT * total_slots, n_items), 1, HERD_MAX_FRAGMENTS)
 * An item's cost is mostly its max_tokens of generation, whatever its length, so one item
 * is always worth sending and its length in tokens does not change the count. */
size_t herd_sched_array_fragment_count(size_t n_items, size_t total_slots);

#endif
