/* proto: the seed's twelve tests (jobs, splitting, fragment commands, aggregation,
 * responses), splitting properties over generated inputs, and bad input of every kind. */
#include "herd_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* ---------------------------------------------------------------- helpers */

static struct herd_command *request(const char *params_json)
{
	char *body = herd_xmalloc(strlen(params_json) + 256);
	sprintf(body,
		"{\"command\": \"EXECUTE_TASK\", \"request_id\": \"r-1\", \"from\": \"client-7\", "
		"\"to\": \"node-a\", \"timestamp\": 1700000000, \"params\": %s}",
		params_json);
	struct herd_command *c;
	enum herd_err err = herd_command_parse(body, strlen(body), &c);
	if (err)
		fail_msg("%s", herd_last_error());
	free(body);
	return c;
}

static struct herd_job *job_from(const char *params_json, const char *job_id, int n)
{
	struct herd_command *c = request(params_json);
	struct herd_job_opts o = {.job_id = job_id, .num_fragments = n};
	struct herd_job *job;
	if (herd_job_from_request(c, &o, &job))
		fail_msg("%s", herd_last_error());
	herd_command_free(c);
	return job;
}

/* Expects the body to be refused with err and a message containing `want`. */
static void refused(const char *body, enum herd_err err, const char *want)
{
	struct herd_job *job = (struct herd_job *)1;
	enum herd_err got = herd_job_parse(body, strlen(body), NULL, &job);
	if (got != err || !strstr(herd_last_error(), want))
		fail_msg("body %.200s: got %s \"%s\", want %s containing \"%s\"", body,
			 herd_strerror(got), herd_last_error(), herd_strerror(err), want);
	assert_null(job);
}

static void refused_params(const char *params, enum herd_err err, const char *want)
{
	char *body = herd_xmalloc(strlen(params) + 128);
	sprintf(body, "{\"command\": \"EXECUTE_TASK\", \"request_id\": \"r\", \"params\": %s}",
		params);
	refused(body, err, want);
	free(body);
}

/* A worker that echoes its span: the combined output must then be the input itself. */
static struct herd_fragment_result *echo(const struct herd_fragment *f)
{
	struct herd_fragment_result *r = herd_fragment_result_new(f, "node-x");
	if (f->kind == HERD_INPUT_TEXT) {
		r->output = json_stringn(f->text, f->text_len);
	} else {
		r->output = json_array();
		for (size_t i = 0; i < f->n_items; i++)
			json_array_append_new(r->output, json_string(f->items[i]));
	}
	r->tokens_generated = 10 + f->index;
	r->processing_time_ms = 1.5;
	return r;
}

static const char *pstr(const json_t *params, const char *key)
{
	json_t *v = json_object_get(params, key);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static json_int_t pint(const json_t *params, const char *key)
{
	json_t *v = json_object_get(params, key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

/* ---------------------------------------------------------------- the seed's twelve */

static void job_creation_from_request(void **state)
{
	(void)state;
	struct herd_job *job =
	    job_from("{\"task_type\": \"llama_inference\", \"model_name\": "
		     "\"stories260K\", \"input_data\": \"Once upon a time.\", "
		     "\"max_tokens\": 50, \"temperature\": 0.5, \"num_fragments\": 2}",
		     "J1", 0);
	assert_string_equal(job->job_id, "J1");
	assert_string_equal(job->model_name, "stories260K");
	assert_int_equal(job->kind, HERD_INPUT_TEXT);
	assert_int_equal(job->text_len, 17);
	assert_memory_equal(job->text, "Once upon a time.", 17);
	assert_int_equal(job->num_fragments, 2);
	assert_int_equal(job->n_fragments, 2);
	assert_int_equal(job->max_tokens, 50);
	assert_true(job->temperature == 0.5);
	assert_true(job->top_p == HERD_DEFAULT_TOP_P);
	assert_int_equal(job->context_overlap, HERD_DEFAULT_CONTEXT_OVERLAP);
	assert_string_equal(job->request->request_id, "r-1");
	assert_null(json_object_get(job->request->params, "input_data"));
	herd_job_free(job);

	/* without a job id: derived from the request, the same for the same request */
	struct herd_command *c = request("{\"model_name\": \"m\", \"input_data\": [\"a\", \"b\"]}");
	struct herd_job *a, *b;
	assert_int_equal(herd_job_from_request(c, NULL, &a), HERD_OK);
	assert_int_equal(herd_job_from_request(c, NULL, &b), HERD_OK);
	assert_string_equal(a->job_id, b->job_id);
	assert_true(strncmp(a->job_id, "job-", 4) == 0 && strlen(a->job_id) == 20);
	assert_int_equal(a->kind, HERD_INPUT_ARRAY);
	assert_int_equal(a->n_items, 2);
	assert_int_equal(a->num_fragments, HERD_DEFAULT_NUM_FRAGMENTS);
	assert_int_equal(a->n_fragments, 2);
	herd_job_free(a);
	herd_job_free(b);
	herd_command_free(c);
}

static void text_fragment_splitting(void **state)
{
	(void)state;
	struct herd_piece *p;
	int n;
	/* paragraphs: 16 + 16 + 17 bytes; ideal cuts 17 and 33 fall next to the breaks */
	const char *t = "One two three.\n\nFour five six.\n\nSeven eight nine.";
	assert_int_equal(herd_split_text(t, strlen(t), 3, 0, &p, &n), HERD_OK);
	assert_int_equal(n, 3);
	assert_int_equal(p[0].span_start, 0);
	assert_int_equal(p[0].span_end, 16);
	assert_int_equal(p[1].span_end, 32);
	assert_int_equal(p[2].span_end, 49);
	free(p);
	/* words: ideal cut 10 is a word start */
	t = "aaaa bbbb cccc dddd";
	assert_int_equal(herd_split_text(t, strlen(t), 2, 0, &p, &n), HERD_OK);
	assert_int_equal(n, 2);
	assert_int_equal(p[0].span_end, 10);
	free(p);
	/* a sentence start (8) beats a nearer word start (11) around the ideal cut 10 */
	t = "aaa bb. cc d eee ff";
	assert_int_equal(herd_split_text(t, strlen(t), 2, 0, &p, &n), HERD_OK);
	assert_int_equal(p[0].span_end, 8);
	free(p);
	/* a paragraph break (cut at 11) beats a nearer word start (14) around the ideal 13 */
	t = "ab cd. ef\n\ngh ij. kl mn op";
	assert_int_equal(herd_split_text(t, strlen(t), 2, 0, &p, &n), HERD_OK);
	assert_int_equal(p[0].span_end, 11);
	free(p);
	/* no boundary at all: the nearest character boundary, never inside "é" (2 bytes) */
	t = "éééééééééé"; /* 20 bytes */
	assert_int_equal(herd_split_text(t, strlen(t), 3, 0, &p, &n), HERD_OK);
	assert_int_equal(n, 3);
	/* ideal ceil(20/3) = 7 is inside a character: 6 and 8 are as near, the earlier wins */
	assert_int_equal(p[0].span_end, 6);
	assert_int_equal(p[1].span_end, 12); /* ideal 6 + ceil(14/2) = 13: 12 and 14 tie */
	free(p);
}

static void array_fragment_splitting(void **state)
{
	(void)state;
	struct herd_job *job =
	    job_from("{\"model_name\": \"m\", \"input_data\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\","
		     "\"g\",\"h\",\"i\",\"j\"], \"num_fragments\": 4}",
		     "J", 0);
	assert_int_equal(job->n_fragments, 4); /* ceil(10/4) = 3 per fragment: 3,3,3,1 */
	static const size_t want[4][2] = {{0, 3}, {3, 6}, {6, 9}, {9, 10}};
	for (int i = 0; i < 4; i++) {
		const struct herd_fragment *f = &job->fragments[i];
		assert_int_equal(f->piece.span_start, want[i][0]);
		assert_int_equal(f->piece.span_end, want[i][1]);
		assert_int_equal(f->n_items, want[i][1] - want[i][0]);
		assert_int_equal(f->items[0][0], (char)('a' + want[i][0]));
		assert_null(f->text);
	}
	herd_job_free(job);
	/* 9 items over 4: 3 per fragment gives 3 fragments (the seed's rule) */
	struct herd_piece *p;
	int n;
	assert_int_equal(herd_split_array(9, 4, &p, &n), HERD_OK);
	assert_int_equal(n, 3);
	assert_int_equal(p[2].span_end, 9);
	free(p);
}

static void fragment_to_command_conversion(void **state)
{
	(void)state;
	struct herd_job *job =
	    job_from("{\"task_type\": \"llama_inference\", \"model_name\": \"m\", "
		     "\"input_data\": \"alpha beta gamma delta\", \"max_tokens\": 9, "
		     "\"temperature\": 0, \"num_fragments\": 2, "
		     "\"context_overlap\": 3}",
		     "JOB", 0);
	struct herd_command *c = herd_fragment_to_command(&job->fragments[1], "coord", "peer-9");
	json_t *j = herd_command_to_json(c);
	assert_string_equal(json_string_value(json_object_get(j, "command")), "EXECUTE_TASK");
	assert_string_equal(json_string_value(json_object_get(j, "to")), "peer-9");
	assert_string_equal(json_string_value(json_object_get(j, "from")), "coord");
	assert_true(json_is_integer(json_object_get(j, "timestamp")));
	assert_null(json_object_get(j, "status"));
	json_t *p = json_object_get(j, "params");
	assert_string_equal(pstr(p, "task_type"), "llama_fragment");
	assert_string_equal(pstr(p, "job_id"), "JOB");
	assert_string_equal(pstr(p, "fragment_id"), "JOB-frag-1");
	assert_int_equal(pint(p, "fragment_index"), 1);
	assert_int_equal(pint(p, "total_fragments"), 2);
	assert_string_equal(pstr(p, "model_name"), "m");
	/* 22 bytes, ideal cut 11 = "gamma" */
	assert_string_equal(pstr(p, "input_data"), "gamma delta");
	assert_int_equal(pint(p, "span_start"), 11);
	assert_int_equal(pint(p, "span_end"), 22);
	assert_int_equal(pint(p, "context_window_start"), 8);
	assert_int_equal(pint(p, "context_window_end"), 22);
	assert_string_equal(pstr(p, "context_before"), "ta ");
	assert_string_equal(pstr(p, "context_after"), "");
	assert_int_equal(pint(p, "max_tokens"), 9);
	assert_int_equal(pint(p, "temperature"), 0);
	assert_true(json_is_real(json_object_get(p, "top_p"))); /* default filled in */
	json_decref(j);
	herd_command_free(c);
	herd_job_free(job);
}

static void fragment_result_aggregation(void **state)
{
	(void)state;
	struct herd_job *job = job_from("{\"model_name\": \"m\", \"input_data\": \"one two three "
					"four five six\", \"num_fragments\": 3}",
					"J", 0);
	assert_int_equal(job->n_fragments, 3);
	struct herd_aggregator *agg = herd_aggregator_new(job);
	static const char *outs[] = {"A", "B", "C"};
	for (int i = 0; i < 3; i++) {
		assert_false(herd_aggregator_complete(agg));
		struct herd_fragment_result *r = herd_fragment_result_new(&job->fragments[i], "n");
		r->output = json_string(outs[i]);
		r->tokens_generated = 5 * (i + 1);
		r->processing_time_ms = 100;
		assert_int_equal(herd_aggregator_add(agg, r), HERD_OK);
		herd_fragment_result_free(r);
	}
	assert_true(herd_aggregator_complete(agg));
	assert_int_equal(herd_aggregator_first_missing(agg), -1);
	struct herd_job_result *res;
	assert_int_equal(herd_aggregator_finish(agg, &res), HERD_OK);
	assert_string_equal(json_string_value(res->output), "ABC");
	assert_int_equal(res->total_tokens, 30);
	assert_true(res->total_processing_time_ms == 300);
	assert_int_equal(res->fragments_processed, 3);
	assert_int_equal(json_array_size(res->fragment_results), 3);
	assert_true(res->wall_time_ms >= 0);
	herd_job_result_free(res);
	herd_aggregator_free(agg);
	herd_job_free(job);
}

static void result_ordering_out_of_order(void **state)
{
	(void)state;
	struct herd_job *job = job_from("{\"model_name\": \"m\", \"input_data\": \"aa bb cc dd ee "
					"ff gg hh\", \"num_fragments\": 4}",
					"J", 0);
	struct herd_aggregator *agg = herd_aggregator_new(job);
	static const int order[] = {2, 0, 3, 1};
	for (int k = 0; k < 4; k++) {
		struct herd_fragment_result *r =
		    herd_fragment_result_new(&job->fragments[order[k]], "n");
		char s[8];
		snprintf(s, sizeof s, "<%d>", order[k]);
		r->output = json_string(s);
		assert_int_equal(herd_aggregator_add(agg, r), HERD_OK);
		herd_fragment_result_free(r);
		assert_int_equal(herd_aggregator_received(agg), k + 1);
	}
	struct herd_job_result *res;
	assert_int_equal(herd_aggregator_finish(agg, &res), HERD_OK);
	assert_string_equal(json_string_value(res->output), "<0><1><2><3>");
	for (int i = 0; i < 4; i++)
		assert_int_equal(pint(json_array_get(res->fragment_results, i), "fragment_index"),
				 i);
	herd_job_result_free(res);
	herd_aggregator_free(agg);
	herd_job_free(job);

	/* arrays flatten back in input order */
	job = job_from("{\"model_name\": \"m\", \"input_data\": [\"1\",\"2\",\"3\",\"4\",\"5\"], "
		       "\"num_fragments\": 3}",
		       "K", 0);
	assert_int_equal(job->n_fragments, 3);
	agg = herd_aggregator_new(job);
	for (int i = 2; i >= 0; i--) {
		struct herd_fragment_result *r = echo(&job->fragments[i]);
		assert_int_equal(herd_aggregator_add(agg, r), HERD_OK);
		herd_fragment_result_free(r);
	}
	assert_int_equal(herd_aggregator_finish(agg, &res), HERD_OK);
	json_t *want = json_pack("[s,s,s,s,s]", "1", "2", "3", "4", "5");
	assert_true(json_equal(res->output, want));
	json_decref(want);
	herd_job_result_free(res);
	herd_aggregator_free(agg);
	herd_job_free(job);
}

static void job_result_to_response_conversion(void **state)
{
	(void)state;
	struct herd_command *req = request("{\"model_name\": \"m\", \"input_data\": \"x y\", "
					   "\"num_fragments\": 2}");
	struct herd_job *job;
	struct herd_job_opts o = {.job_id = "JR"};
	assert_int_equal(herd_job_from_request(req, &o, &job), HERD_OK);
	struct herd_aggregator *agg = herd_aggregator_new(job);
	for (int i = 0; i < job->n_fragments; i++) {
		struct herd_fragment_result *r = echo(&job->fragments[i]);
		herd_aggregator_add(agg, r);
		herd_fragment_result_free(r);
	}
	struct herd_job_result *res;
	assert_int_equal(herd_aggregator_finish(agg, &res), HERD_OK);
	res->wall_time_ms = 12.5;
	json_t *j = herd_job_result_to_response(res, req, "node-a");
	assert_string_equal(json_string_value(json_object_get(j, "command")), "EXECUTE_TASK");
	assert_string_equal(json_string_value(json_object_get(j, "request_id")), "r-1");
	assert_string_equal(json_string_value(json_object_get(j, "from")), "node-a");
	assert_string_equal(json_string_value(json_object_get(j, "to")), "client-7");
	assert_string_equal(json_string_value(json_object_get(j, "status")), "success");
	json_t *r = json_object_get(j, "result");
	assert_string_equal(pstr(r, "output"), "x y");
	assert_int_equal(pint(r, "total_tokens"), 10 + 11);
	assert_true(json_real_value(json_object_get(r, "total_processing_time_ms")) == 3.0);
	assert_int_equal(pint(r, "fragments_processed"), 2);
	assert_string_equal(pstr(r, "job_id"), "JR");
	assert_int_equal(json_array_size(json_object_get(r, "fragment_results")), 2);
	assert_true(json_real_value(json_object_get(r, "wall_time_ms")) == 12.5);
	/* and it parses back as a success answer */
	struct herd_command *back;
	assert_int_equal(herd_command_from_json(j, &back), HERD_OK);
	assert_int_equal(back->status, HERD_COMMAND_SUCCESS);
	assert_true(json_equal(back->result, r));
	herd_command_free(back);
	json_decref(j);
	herd_job_result_free(res);
	herd_aggregator_free(agg);
	herd_job_free(job);
	herd_command_free(req);
}

/* Fragment → command → bytes → command → fragment, compared field by field. */
static void assert_round_trip(const struct herd_fragment *f)
{
	struct herd_command *c = herd_fragment_to_command(f, "a", "b");
	json_t *j = herd_command_to_json(c);
	char *s = json_dumps(j, JSON_COMPACT);
	struct herd_command *c2;
	assert_int_equal(herd_command_parse(s, strlen(s), &c2), HERD_OK);
	struct herd_fragment *g;
	if (herd_fragment_from_command(c2, &g))
		fail_msg("%s", herd_last_error());
	assert_string_equal(g->job_id, f->job_id);
	assert_string_equal(g->fragment_id, f->fragment_id);
	assert_int_equal(g->index, f->index);
	assert_int_equal(g->total, f->total);
	assert_string_equal(g->model_name, f->model_name);
	assert_int_equal(g->kind, f->kind);
	assert_memory_equal(&g->piece, &f->piece, sizeof g->piece);
	assert_int_equal(g->max_tokens, f->max_tokens);
	assert_true(g->temperature == f->temperature && g->top_p == f->top_p);
	if (f->kind == HERD_INPUT_TEXT) {
		assert_int_equal(g->text_len, f->text_len);
		assert_memory_equal(g->text, f->text, f->text_len);
		assert_int_equal(g->context_before_len, f->context_before_len);
		assert_memory_equal(g->context_before, f->context_before, f->context_before_len);
		assert_int_equal(g->context_after_len, f->context_after_len);
		assert_memory_equal(g->context_after, f->context_after, f->context_after_len);
	} else {
		assert_int_equal(g->n_items, f->n_items);
		for (size_t i = 0; i < f->n_items; i++)
			assert_string_equal(g->items[i], f->items[i]);
	}
	assert_true(json_equal(g->params, f->params));
	herd_fragment_free(g);
	herd_command_free(c2);
	free(s);
	json_decref(j);
	herd_command_free(c);
}

static void fragment_processing(void **state)
{
	(void)state;
	struct herd_job *job =
	    job_from("{\"model_name\": \"m\", \"input_data\": \"Ünïcödé text, "
		     "with 🦙 llamas.\\n\\nAnd a second paragraph here.\", "
		     "\"num_fragments\": 5, \"context_overlap\": 7, \"seed\": 3, "
		     "\"extra\": {\"k\": [1, 2.5, null]}}",
		     "JP", 0);
	assert_int_equal(job->n_fragments, 5);
	for (int i = 0; i < job->n_fragments; i++)
		assert_round_trip(&job->fragments[i]);
	herd_job_free(job);
	job = job_from("{\"model_name\": \"m\", \"input_data\": [\"x\", \"\", \"zé\"], "
		       "\"num_fragments\": 2}",
		       "JA", 0);
	for (int i = 0; i < job->n_fragments; i++)
		assert_round_trip(&job->fragments[i]);
	herd_job_free(job);
}

static void complete_workflow(void **state)
{
	(void)state;
	const char *body =
	    "{\"command\": \"EXECUTE_TASK\", \"request_id\": \"wf\", \"from\": \"cli\", "
	    "\"timestamp\": 1700000001.5, \"params\": {\"task_type\": \"llama_inference\", "
	    "\"model_name\": \"stories\", \"input_data\": \"The cat sat. The dog ran!\\n\\nThen "
	    "the bird sang a long song about the sea, and the fish listened.\", "
	    "\"max_tokens\": 16, \"temperature\": 0, \"top_p\": 1, \"num_fragments\": 4}}";
	struct herd_command *req;
	assert_int_equal(herd_command_parse(body, strlen(body), &req), HERD_OK);
	struct herd_job *job;
	assert_int_equal(herd_job_from_request(req, NULL, &job), HERD_OK);
	assert_int_equal(job->n_fragments, 4);
	struct herd_aggregator *agg = herd_aggregator_new(job);
	static const int order[] = {3, 1, 0, 2};
	for (int k = 0; k < 4; k++) {
		/* coordinator → wire → worker */
		struct herd_command *c =
		    herd_fragment_to_command(&job->fragments[order[k]], "coord", "w");
		json_t *cj = herd_command_to_json(c);
		char *wire = json_dumps(cj, JSON_COMPACT);
		struct herd_command *wc;
		assert_int_equal(herd_command_parse(wire, strlen(wire), &wc), HERD_OK);
		struct herd_fragment *f;
		assert_int_equal(herd_fragment_from_command(wc, &f), HERD_OK);
		/* worker → answer on the wire → coordinator */
		struct herd_fragment_result *r = echo(f);
		struct herd_command *ans =
		    herd_command_answer_success(wc, "w", herd_fragment_result_to_json(r));
		json_t *aj = herd_command_to_json(ans);
		char *awire = json_dumps(aj, JSON_COMPACT);
		struct herd_command *back;
		assert_int_equal(herd_command_parse(awire, strlen(awire), &back), HERD_OK);
		assert_int_equal(back->status, HERD_COMMAND_SUCCESS);
		struct herd_fragment_result *got;
		assert_int_equal(herd_fragment_result_from_json(back->result, &got), HERD_OK);
		assert_string_equal(got->node_id, "node-x");
		assert_int_equal(herd_aggregator_add(agg, got), HERD_OK);
		herd_fragment_result_free(got);
		herd_command_free(back);
		free(awire);
		json_decref(aj);
		herd_command_free(ans);
		herd_fragment_result_free(r);
		herd_fragment_free(f);
		herd_command_free(wc);
		free(wire);
		json_decref(cj);
		herd_command_free(c);
	}
	struct herd_job_result *res;
	assert_int_equal(herd_aggregator_finish(agg, &res), HERD_OK);
	json_t *resp = herd_job_result_to_response(res, req, "coord");
	json_t *r = json_object_get(resp, "result");
	/* echoed spans tile the input: the combined output is the input itself */
	assert_string_equal(pstr(r, "output"), "The cat sat. The dog ran!\n\nThen the bird sang a "
					       "long song about the sea, and the fish listened.");
	assert_int_equal(pint(r, "total_tokens"), 10 + 11 + 12 + 13);
	assert_string_equal(pstr(resp, "to"), "cli");
	assert_string_equal(pstr(resp, "request_id"), "wf");
	json_decref(resp);
	herd_job_result_free(res);
	herd_aggregator_free(agg);
	herd_job_free(job);
	herd_command_free(req);
}

static void edge_cases(void **state)
{
	(void)state;
	/* one fragment: the whole input, the window is the input */
	struct herd_job *job =
	    job_from("{\"model_name\": \"m\", \"input_data\": \"just one\"}", "E", 1);
	assert_int_equal(job->n_fragments, 1);
	assert_int_equal(job->fragments[0].text_len, 8);
	assert_int_equal(job->fragments[0].piece.window_start, 0);
	assert_int_equal(job->fragments[0].piece.window_end, 8);
	assert_int_equal(job->fragments[0].context_before_len, 0);
	herd_job_free(job);
	/* more fragments than characters: one per character, none empty */
	job = job_from(
	    "{\"model_name\": \"m\", \"input_data\": \"h\u00e9llo\", \"num_fragments\": 64}", "E",
	    0);
	assert_int_equal(job->n_fragments, 5);
	assert_int_equal(job->fragments[1].text_len, 2); /* é */
	assert_memory_equal(job->fragments[1].text, "\xc3\xa9", 2);
	for (int i = 0; i < 5; i++)
		assert_int_equal(job->fragments[i].total, 5);
	herd_job_free(job);
	/* more fragments than items */
	job = job_from("{\"model_name\": \"m\", \"input_data\": [\"a\",\"b\",\"c\"], "
		       "\"num_fragments\": 16384}",
		       "E", 0);
	assert_int_equal(job->n_fragments, 3);
	herd_job_free(job);
	/* one character, the maximum fragment count */
	job = job_from("{\"model_name\": \"m\", \"input_data\": \"\\ud83e\\udd99\"}", "E", 16384);
	assert_int_equal(job->n_fragments, 1);
	assert_int_equal(job->fragments[0].text_len, 4);
	herd_job_free(job);
}

static void context_window_handling(void **state)
{
	(void)state;
	/* "ab " "日本 " "cd": 日 and 本 are 3 bytes each */
	const char *t = "ab \xe6\x97\xa5\xe6\x9c\xac cd";
	struct herd_piece *p;
	int n;
	assert_int_equal(herd_split_text(t, strlen(t), 3, 2, &p, &n), HERD_OK);
	assert_int_equal(n, 3);
	/* spans: "ab " [0,3), "日本 " [3,10), "cd" [10,12) */
	assert_int_equal(p[0].span_end, 3);
	assert_int_equal(p[1].span_end, 10);
	/* overlap 2 bytes: fragment 0's window ends at 5, inside 日 → back to 3 */
	assert_int_equal(p[0].window_start, 0);
	assert_int_equal(p[0].window_end, 3);
	assert_int_equal(p[1].window_start, 1);
	assert_int_equal(p[1].window_end, 12);
	/* fragment 2's window starts 2 bytes back at 8, inside 本 (6..9) → forward to 9 */
	assert_int_equal(p[2].window_start, 9);
	assert_int_equal(p[2].window_end, 12);
	free(p);
	/* overlap 0: windows are the spans */
	assert_int_equal(herd_split_text(t, strlen(t), 3, 0, &p, &n), HERD_OK);
	for (int i = 0; i < n; i++) {
		assert_int_equal(p[i].window_start, p[i].span_start);
		assert_int_equal(p[i].window_end, p[i].span_end);
	}
	free(p);
	/* the job's fragments carry the window's text */
	struct herd_job *job = job_from("{\"model_name\": \"m\", \"input_data\": \"one two three "
					"four\", \"context_overlap\": 4, \"num_fragments\": 2}",
					"C", 0);
	const struct herd_fragment *f = &job->fragments[1];
	assert_string_equal(f->text, "three four"); /* 18 bytes, ideal 9 → word at 8 */
	assert_string_equal(f->context_before, "two ");
	assert_string_equal(job->fragments[0].context_after, "thre");
	herd_job_free(job);
}

static void parameter_preservation(void **state)
{
	(void)state;
	const char *params =
	    "{\"task_type\": \"llama_inference\", \"model_name\": \"m\", \"input_data\": \"a b "
	    "c d e f g h\", \"max_tokens\": 7, \"temperature\": 0.7, \"top_p\": 0.9, "
	    "\"num_fragments\": 3, \"prompt_template\": \"Summarize: {input}\", "
	    "\"context_overlap\": 2, \"seed\": 42, \"stream\": true, \"stop\": [\"\\n\"], "
	    "\"custom\": {\"nested\": [1, {\"deep\": \"x\"}], \"big\": 12345678901234}}";
	struct herd_command *req = request(params);
	struct herd_job *job;
	assert_int_equal(herd_job_from_request(req, NULL, &job), HERD_OK);
	assert_int_equal(job->n_fragments, 3);
	for (int i = 0; i < job->n_fragments; i++) {
		struct herd_command *c = herd_fragment_to_command(&job->fragments[i], "a", "b");
		const char *key;
		json_t *v;
		json_object_foreach(req->params, key, v)
		{
			if (!strcmp(key, "input_data") || !strcmp(key, "task_type"))
				continue;
			json_t *got = json_object_get(c->params, key);
			if (!got || !json_equal(got, v))
				fail_msg("fragment %d: params.%s not preserved", i, key);
		}
		herd_command_free(c);
	}
	herd_job_free(job);
	herd_command_free(req);
}

/* ---------------------------------------------------------------- properties */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* Appends one generated character of the given style. */
static size_t gen_char(char *s, int style)
{
	static const char *const multi[] = {"\xc3\xa9",
					    "\xd0\x96",
					    "\xe6\x97\xa5",
					    "\xe2\x82\xac",
					    "\xf0\x9f\xa6\x99",
					    "\xf0\x90\x8d\x88",
					    " ",
					    ".",
					    "\n"};
	static const char ascii[] = "abcdefghij  .,!?\n";
	static const char ws[] = " \t\n\r";
	const char *c;
	char one[2] = {0};
	switch (style) {
	case 0:
		one[0] = ascii[next() % (sizeof ascii - 1)];
		c = one;
		break;
	case 1:
		c = multi[next() % 9];
		break;
	case 2:
		c = multi[next() % 6];
		break; /* no spaces */
	case 3:
		one[0] = ws[next() % 4];
		c = one;
		break; /* only whitespace */
	default:
		c = multi[next() % 6];
		break;
	}
	size_t n = strlen(c);
	memcpy(s, c, n);
	return n;
}

static void split_properties(void **state)
{
	(void)state;
	char buf[4 * 400 + 1];
	int cases = 0;
	for (int style = 0; style < 5; style++) {
		for (int k = 0; k < 12; k++) {
			size_t chars = style == 4 ? 1 : 1 + next() % (k < 6 ? 40 : 400);
			size_t len = 0;
			for (size_t c = 0; c < chars; c++)
				len += gen_char(buf + len, style);
			assert_true(herd_utf8_valid(buf, len, NULL));
			assert_int_equal(herd_utf8_count(buf, len), chars);
			for (int n = 1; n <= 64; n++) {
				size_t overlap = next() % 24;
				struct herd_piece *p;
				int m;
				assert_int_equal(herd_split_text(buf, len, n, overlap, &p, &m),
						 HERD_OK);
				assert_int_equal(m, (size_t)n < chars ? (size_t)n : chars);
				size_t at = 0;
				for (int i = 0; i < m; i++) {
					assert_int_equal(p[i].span_start, at);
					assert_true(p[i].span_end > p[i].span_start);
					assert_true(herd_utf8_valid(buf + p[i].span_start,
								    p[i].span_end - p[i].span_start,
								    NULL));
					assert_true(p[i].window_start <= p[i].span_start);
					assert_true(p[i].window_end >= p[i].span_end);
					assert_true(p[i].window_end <= len);
					assert_true(p[i].span_start - p[i].window_start <= overlap);
					assert_true(p[i].window_end - p[i].span_end <= overlap);
					assert_true(herd_utf8_valid(
					    buf + p[i].window_start,
					    p[i].window_end - p[i].window_start, NULL));
					at = p[i].span_end;
				}
				assert_int_equal(at, len); /* spans tile the input */
				free(p);
				cases++;
			}
		}
	}
	assert_int_equal(cases, 5 * 12 * 64);
}

static void array_split_properties(void **state)
{
	(void)state;
	for (size_t items = 1; items <= 200; items++) {
		for (int n = 1; n <= 64; n++) {
			struct herd_piece *p;
			int m;
			assert_int_equal(herd_split_array(items, n, &p, &m), HERD_OK);
			size_t per = (items + (size_t)n - 1) / (size_t)n;
			assert_int_equal(m, (items + per - 1) / per);
			assert_true(m <= n);
			size_t at = 0;
			for (int i = 0; i < m; i++) {
				assert_int_equal(p[i].span_start, at);
				assert_true(p[i].span_end - p[i].span_start == per || i == m - 1);
				at = p[i].span_end;
			}
			assert_int_equal(at, items);
			free(p);
		}
	}
}

/* ---------------------------------------------------------------- bad input */

static void bad_missing_model_name(void **state)
{
	(void)state;
	refused_params("{\"input_data\": \"x\"}", HERD_ERR_BAD_INPUT,
		       "params.model_name: required");
	refused_params("{\"model_name\": 3, \"input_data\": \"x\"}", HERD_ERR_BAD_INPUT,
		       "params.model_name: must be a string, got an integer");
	refused_params("{\"model_name\": \"\", \"input_data\": \"x\"}", HERD_ERR_BAD_INPUT,
		       "params.model_name: must not be empty");
}

static void bad_input_data_type(void **state)
{
	(void)state;
	refused_params(
	    "{\"model_name\": \"m\", \"input_data\": 42}", HERD_ERR_BAD_INPUT,
	    "params.input_data: must be a string or an array of strings, got an integer");
	refused_params("{\"model_name\": \"m\", \"input_data\": {\"a\": 1}}", HERD_ERR_BAD_INPUT,
		       "params.input_data: must be a string or an array of strings, got an object");
	refused_params("{\"model_name\": \"m\"}", HERD_ERR_BAD_INPUT,
		       "params.input_data: required");
	refused_params("{\"model_name\": \"m\", \"input_data\": \"\"}", HERD_ERR_BAD_INPUT,
		       "params.input_data: must not be empty");
}

static void bad_num_fragments(void **state)
{
	(void)state;
	refused_params("{\"model_name\": \"m\", \"input_data\": \"x\", \"num_fragments\": 0}",
		       HERD_ERR_BAD_INPUT, "params.num_fragments: must be 1..16384, got 0");
	refused_params("{\"model_name\": \"m\", \"input_data\": \"x\", \"num_fragments\": -3}",
		       HERD_ERR_BAD_INPUT, "params.num_fragments: must be 1..16384, got -3");
	refused_params("{\"model_name\": \"m\", \"input_data\": \"x\", \"num_fragments\": 16385}",
		       HERD_ERR_BAD_INPUT, "params.num_fragments: must be 1..16384, got 16385");
	refused_params("{\"model_name\": \"m\", \"input_data\": \"x\", \"num_fragments\": 2.5}",
		       HERD_ERR_BAD_INPUT,
		       "params.num_fragments: must be an integer 1..16384, got a real");
}

static void bad_max_tokens_and_temperature(void **state)
{
	(void)state;
	refused_params("{\"model_name\": \"m\", \"input_data\": \"x\", \"max_tokens\": -1}",
		       HERD_ERR_BAD_INPUT, "params.max_tokens: must be 1..32768, got -1");
	refused_params("{\"model_name\": \"m\", \"input_data\": \"x\", \"temperature\": -0.5}",
		       HERD_ERR_BAD_INPUT, "params.temperature: must be 0..100, got -0.5");
	refused_params("{\"model_name\": \"m\", \"input_data\": \"x\", \"temperature\": \"hot\"}",
		       HERD_ERR_BAD_INPUT,
		       "params.temperature: must be a number 0..100, got a string");
	refused_params("{\"model_name\": \"m\", \"input_data\": \"x\", \"top_p\": 1.5}",
		       HERD_ERR_BAD_INPUT, "params.top_p: must be 0..1, got 1.5");
	refused_params("{\"model_name\": \"m\", \"input_data\": \"x\", \"stream\": 1}",
		       HERD_ERR_BAD_INPUT, "params.stream: must be a boolean");
	refused_params("{\"model_name\": \"m\", \"input_data\": \"x\", \"fragment_index\": 1}",
		       HERD_ERR_BAD_INPUT, "params.fragment_index: reserved");
}

static void bad_malformed_json(void **state)
{
	(void)state;
	refused("{\"command\": \"EXECUTE_TASK\",\n \"params\": {\"a\": }}", HERD_ERR_BAD_INPUT,
		"malformed JSON at line 2, column");
	refused("", HERD_ERR_BAD_INPUT, "malformed JSON: empty body");
	refused("{\"command\": \"EXECUTE_TASK\", \"command\": \"PING\"}", HERD_ERR_BAD_INPUT,
		"duplicate object key");
	refused("[1, 2]", HERD_ERR_BAD_INPUT, "request: must be a JSON object");
	refused("{\"command\": \"RUN\", \"request_id\": \"r\"}", HERD_ERR_BAD_INPUT,
		"command: must be one of EXECUTE_TASK");
	refused("{\"command\": \"EXECUTE_TASK\"}", HERD_ERR_BAD_INPUT, "request_id: required");
	refused("{\"command\": \"EXECUTE_TASK\", \"request_id\": \"r\", \"params\": [1]}",
		HERD_ERR_BAD_INPUT, "params: must be an object");
}

static void bad_deep_nesting(void **state)
{
	(void)state;
	/* 100,000 deep: jansson stops at its own limit; no crash, a message with a place */
	size_t depth = 100000;
	char *s = herd_xmalloc(2 * depth + 1);
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	struct herd_command *c = (struct herd_command *)1;
	assert_int_equal(herd_command_parse(s, 2 * depth, &c), HERD_ERR_BAD_INPUT);
	assert_null(c);
	assert_non_null(strstr(herd_last_error(), "malformed JSON at line 1"));
	free(s);
	/* 100 deep inside params: valid JSON, over herd's own limit */
	char body[1024];
	int n =
	    sprintf(body, "{\"command\": \"PING\", \"request_id\": \"r\", \"params\": {\"x\": ");
	for (int i = 0; i < 98; i++)
		body[n++] = '[';
	for (int i = 0; i < 98; i++)
		body[n++] = ']';
	n += sprintf(body + n, "}}");
	assert_int_equal(herd_command_parse(body, (size_t)n, &c), HERD_ERR_LIMIT);
	assert_string_equal(herd_last_error(),
			    "request: JSON nesting must be at most 64 deep, got 100");
	/* depth is measured iteratively, exactly */
	json_t *j = json_loads("[[[{\"a\": [1]}]], 2]", 0, NULL);
	assert_int_equal(herd_json_depth(j), 6);
	json_decref(j);
}

static void bad_utf8(void **state)
{
	(void)state;
	refused(
	    "{\"command\": \"EXECUTE_TASK\", \"request_id\": \"r\", \"params\": {\"model_name\": "
	    "\"m\", \"input_data\": \"ab\xff\"}}",
	    HERD_ERR_BAD_INPUT, "malformed JSON at line 1");
	struct herd_piece *p;
	int n;
	assert_int_equal(herd_split_text("ab\xc3(", 4, 2, 0, &p, &n), HERD_ERR_BAD_INPUT);
	assert_string_equal(herd_last_error(),
			    "params.input_data: must be valid UTF-8, bad byte at offset 2");
	size_t at;
	assert_false(herd_utf8_valid("\xed\xa0\x80", 3, &at)); /* a surrogate */
	assert_int_equal(at, 0);
	assert_false(herd_utf8_valid("a\xc0\xaf", 3, &at)); /* overlong "/" */
	assert_int_equal(at, 1);
	assert_false(herd_utf8_valid("\xf4\x90\x80\x80", 4, &at)); /* > U+10FFFF */
	assert_true(herd_utf8_valid("\xf0\x9f\xa6\x99", 4, NULL));
}

static void bad_input_too_large(void **state)
{
	(void)state;
	size_t len = HERD_MAX_INPUT_BYTES + 1;
	char *big = herd_xmalloc(len);
	memset(big, 'a', len);
	struct herd_command *c = herd_command_new(HERD_COMMAND_EXECUTE_TASK, "r", NULL, NULL);
	herd_command_with_param(c, "model_name", json_string("m"));
	herd_command_with_param(c, "input_data", json_stringn(big, len));
	free(big);
	struct herd_job *job;
	assert_int_equal(herd_job_from_request(c, NULL, &job), HERD_ERR_LIMIT);
	assert_non_null(strstr(herd_last_error(),
			       "params.input_data: must be at most 67108864 bytes, got 67108865"));
	herd_command_free(c);
}

static void bad_arrays(void **state)
{
	(void)state;
	refused_params("{\"model_name\": \"m\", \"input_data\": []}", HERD_ERR_BAD_INPUT,
		       "params.input_data: array must not be empty");
	refused_params("{\"model_name\": \"m\", \"input_data\": [\"a\", 2]}", HERD_ERR_BAD_INPUT,
		       "params.input_data[1]: must be a string, got an integer");
	refused_params("{\"model_name\": \"m\", \"input_data\": [\"a\", [\"b\"]]}",
		       HERD_ERR_BAD_INPUT, "params.input_data[1]: must be a string, got an array");
}

static void bad_fragment_commands(void **state)
{
	(void)state;
	struct herd_job *job = job_from("{\"model_name\": \"m\", \"input_data\": \"one two three "
					"four\", \"num_fragments\": 2, \"context_overlap\": 3}",
					"JB", 0);
	static const struct {
		const char *key, *json, *want;
	} cases[] = {
	    {"fragment_id", "\"JB-frag-7\"", "params.fragment_id: must be \"JB-frag-1\""},
	    {"fragment_index", "2", "params.fragment_index: must be 0..1, got 2"},
	    {"total_fragments", "0", "params.total_fragments: must be 1..16384, got 0"},
	    {"context_before", "\"xx\"", "params.context_before/context_after: must be 3 and 0"},
	    {"input_data", "\"four\"", "params.input_data: must be span_end - span_start"},
	    {"context_window_start", "99", "params.context_window_start: must be 0..8, got 99"},
	    {"task_type", "\"llama_inference\"", "params.task_type: must be \"llama_fragment\""},
	    {"job_id", "\"a/b\"", "params.job_id: must be of A-Z"},
	    {"max_tokens", "-4", "params.max_tokens: must be 1..32768, got -4"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct herd_command *c = herd_fragment_to_command(&job->fragments[1], "a", "b");
		json_object_set_new(c->params, cases[i].key,
				    json_loads(cases[i].json, JSON_DECODE_ANY, NULL));
		struct herd_fragment *f = (struct herd_fragment *)1;
		assert_int_equal(herd_fragment_from_command(c, &f), HERD_ERR_BAD_INPUT);
		assert_null(f);
		if (!strstr(herd_last_error(), cases[i].want))
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].key, herd_last_error(),
				 cases[i].want);
		herd_command_free(c);
	}
	herd_job_free(job);
}

static void bad_results(void **state)
{
	(void)state;
	struct herd_job *job = job_from("{\"model_name\": \"m\", \"input_data\": \"a b c\", "
					"\"num_fragments\": 3}",
					"JR", 0);
	struct herd_aggregator *agg = herd_aggregator_new(job);
	struct herd_fragment_result *r = echo(&job->fragments[1]);
	assert_int_equal(herd_aggregator_add(agg, r), HERD_OK);
	assert_int_equal(herd_aggregator_add(agg, r), HERD_ERR_BAD_INPUT);
	assert_string_equal(
	    herd_last_error(),
	    "result.fragment_index: 1 is a duplicate (already received) for job JR");
	r->index = 3;
	assert_int_equal(herd_aggregator_add(agg, r), HERD_ERR_BAD_INPUT);
	assert_string_equal(herd_last_error(),
			    "result.fragment_index: 3 is out of range 0..2 for job JR");
	r->index = 0;
	json_decref(r->output);
	r->output = json_pack("[s]", "x");
	assert_int_equal(herd_aggregator_add(agg, r), HERD_ERR_BAD_INPUT);
	assert_non_null(strstr(herd_last_error(), "must be a string"));
	free(r->job_id);
	r->job_id = herd_xstrdup("OTHER");
	assert_int_equal(herd_aggregator_add(agg, r), HERD_ERR_BAD_INPUT);
	assert_int_equal(herd_aggregator_received(agg), 1);
	struct herd_job_result *res = (struct herd_job_result *)1;
	assert_int_equal(herd_aggregator_finish(agg, &res), HERD_ERR_BAD_INPUT);
	assert_null(res);
	assert_string_equal(herd_last_error(), "job JR: fragment 0 is missing (1 of 3 received)");
	herd_fragment_result_free(r);

	/* result JSON from a peer */
	static const char *const bad[][2] = {
	    {"{\"job_id\": \"JR\", \"fragment_id\": \"f\", \"fragment_index\": -1, \"output\": "
	     "\"\", "
	     "\"tokens_generated\": 0, \"processing_time_ms\": 1}",
	     "result.fragment_index"},
	    {"{\"job_id\": \"JR\", \"fragment_id\": \"f\", \"fragment_index\": 0, \"output\": 5, "
	     "\"tokens_generated\": 0, \"processing_time_ms\": 1}",
	     "result.output"},
	    {"{\"job_id\": \"JR\", \"fragment_id\": \"f\", \"fragment_index\": 0, \"output\": "
	     "\"\", "
	     "\"tokens_generated\": -2, \"processing_time_ms\": 1}",
	     "result.tokens_generated"},
	    {"{\"fragment_id\": \"f\"}", "result.job_id"},
	};
	for (size_t i = 0; i < 4; i++) {
		json_t *j = json_loads(bad[i][0], 0, NULL);
		struct herd_fragment_result *got = (struct herd_fragment_result *)1;
		assert_int_equal(herd_fragment_result_from_json(j, &got), HERD_ERR_BAD_INPUT);
		assert_null(got);
		assert_non_null(strstr(herd_last_error(), bad[i][1]));
		json_decref(j);
	}
	herd_aggregator_free(agg);
	herd_job_free(job);
}

static void command_envelope(void **state)
{
	(void)state;
	struct herd_command *c = herd_command_new(HERD_COMMAND_PING, NULL, "n1", NULL);
	assert_int_equal(herd_command_with_param(c, "x", json_integer(1)), HERD_OK);
	json_t *j = herd_command_to_json(c);
	assert_string_equal(pstr(j, "command"), "PING");
	assert_true(strncmp(pstr(j, "request_id"), "req-", 4) == 0);
	assert_string_equal(pstr(j, "to"), "");
	assert_int_equal(pint(json_object_get(j, "params"), "x"), 1);
	struct herd_command *d = herd_command_new(HERD_COMMAND_PING, NULL, NULL, NULL);
	assert_string_not_equal(c->request_id, d->request_id);
	herd_command_free(d);
	struct herd_command *e =
	    herd_command_answer_error(c, "n2", HERD_ERR_NOT_FOUND, "no such job");
	json_t *ej = herd_command_to_json(e);
	assert_string_equal(pstr(ej, "status"), "error");
	assert_string_equal(pstr(ej, "to"), "n1");
	assert_string_equal(pstr(json_object_get(ej, "error"), "code"), "NOT_FOUND");
	assert_string_equal(pstr(json_object_get(ej, "error"), "message"), "no such job");
	struct herd_command *back;
	assert_int_equal(herd_command_from_json(ej, &back), HERD_OK);
	assert_int_equal(back->status, HERD_COMMAND_ERROR);
	assert_string_equal(back->error_message, "no such job");
	herd_command_free(back);
	for (int k = 0; k < HERD_COMMAND_COUNT_; k++) {
		struct herd_command *x = herd_command_new(k, "id", NULL, NULL);
		json_t *xj = herd_command_to_json(x);
		struct herd_command *y;
		assert_int_equal(herd_command_from_json(xj, &y), HERD_OK);
		assert_int_equal(y->kind, k);
		herd_command_free(y);
		json_decref(xj);
		herd_command_free(x);
	}
	json_decref(ej);
	herd_command_free(e);
	json_decref(j);
	herd_command_free(c);
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
    cmocka_unit_test(job_creation_from_request),
    cmocka_unit_test(text_fragment_splitting),
    cmocka_unit_test(array_fragment_splitting),
    cmocka_unit_test(fragment_to_command_conversion),
    cmocka_unit_test(fragment_result_aggregation),
    cmocka_unit_test(result_ordering_out_of_order),
    cmocka_unit_test(job_result_to_response_conversion),
    cmocka_unit_test(fragment_processing),
    cmocka_unit_test(complete_workflow),
    cmocka_unit_test(edge_cases),
    cmocka_unit_test(context_window_handling),
    cmocka_unit_test(parameter_preservation),
    cmocka_unit_test(split_properties),
    cmocka_unit_test(array_split_properties),
    cmocka_unit_test(bad_missing_model_name),
    cmocka_unit_test(bad_input_data_type),
    cmocka_unit_test(bad_num_fragments),
    cmocka_unit_test(bad_max_tokens_and_temperature),
    cmocka_unit_test(bad_malformed_json),
    cmocka_unit_test(bad_deep_nesting),
    cmocka_unit_test(bad_utf8),
    cmocka_unit_test(bad_input_too_large),
    cmocka_unit_test(bad_arrays),
    cmocka_unit_test(bad_fragment_commands),
    cmocka_unit_test(bad_results),
    cmocka_unit_test(command_envelope),
}))
