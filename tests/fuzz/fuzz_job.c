/* fuzz_job — herd_job_parse on arbitrary request bodies (the bytes of POST /v1/command).
 * A job that parses is then carried the way the node carries it: each fragment becomes its
 * llama_fragment command, goes through JSON text and back (herd_command_parse,
 * herd_fragment_from_command) and must arrive unchanged; a result per fragment, delivered in
 * reverse order, must complete the aggregator, whose combined output must be the fragments'
 * outputs in index order. */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "proto.h"

static bool same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static bool same_bytes(const char *a, size_t na, const char *b, size_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

/* The fragment after a trip over the wire. */
static void check_wire(const struct herd_fragment *f)
{
	struct herd_command *c = herd_fragment_to_command(f, "coordinator", "worker");
	FUZZ_CHECK(c != NULL, "no command for fragment %d", f->index);
	json_t *j = herd_command_to_json(c);
	char *text = json_dumps(j, JSON_COMPACT);
	FUZZ_CHECK(text != NULL, "fragment %d: command does not serialize", f->index);
	struct herd_command *c2 = NULL;
	enum herd_err e = herd_command_parse(text, strlen(text), &c2);
	FUZZ_CHECK(e == HERD_OK, "fragment %d: own command refused: %s", f->index,
		   herd_last_error());
	struct herd_fragment *g = NULL;
	e = herd_fragment_from_command(c2, &g);
	FUZZ_CHECK(e == HERD_OK, "fragment %d: worker refused it: %s", f->index, herd_last_error());
	FUZZ_CHECK(same(f->job_id, g->job_id) && same(f->fragment_id, g->fragment_id) &&
		       same(f->model_name, g->model_name),
		   "fragment %d: ids changed", f->index);
	FUZZ_CHECK(f->index == g->index && f->total == g->total && f->kind == g->kind,
		   "fragment %d: index/total/kind changed", f->index);
	FUZZ_CHECK(f->max_tokens == g->max_tokens && f->temperature == g->temperature &&
		       f->top_p == g->top_p,
		   "fragment %d: sampling params changed", f->index);
	FUZZ_CHECK(memcmp(&f->piece, &g->piece, sizeof f->piece) == 0,
		   "fragment %d: offsets changed", f->index);
	if (f->kind == HERD_INPUT_TEXT) {
		FUZZ_CHECK(same_bytes(f->text, f->text_len, g->text, g->text_len) &&
			       same_bytes(f->context_before, f->context_before_len,
					  g->context_before, g->context_before_len) &&
			       same_bytes(f->context_after, f->context_after_len, g->context_after,
					  g->context_after_len),
			   "fragment %d: text changed on the wire", f->index);
	} else {
		FUZZ_CHECK(f->n_items == g->n_items, "fragment %d: %zu items became %zu", f->index,
			   f->n_items, g->n_items);
		for (size_t i = 0; i < f->n_items; i++)
			FUZZ_CHECK(same(f->items[i], g->items[i]), "fragment %d: item %zu changed",
				   f->index, i);
	}
	herd_fragment_free(g);
	herd_command_free(c2);
	free(text);
	json_decref(j);
	herd_command_free(c);
}

static void check_aggregate(const struct herd_job *job)
{
	struct herd_aggregator *agg = herd_aggregator_new(job);
	/* reverse order: the aggregator must sort by index */
	for (int i = job->n_fragments - 1; i >= 0; i--) {
		const struct herd_fragment *f = &job->fragments[i];
		struct herd_fragment_result *r = herd_fragment_result_new(f, "worker");
		if (f->kind == HERD_INPUT_TEXT) {
			char out[32];
			snprintf(out, sizeof out, "<%d>", i);
			r->output = json_string(out);
		} else {
			r->output = json_array();
			for (size_t k = 0; k < f->n_items; k++)
				json_array_append_new(r->output, json_string(f->items[k]));
		}
		r->tokens_generated = 1;
		r->processing_time_ms = 1.0;
		enum herd_err e = herd_aggregator_add(agg, r);
		FUZZ_CHECK(e == HERD_OK, "result %d refused: %s", i, herd_last_error());
		FUZZ_CHECK(herd_aggregator_add(agg, r) != HERD_OK, "duplicate result %d accepted",
			   i);
		herd_fragment_result_free(r);
	}
	FUZZ_CHECK(herd_aggregator_complete(agg), "not complete with every result");
	FUZZ_CHECK(herd_aggregator_first_missing(agg) == -1, "a result missing");
	struct herd_job_result *res = NULL;
	enum herd_err e = herd_aggregator_finish(agg, &res);
	FUZZ_CHECK(e == HERD_OK, "finish: %s", herd_last_error());
	FUZZ_CHECK(res->fragments_processed == job->n_fragments &&
		       res->total_tokens == job->n_fragments,
		   "counts: %d fragments, %lld tokens", res->fragments_processed,
		   (long long)res->total_tokens);
	if (job->kind == HERD_INPUT_TEXT) {
		FUZZ_CHECK(json_is_string(res->output), "text output not a string");
		const char *s = json_string_value(res->output);
		for (int i = 0; i < job->n_fragments; i++) {
			char out[32];
			int n = snprintf(out, sizeof out, "<%d>", i);
			FUZZ_CHECK(strncmp(s, out, (size_t)n) == 0, "output out of order at %d: %s",
				   i, s);
			s += n;
		}
		FUZZ_CHECK(*s == 0, "output has more than the fragments");
	} else {
		FUZZ_CHECK(json_is_array(res->output) &&
			       json_array_size(res->output) == job->n_items,
			   "array output of %zu items for %zu", json_array_size(res->output),
			   job->n_items);
	}
	json_t *resp = herd_job_result_to_response(res, job->request, "coordinator");
	FUZZ_CHECK(resp != NULL, "no response");
	json_decref(resp);
	herd_job_result_free(res);
	herd_aggregator_free(agg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		fuzz_quiet();
		init = true;
	}
	struct herd_job *job = NULL;
	enum herd_err e = herd_job_parse((const char *)data, size, NULL, &job);
	if (e != HERD_OK) {
		FUZZ_CHECK(job == NULL, "failed parse left a job");
		FUZZ_CHECK(herd_last_error()[0] != 0, "refused without a message");
		return 0;
	}
	FUZZ_CHECK(job->n_fragments >= 1 && job->n_fragments <= job->num_fragments,
		   "%d fragments for %d asked", job->n_fragments, job->num_fragments);
	/* text spans tile the input; array pieces tile the items */
	size_t at = 0;
	for (int i = 0; i < job->n_fragments; i++) {
		const struct herd_fragment *f = &job->fragments[i];
		FUZZ_CHECK(f->index == i && f->total == job->n_fragments,
			   "fragment %d numbered %d/%d", i, f->index, f->total);
		FUZZ_CHECK(f->piece.span_start == at && f->piece.span_end > at,
			   "fragment %d: span [%zu, %zu) after %zu", i, f->piece.span_start,
			   f->piece.span_end, at);
		FUZZ_CHECK(f->piece.window_start <= f->piece.span_start &&
			       f->piece.window_end >= f->piece.span_end,
			   "fragment %d: window outside the span", i);
		if (job->kind == HERD_INPUT_TEXT) {
			FUZZ_CHECK(f->text_len == f->piece.span_end - at &&
				       memcmp(f->text, job->text + at, f->text_len) == 0,
				   "fragment %d: text is not the span", i);
			FUZZ_CHECK(herd_utf8_valid(f->text, f->text_len, NULL),
				   "fragment %d cuts a character", i);
			FUZZ_CHECK(
			    f->piece.span_start - f->piece.window_start <= job->context_overlap &&
				f->piece.window_end - f->piece.span_end <= job->context_overlap,
			    "fragment %d: window wider than the overlap", i);
		} else {
			FUZZ_CHECK(f->n_items == f->piece.span_end - at, "fragment %d: items", i);
		}
		at = f->piece.span_end;
		check_wire(f);
	}
	FUZZ_CHECK(at == (job->kind == HERD_INPUT_TEXT ? job->text_len : job->n_items),
		   "fragments cover %zu of the input", at);
	json_t *summary = herd_job_to_json(job);
	FUZZ_CHECK(summary != NULL, "no summary");
	json_decref(summary);
	check_aggregate(job);
	herd_job_free(job);
	return 0;
}
