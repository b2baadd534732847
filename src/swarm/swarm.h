/* swarm — finding other nodes (discovery, over OpenDHT) and deciding which of them runs
 * which fragment (the scheduler).
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

#include "base.h"
#include "limits.h"

/* ---- discovery ---- */

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

#endif
