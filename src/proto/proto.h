/* proto — the seed's data model of a distributed job as C types with JSON in and out:
 * Command envelopes, LlamaJob (request → validated job → fragments), the llama_fragment
 * commands sent to workers, FragmentResult, the aggregator and the Complete Job Result.
 *
 * The one thing to know: everything here is pure — no files, sockets or printing. Input
 * from outside (bytes of a request body, a JSON value) is validated field by field; a bad
 * one returns HERD_ERR_BAD_INPUT / HERD_ERR_LIMIT with a message naming the field and the
 * rule (read it with herd_last_error()), and nothing is allocated for the caller.
 * JSON formats, splitting rules and defaults: docs/protocol.md. */
#ifndef HERD_PROTO_H
#define HERD_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "limits.h"

/* ---------------------------------------------------------------- JSON and UTF-8 */

/* Parses `len` bytes of JSON text (no NUL needed) into *out (a new reference). Refuses
 * more than HERD_MAX_REQUEST_BYTES, duplicate keys, malformed JSON (the message gives
 * line and column) and nesting deeper than HERD_MAX_JSON_DEPTH. */
enum herd_err herd_json_parse(const char *buf, size_t len, json_t **out);

/* Nesting depth of a value (a scalar is 1, [] is 1, [[1]] is 2); iterative, any depth. */
size_t herd_json_depth(const json_t *j);

/* True when the bytes are well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
 * On false, *bad_at (when not NULL) is the offset of the first bad byte. */
bool herd_utf8_valid(const char *s, size_t len, size_t *bad_at);

/* Number of UTF-8 characters in valid UTF-8 text. */
size_t herd_utf8_count(const char *s, size_t len);

/* ---------------------------------------------------------------- Command envelope */

enum herd_command_kind {
	HERD_COMMAND_EXECUTE_TASK,
	HERD_COMMAND_FIND_NODES,
	HERD_COMMAND_NODE_INFO,
	HERD_COMMAND_PING,
	HERD_COMMAND_JOB_STATUS,
	HERD_COMMAND_CANCEL_JOB,
	HERD_COMMAND_COUNT_
};

/* A request has no status; an answer has SUCCESS (with result) or ERROR (with error). */
enum herd_command_status {
	HERD_COMMAND_REQUEST,
	HERD_COMMAND_SUCCESS,
	HERD_COMMAND_ERROR,
};

/* Every string and JSON value is owned by the command (freed by herd_command_free). */
struct herd_command {
	enum herd_command_kind kind;
	char *request_id;  /* never NULL */
	char *from;	   /* node id of the sender; "" when not given */
	char *to;	   /* node id of the receiver; "" when not given */
	int64_t timestamp; /* Unix seconds */
	json_t *params;	   /* always an object */
	enum herd_command_status status;
	json_t *result;	     /* SUCCESS: the result (any JSON); else NULL */
	char *error_code;    /* ERROR: herd_errcode() style code ("BAD_INPUT"); else NULL */
	char *error_message; /* ERROR: the message; else NULL */
};

/* "EXECUTE_TASK" … ; NULL for an unknown kind. */
const char *herd_command_name(enum herd_command_kind kind);

/* A new request with empty params and timestamp = now. request_id NULL makes one
 * ("req-<hex>", unique within the process); from/to NULL mean "". Never NULL. */
struct herd_command *herd_command_new(enum herd_command_kind kind, const char *request_id,
				      const char *from, const char *to);
void herd_command_free(struct herd_command *cmd);

/* Sets params[key] = value; steals the reference to value (like json_object_set_new). */
enum herd_err herd_command_with_param(struct herd_command *cmd, const char *key, json_t *value);

/* The envelope as JSON, the seed's field names (new reference). */
json_t *herd_command_to_json(const struct herd_command *cmd);

/* Validates a JSON envelope and builds a command (*out owned by the caller). */
enum herd_err herd_command_from_json(const json_t *j, struct herd_command **out);

/* herd_json_parse + herd_command_from_json: raw bytes (an HTTP body) to a command. */
enum herd_err herd_command_parse(const char *buf, size_t len, struct herd_command **out);

/* The answer to `request`: same command and request_id, from = `from`, to = request->from.
 * _success steals `result`; _error copies code (herd_errcode(err)) and message. */
struct herd_command *herd_command_answer_success(const struct herd_command *request,
						 const char *from, json_t *result);
struct herd_command *herd_command_answer_error(const struct herd_command *request, const char *from,
					       enum herd_err err, const char *message);

/* ---------------------------------------------------------------- splitting */

/* One piece of a split input. For text all four are byte offsets into the input; for
 * arrays they count items and the window equals the span (items are independent). */
struct herd_piece {
	size_t span_start, span_end;	 /* the fragment's own part: [start, end) */
	size_t window_start, window_end; /* span plus up to `overlap` on each side */
};

/* Splits valid UTF-8 text of `len` > 0 bytes into min(n, characters) pieces whose spans
 * tile the text, preferring paragraph, then sentence, then word boundaries near the ideal
 * cut, never cutting a character; windows add up to `overlap` bytes each side, also on
 * character boundaries. *out (herd_xmalloc'd, caller frees) gets *n_out pieces. */
enum herd_err herd_split_text(const char *text, size_t len, int n, size_t overlap,
			      struct herd_piece **out, int *n_out);

/* Splits `items` > 0 items ceil(items / n) per piece, in order: ceil(items / per) pieces. */
enum herd_err herd_split_array(size_t items, int n, struct herd_piece **out, int *n_out);

/* ---------------------------------------------------------------- jobs and fragments */

enum herd_input_kind { HERD_INPUT_TEXT, HERD_INPUT_ARRAY };

#define HERD_DEFAULT_CONTEXT_OVERLAP 256 /* bytes each side: a paragraph or so of context */
#define HERD_DEFAULT_NUM_FRAGMENTS 4
#define HERD_DEFAULT_MAX_TOKENS 256
#define HERD_DEFAULT_TEMPERATURE 0.8
#define HERD_DEFAULT_TOP_P 0.95

/* One fragment of a job; self-contained, so that a worker that parsed it from a command
 * has everything. All memory owned by the fragment (its job, when part of one). */
struct herd_fragment {
	char *job_id;
	char *fragment_id; /* "<job_id>-frag-<index>" */
	int index, total;  /* 0 <= index < total */
	char *model_name;
	enum herd_input_kind kind;
	/* TEXT: the span's bytes and the context on each side (NUL-terminated copies) */
	char *text;
	size_t text_len;
	char *context_before, *context_after;
	size_t context_before_len, context_after_len;
	/* ARRAY: the fragment's items (UTF-8 strings, NUL-terminated; no embedded NUL) */
	char **items;
	size_t n_items;
	struct herd_piece piece; /* offsets in the job's input (bytes or items) */
	int64_t max_tokens;
	double temperature, top_p;
	json_t *params; /* the request's params, less input_data (an object) */
};

struct herd_job_opts {
	const char *job_id; /* NULL: derived from the request (request_id, timestamp) */
	int num_fragments;  /* > 0 overrides params.num_fragments (as `herd split --fragments`) */
	bool num_fragments_auto; /* num_fragments was chosen by herd (dynamic sizing), not asked */
};

struct herd_job {
	char *job_id;
	struct herd_command *request; /* the request envelope, params without input_data */
	char *model_name;
	enum herd_input_kind kind;
	char *text; /* TEXT: the input (NUL-terminated copy), text_len bytes */
	size_t text_len;
	size_t n_items;		/* ARRAY: items in the input */
	int num_fragments;	/* requested (after opts) */
	bool num_fragments_auto; /* chosen by the coordinator because the request gave none */
	size_t context_overlap; /* bytes */
	int64_t max_tokens;
	double temperature, top_p;
	struct herd_fragment *fragments; /* n_fragments of them, index order */
	int n_fragments;
};

/* A validated, split job from an EXECUTE_TASK / llama_inference request (params.task_type
 * absent counts as llama_inference). Does not keep `request`. opts may be NULL. */
enum herd_err herd_job_from_request(const struct herd_command *request,
				    const struct herd_job_opts *opts, struct herd_job **out);

/* The one entry point for the HTTP layer: raw body bytes → validated job, or the error. */
enum herd_err herd_job_parse(const char *body, size_t len, const struct herd_job_opts *opts,
			     struct herd_job **out);
void herd_job_free(struct herd_job *job);

/* A summary of the job (no fragments, no input): job_id, model_name, input_kind,
 * input_bytes or input_items, num_fragments, total_fragments, context_overlap, params, and
 * num_fragments_auto: true when herd chose the count. */
json_t *herd_job_to_json(const struct herd_job *job);

/* The llama_fragment request for a fragment: EXECUTE_TASK, request_id = fragment_id,
 * params = the request's params (unchanged) + task_type "llama_fragment", the fragment's
 * fields and its own input_data. Never NULL; caller frees. */
struct herd_command *herd_fragment_to_command(const struct herd_fragment *f, const char *from,
					      const char *peer_id);

/* The worker's side: validates a llama_fragment command and rebuilds the fragment
 * (*out owned by the caller, free with herd_fragment_free). */
enum herd_err herd_fragment_from_command(const struct herd_command *cmd,
					 struct herd_fragment **out);
void herd_fragment_free(struct herd_fragment *f);

/* ---------------------------------------------------------------- results */

/* A worker's result for one fragment. All memory owned by the struct. */
struct herd_fragment_result {
	char *job_id;
	char *fragment_id;
	int index;
	json_t *output; /* a string (text job) or an array of strings (array job) */
	int64_t tokens_generated;
	double processing_time_ms;
	char *node_id; /* who ran it; "" when not given */
};

/* A result for `f` with the ids filled in and output NULL: the worker sets the rest. */
struct herd_fragment_result *herd_fragment_result_new(const struct herd_fragment *f,
						      const char *node_id);
void herd_fragment_result_free(struct herd_fragment_result *r);
json_t *herd_fragment_result_to_json(const struct herd_fragment_result *r);
enum herd_err herd_fragment_result_from_json(const json_t *j, struct herd_fragment_result **out);

/* The combined result of a job, fragments in index order. Owns its memory. */
struct herd_job_result {
	char *job_id;
	json_t *output; /* text: the outputs concatenated; array: one flat array */
	int64_t total_tokens;
	double total_processing_time_ms; /* sum over fragments */
	int fragments_processed;
	json_t *fragment_results; /* array of fragment result objects, index order */
	double wall_time_ms;	  /* aggregator creation to finish; the caller may overwrite */
};

/* Collects results arriving in any order. Copies what it needs from the job. */
struct herd_aggregator;
struct herd_aggregator *herd_aggregator_new(const struct herd_job *job);
void herd_aggregator_free(struct herd_aggregator *agg);

/* Adds a copy of r. Refuses (BAD_INPUT, naming the index) another job's result, an index
 * out of range, a duplicate index, or an output of the wrong shape; the state is unchanged. */
enum herd_err herd_aggregator_add(struct herd_aggregator *agg,
				  const struct herd_fragment_result *r);
bool herd_aggregator_complete(const struct herd_aggregator *agg);
int herd_aggregator_received(const struct herd_aggregator *agg);
/* The lowest missing index, or -1 when complete. */
int herd_aggregator_first_missing(const struct herd_aggregator *agg);

/* The combined result; fails naming the first missing index when not complete. */
enum herd_err herd_aggregator_finish(const struct herd_aggregator *agg,
				     struct herd_job_result **out);
void herd_job_result_free(struct herd_job_result *r);

/* The seed's "Complete Job Result": the success answer to `request` whose result has
 * output, total_tokens, total_processing_time_ms, fragments_processed, job_id,
 * fragment_results, wall_time_ms. New reference. */
json_t *herd_job_result_to_response(const struct herd_job_result *r,
				    const struct herd_command *request, const char *from);

#endif
