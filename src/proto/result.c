/* result — fragment results, their aggregation into a job result, and the seed's
 * "Complete Job Result" answer.
 *
 * Results arrive in any order, possibly twice (retries) or from a confused peer; the
 * aggregator refuses anything that does not fit the job and leaves its state unchanged,
 * so the coordinator can log the refusal and carry on. */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_empty(const char *s)
{
	return herd_xstrdup(s ? s : "");
}

struct herd_fragment_result *herd_fragment_result_new(const struct herd_fragment *f,
						      const char *node_id)
{
	struct herd_fragment_result *r = herd_xcalloc(1, sizeof *r);
	r->job_id = herd_xstrdup(f->job_id);
	r->fragment_id = herd_xstrdup(f->fragment_id);
	r->index = f->index;
	r->node_id = dup_or_empty(node_id);
	return r;
}

void herd_fragment_result_free(struct herd_fragment_result *r)
{
	if (!r)
		return;
	free(r->job_id);
	free(r->fragment_id);
	free(r->node_id);
	json_decref(r->output);
	free(r);
}

json_t *herd_fragment_result_to_json(const struct herd_fragment_result *r)
{
	json_t *j = json_pack("{s:s, s:s, s:i, s:O, s:I, s:f, s:s}", "job_id", r->job_id,
			      "fragment_id", r->fragment_id, "fragment_index", r->index, "output",
			      r->output ? r->output : json_null(), "tokens_generated",
			      (json_int_t)r->tokens_generated, "processing_time_ms",
			      r->processing_time_ms, "node_id", r->node_id ? r->node_id : "");
	HERD_ASSERT(j);
	return j;
}

static bool is_string_array(const json_t *a, size_t *bad)
{
	for (size_t i = 0; i < json_array_size(a); i++)
		if (!json_is_string(json_array_get(a, i))) {
			*bad = i;
			return false;
		}
	return true;
}

enum herd_err herd_fragment_result_from_json(const json_t *j, struct herd_fragment_result **out)
{
	*out = NULL;
	if (!json_is_object(j))
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "result: must be an object (a fragment result)");
	json_t *job = json_object_get(j, "job_id"), *fid = json_object_get(j, "fragment_id"),
	       *idx = json_object_get(j, "fragment_index"), *o = json_object_get(j, "output"),
	       *tok = json_object_get(j, "tokens_generated"),
	       *ms = json_object_get(j, "processing_time_ms"),
	       *node = json_object_get(j, "node_id");
	if (!json_is_string(job))
		return herd_fail(HERD_ERR_BAD_INPUT, "result.job_id: required, a string");
	if (!json_is_string(fid))
		return herd_fail(HERD_ERR_BAD_INPUT, "result.fragment_id: required, a string");
	if (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
	    json_integer_value(idx) >= HERD_MAX_FRAGMENTS)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "result.fragment_index: required, an integer 0..%d",
				 HERD_MAX_FRAGMENTS - 1);
	size_t bad;
	if (!(json_is_string(o) || (json_is_array(o) && is_string_array(o, &bad))))
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "result.output: required, a string or an array of strings");
	if (!json_is_integer(tok) || json_integer_value(tok) < 0)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "result.tokens_generated: required, an integer >= 0");
	if (!json_is_number(ms) || json_number_value(ms) < 0)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "result.processing_time_ms: required, a number >= 0");
	if (node && !json_is_null(node) && !json_is_string(node))
		return herd_fail(HERD_ERR_BAD_INPUT, "result.node_id: must be a string");
	struct herd_fragment_result *r = herd_xcalloc(1, sizeof *r);
	r->job_id = herd_xstrdup(json_string_value(job));
	r->fragment_id = herd_xstrdup(json_string_value(fid));
	r->index = (int)json_integer_value(idx);
	r->output = json_deep_copy(o);
	r->tokens_generated = (int64_t)json_integer_value(tok);
	r->processing_time_ms = json_number_value(ms);
	r->node_id = dup_or_empty(json_is_string(node) ? json_string_value(node) : NULL);
	*out = r;
	return HERD_OK;
}

struct herd_aggregator {
	char *job_id;
	enum herd_input_kind kind;
	int total;
	size_t *n_items;		   /* ARRAY: items expected per fragment */
	struct herd_fragment_result **got; /* by index; NULL = not yet */
	int received;
	double started_ms;
};

struct herd_aggregator *herd_aggregator_new(const struct herd_job *job)
{
	struct herd_aggregator *a = herd_xcalloc(1, sizeof *a);
	a->job_id = herd_xstrdup(job->job_id);
	a->kind = job->kind;
	a->total = job->n_fragments;
	a->n_items = herd_xcalloc((size_t)a->total, sizeof *a->n_items);
	for (int i = 0; i < a->total; i++)
		a->n_items[i] = job->fragments[i].n_items;
	a->got = herd_xcalloc((size_t)a->total, sizeof *a->got);
	a->started_ms = herd_now_ms();
	return a;
}

void herd_aggregator_free(struct herd_aggregator *a)
{
	if (!a)
		return;
	for (int i = 0; i < a->total; i++)
		herd_fragment_result_free(a->got[i]);
	free(a->got);
	free(a->n_items);
	free(a->job_id);
	free(a);
}

enum herd_err herd_aggregator_add(struct herd_aggregator *a, const struct herd_fragment_result *r)
{
	if (!r->job_id || strcmp(r->job_id, a->job_id))
		return herd_fail(HERD_ERR_BAD_INPUT, "result.job_id: must be \"%s\", got \"%.64s\"",
				 a->job_id, r->job_id ? r->job_id : "");
	if (r->index < 0 || r->index >= a->total)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "result.fragment_index: %d is out of range 0..%d for job %s",
				 r->index, a->total - 1, a->job_id);
	if (a->got[r->index])
		return herd_fail(
		    HERD_ERR_BAD_INPUT,
		    "result.fragment_index: %d is a duplicate (already received) for job %s",
		    r->index, a->job_id);
	if (a->kind == HERD_INPUT_TEXT && !json_is_string(r->output))
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "result.output: fragment %d of a text job must be a string",
				 r->index);
	size_t bad = 0;
	if (a->kind == HERD_INPUT_ARRAY) {
		if (!json_is_array(r->output) || !is_string_array(r->output, &bad))
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "result.output: fragment %d of an array job must be an "
					 "array of strings",
					 r->index);
		if (json_array_size(r->output) != a->n_items[r->index])
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "result.output: fragment %d must have %zu items (one per "
					 "input item), got %zu",
					 r->index, a->n_items[r->index],
					 json_array_size(r->output));
	}
	struct herd_fragment_result *c = herd_xcalloc(1, sizeof *c);
	c->job_id = herd_xstrdup(r->job_id);
	c->fragment_id = dup_or_empty(r->fragment_id);
	c->index = r->index;
	c->output = json_deep_copy(r->output);
	c->tokens_generated = r->tokens_generated;
	c->processing_time_ms = r->processing_time_ms;
	c->node_id = dup_or_empty(r->node_id);
	a->got[r->index] = c;
	a->received++;
	return HERD_OK;
}

bool herd_aggregator_complete(const struct herd_aggregator *a)
{
	return a->received == a->total;
}

int herd_aggregator_received(const struct herd_aggregator *a)
{
	return a->received;
}

int herd_aggregator_first_missing(const struct herd_aggregator *a)
{
	for (int i = 0; i < a->total; i++)
		if (!a->got[i])
			return i;
	return -1;
}

enum herd_err herd_aggregator_finish(const struct herd_aggregator *a, struct herd_job_result **out)
{
	*out = NULL;
	int missing = herd_aggregator_first_missing(a);
	if (missing >= 0)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "job %s: fragment %d is missing (%d of %d received)", a->job_id,
				 missing, a->received, a->total);
	struct herd_job_result *r = herd_xcalloc(1, sizeof *r);
	r->job_id = herd_xstrdup(a->job_id);
	r->fragment_results = json_array();
	size_t bytes = 0;
	for (int i = 0; i < a->total; i++)
		if (a->kind == HERD_INPUT_TEXT)
			bytes += json_string_length(a->got[i]->output);
	char *text = a->kind == HERD_INPUT_TEXT ? herd_xmalloc(bytes + 1) : NULL;
	json_t *items = a->kind == HERD_INPUT_ARRAY ? json_array() : NULL;
	size_t at = 0;
	for (int i = 0; i < a->total; i++) {
		const struct herd_fragment_result *f = a->got[i];
		if (text) {
			memcpy(text + at, json_string_value(f->output),
			       json_string_length(f->output));
			at += json_string_length(f->output);
		} else {
			json_array_extend(items, f->output);
		}
		r->total_tokens += f->tokens_generated;
		r->total_processing_time_ms += f->processing_time_ms;
		json_array_append_new(r->fragment_results, herd_fragment_result_to_json(f));
	}
	if (text) {
		r->output = json_stringn(text, at);
		free(text);
	} else {
		r->output = items;
	}
	HERD_ASSERT(r->output);
	r->fragments_processed = a->total;
	r->wall_time_ms = herd_now_ms() - a->started_ms;
	*out = r;
	return HERD_OK;
}

void herd_job_result_free(struct herd_job_result *r)
{
	if (!r)
		return;
	free(r->job_id);
	json_decref(r->output);
	json_decref(r->fragment_results);
	free(r);
}

json_t *herd_job_result_to_response(const struct herd_job_result *r,
				    const struct herd_command *request, const char *from)
{
	json_t *res = json_pack(
	    "{s:O, s:I, s:f, s:i, s:s, s:O, s:f}", "output", r->output, "total_tokens",
	    (json_int_t)r->total_tokens, "total_processing_time_ms", r->total_processing_time_ms,
	    "fragments_processed", r->fragments_processed, "job_id", r->job_id, "fragment_results",
	    r->fragment_results, "wall_time_ms", r->wall_time_ms);
	HERD_ASSERT(res);
	struct herd_command *ans = herd_command_answer_success(request, from, res);
	json_t *j = herd_command_to_json(ans);
	herd_command_free(ans);
	return j;
}
