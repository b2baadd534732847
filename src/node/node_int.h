/* node_int.h — what the files of the node part share: the node struct, the worker (slot
 * threads running fragments), prompts, the job table and the dispatcher.
 * The one thing to know: the worker calls on_token/on_done on its slot threads and the
 * multi client calls its callbacks on its own thread; the dispatcher only collects what
 * they report and does all job bookkeeping on the job's own thread. */
#ifndef HERD_NODE_INT_H
#define HERD_NODE_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base.h"
#include "discovery.h"
#include "engine.h"
#include "limits.h"
#include "net.h"
#include "node.h"
#include "proto.h"

/* The default prompt of a fragment: continue the text, reading the context before it. */
#define HERD_DEFAULT_PROMPT_TEMPLATE "{context_before}{fragment}"

/* ---------------------------------------------------------------- models (node.c) */
struct node_model {
	char *name, *path;
	struct herd_model *model;
	uint64_t size_bytes;
	json_t *types;	     /* tensor type names, most bytes first (array of strings) */
	char *chat_template; /* tokenizer.chat_template, NULL when the file has none */
};

/* ---------------------------------------------------------------- prompt.c (pure) */

/* Replaces {fragment}, {context_before} and {context_after} in tmpl (other text, other
 * braces included, is kept as it is). Returns a new NUL-terminated string (caller frees). */
char *herd_prompt_render(const char *tmpl, const char *fragment, size_t fragment_len,
			 const char *before, size_t before_len, const char *after,
			 size_t after_len, size_t *out_len);

enum herd_chat_format {
	HERD_CHAT_PLAIN,  /* "role: content" lines, then "assistant:" */
	HERD_CHAT_CHATML, /* <|im_start|>role\ncontent<|im_end|> */
	HERD_CHAT_LLAMA2, /* [INST] ... [/INST] */
	HERD_CHAT_LLAMA3, /* <|start_header_id|>role<|end_header_id|> */
	HERD_CHAT_ZEPHYR, /* <|user|>\ncontent</s> */
};
/* The format a tokenizer.chat_template is written for, by telltale substrings (NULL: plain). */
enum herd_chat_format herd_chat_detect(const char *chat_template);
const char *herd_chat_format_name(enum herd_chat_format f);
/* Validates messages ([{"role": "system"|"user"|"assistant", "content": string}, ...],
 * 1..HERD_MAX_CHAT_MESSAGES) and renders the prompt that asks for the assistant's turn.
 * *out is malloc'd; BAD_INPUT naming the field (messages[2].role: ...) otherwise. */
enum herd_err herd_chat_render(enum herd_chat_format f, const json_t *messages, char **out,
			       size_t *out_len);

/* ---------------------------------------------------------------- worker.c */

/* One fragment to run. The submitter owns it and everything it points to until on_done
 * has returned. */
struct herd_work {
	const struct herd_fragment *frag;
	const struct node_model *model; /* set by herd_worker_submit */
	/* optional, on a slot thread: generated text of item `item` (0 for text fragments);
	 * non-zero stops the generation. */
	int (*on_token)(void *token_ud, int item, const char *text, size_t len);
	void *token_ud;
	/* exactly once per accepted submit, on a slot thread (or on the thread that stops the
	 * worker): err HERD_OK with `result` (a fragment result object plus herd's
	 * "prompt_tokens" and "finish_reasons"), owned by the callee; else msg says why. */
	void (*on_done)(void *ud, enum herd_err err, const char *msg, json_t *result);
	void *ud;
	atomic_bool cancel; /* set to stop it (the result is then CANCELLED) */
	struct herd_work *next; /* the queue's */
};

struct herd_worker;
/* Starts `slots` slot threads; each creates its herd_ctx for a model lazily with
 * max(1, threads / slots) threads. models must outlive the worker. on_load (optional) is
 * told of every change of the running/queued counts (under no lock of the worker). */
enum herd_err herd_worker_new(const struct node_model *models, size_t n_models, int threads,
			      int slots, const char *node_id,
			      void (*on_load)(void *ud, int running, int queued), void *ud,
			      struct herd_worker **out);
/* Queues work (FIFO). NOT_FOUND naming the model when not served here, CANCELLED once
 * stopping; on error on_done never runs. */
enum herd_err herd_worker_submit(struct herd_worker *w, struct herd_work *work);
/* Sets cancel on every queued and running work of this job, or only on its fragment
 * fragment_id when that is not NULL. Returns how many. */
int herd_worker_cancel_job(struct herd_worker *w, const char *job_id, const char *fragment_id);
void herd_worker_load(struct herd_worker *w, int *running, int *queued);
/* Sets (before any submit) a callback told, on a slot thread, the generation speed measured
 * by each finished fragment of at least 8 tokens (tokens / time spent generating). */
void herd_worker_on_speed(struct herd_worker *w,
			  void (*fn)(void *ud, const char *model_name, double tokens_per_s), void *ud);
int herd_worker_slots(const struct herd_worker *w);
const struct node_model *herd_worker_model(const struct herd_worker *w, const char *name);
/* Cancels all work (each on_done runs with CANCELLED) and joins the slot threads. */
void herd_worker_stop(struct herd_worker *w);
void herd_worker_free(struct herd_worker *w);

/* Runs one work on the calling thread's behalf (submit and wait). *result as on_done. */
enum herd_err herd_worker_run(struct herd_worker *w, struct herd_work *work, json_t **result);

/* ---------------------------------------------------------------- jobs.c */

/* A job this node coordinates (running or recently finished). Reference counted. */
struct job_rec {
	char *job_id;
	pthread_mutex_t mu;
	int refs;
	const char *state; /* "running", "done", "failed", "cancelled" */
	int total, done, running, retries;
	json_t *errors;	     /* array of strings */
	json_t *log;	     /* the fragment events so far (replayed to late subscribers) */
	json_t *final;	     /* the final event's data once finished */
	json_t *nodes;	     /* fragment index -> node id that ran it */
	struct job_sub *subs;
	atomic_bool cancel;
	double started_ms, finished_ms; /* herd_now_ms */
	int64_t created_unix;
};

struct herd_jobs;
struct herd_jobs *herd_jobs_new(void);
void herd_jobs_free(struct herd_jobs *jobs);
/* A new running record (one reference for the caller). BAD_INPUT (HTTP 409) when a job with
 * this id is running. Finished records beyond HERD_NODE_KEEP_JOBS / older than
 * HERD_NODE_KEEP_JOBS_MS are dropped here. */
enum herd_err herd_jobs_add(struct herd_jobs *jobs, const char *job_id, int total,
			    struct job_rec **out);
struct job_rec *herd_jobs_get(struct herd_jobs *jobs, const char *job_id); /* +1 ref or NULL */
void herd_job_rec_put(struct job_rec *rec);
/* Sets cancel on every running job; returns how many. */
int herd_jobs_cancel_all(struct herd_jobs *jobs);
size_t herd_jobs_running(struct herd_jobs *jobs);

/* Sends an event to every subscriber; logged (for replay) when keep. data not stolen. */
void herd_job_rec_event(struct job_rec *rec, const char *event, const json_t *data, bool keep);
/* Finishes the record: state, final event data (stolen), closes every subscriber. */
void herd_job_rec_finish(struct job_rec *rec, const char *state, json_t *final);
/* Adds a subscriber: replays the log (and the final event, then closes, when finished). */
void herd_job_rec_subscribe(struct job_rec *rec, struct herd_sse *stream);
/* The JOB_STATUS / GET /v1/jobs/{id} view. New reference. */
json_t *herd_job_rec_status(struct job_rec *rec);

/* ---------------------------------------------------------------- the node */

struct node_peer {
	char *url;				/* "http://host:port", no trailing slash */
	char id[HERD_CAP_MAX_NAME * 4 + 1];	/* from its NODE_INFO; "" until known */
	bool known, down;
	int slots;
	json_t *models; /* model names it serves (array of strings) */
	double checked_ms;
	char error[512]; /* why it is down */
	json_t *info;	 /* its last NODE_INFO result */
};

struct herd_node {
	char id[HERD_PEER_ID_HEX + 1];
	char advertise[HERD_CAP_MAX_ADDRESS + 1];
	char url[HERD_CAP_MAX_ADDRESS + 8];
	struct herd_http_server *srv;
	struct herd_http_multi *multi;
	struct herd_worker *worker;
	struct herd_discovery *disco;
	struct node_model *models;
	size_t n_models;
	struct node_peer *peers;
	size_t n_peers;
	pthread_mutex_t peers_mu;
	struct herd_jobs *jobs;
	atomic_bool stopping;
	int threads, slots;
	double started_ms;
	/* job threads (streamed jobs run on their own thread) */
	pthread_mutex_t thr_mu;
	pthread_cond_t thr_cond;
	int n_job_threads;
	struct herd_standing *standing;	  /* peers' standing across jobs (standing.c) */
	struct herd_sched_params sched_params; /* defaults and HERD_SCHED_* (validated at start) */
	/* counters for NODE_INFO */
	atomic_long jobs_done, fragments_done, tokens_generated;
};

/* ---------------------------------------------------------------- standing.c */

struct herd_standing;
struct herd_standing *herd_standing_new(void);
void herd_standing_free(struct herd_standing *t);
/* Starts peer id of a job's scheduler from its standing, when there is one. */
void herd_standing_restore(struct herd_standing *t, struct herd_sched *s, const char *id);
/* Keeps peer id's standing as the scheduler has it at now_ms; returns its reputation
 * (success × min(speed, 1), 0..1). */
double herd_standing_save(struct herd_standing *t, const struct herd_sched *s, const char *id,
			  double now_ms);
/* {"success", "speed", "completed", "failed", "effective_tps"} of peer id (neutral when
 * unknown) and its reputation in *reputation. New reference. */
json_t *herd_standing_json(struct herd_standing *t, const char *id, double *reputation);
/* Adds "standing" to each object of nodes (by its "peer_id"). */
void herd_standing_annotate(struct herd_standing *t, json_t *nodes);
/* The scheduler's parameters: defaults, overridden by HERD_SCHED_MAX_ATTEMPTS,
 * _TIMEOUT_FACTOR, _TIMEOUT_FLOOR_MS, _RETRY_BACKOFF_MS, _PEER_COOLDOWN_MS,
 * _STRAGGLER_DONE_FRAC, _STRAGGLER_FACTOR, _NO_PEERS_GRACE_MS. BAD_INPUT naming the
 * variable for a value that is not a number or out of range. */
enum herd_err herd_node_sched_params(struct herd_sched_params *out);

/* ---------------------------------------------------------------- dispatch.c */

/* One node a fragment may go to: this node (peer NULL) or a peer. */
struct dispatch_target {
	struct node_peer *peer; /* NULL = the local worker */
	char id[HERD_CAP_MAX_NAME * 4 + 1];
	char url[HERD_CAP_MAX_ADDRESS + 8];
	int slots;
	double tokens_per_s; /* claimed per slot for the job's model (a default when unmeasured) */
	bool measured;	     /* tokens_per_s was measured by the node, not a default */
	bool live;	     /* a peer of the job's scheduler */
};

/* Learns (NODE_INFO) the peers not known yet or down for a while. Blocking; no lock held
 * during the calls. */
void herd_node_refresh_peers(struct herd_node *n);
/* Whether a --peer node's NODE_INFO listed `model` (call under peers_mu). */
bool herd_node_peer_serves(const struct node_peer *p, const char *model);

/* Runs every fragment of job on this node and its peers and adds each result to agg; the
 * per-fragment extras (prompt_tokens, finish_reasons, node_id) go to extras[index] (an
 * array of job->n_fragments objects). On failure returns the error with herd_last_error()
 * naming the fragment and the node. The one place of the dispatch policy. */
enum herd_err herd_dispatch_job(struct herd_node *n, struct herd_job *job, struct job_rec *rec,
				bool stream_tokens, struct herd_aggregator *agg, json_t *extras);

/* ---------------------------------------------------------------- coordinator.c */

/* Runs a validated job to the end on the calling thread and returns the answer envelope to
 * request (Complete Job Result, or an error envelope) with its HTTP status. When rec is
 * NULL one is made. stream: events go to it as they happen (it is closed at the end).
 * *extras_out (optional) gets the per-fragment extras. */
json_t *herd_coord_run(struct herd_node *n, const struct herd_command *request,
		       struct herd_job *job, struct job_rec *rec, unsigned *http_status,
		       json_t **extras_out);

/* The job for an inference request. When params.num_fragments is absent, herd picks the
 * count (docs/scheduling.md "Dynamic fragment count"): text by its length in the model's
 * tokens (an estimate when this node lacks the model) and the slots of the nodes serving
 * the model; arrays by item count and slots. The job then has num_fragments_auto set. */
enum herd_err herd_coord_make_job(struct herd_node *n, const struct herd_command *request,
				  struct herd_job **out);

/* HTTP status for an error code. */
unsigned herd_node_http_status(enum herd_err err);

/* Starts a detached job thread counted in n->n_job_threads; false once stopping. */
bool herd_node_spawn(struct herd_node *n, void *(*fn)(void *), void *arg);
void herd_node_thread_done(struct herd_node *n);

/* ---------------------------------------------------------------- openai.c */
void herd_openai_completions(struct herd_http_req *req, struct herd_http_resp *resp, void *ud);
void herd_openai_chat(struct herd_http_req *req, struct herd_http_resp *resp, void *ud);
void herd_openai_models(struct herd_http_req *req, struct herd_http_resp *resp, void *ud);

/* Copies src into dst (size bytes), cut to fit and NUL-terminated. */
static inline void herd_node_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* JSON string of generated bytes, which may end inside a character: bad bytes → U+FFFD. */
json_t *herd_node_json_text(const char *s, size_t n);

#endif
