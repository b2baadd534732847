/* job — an EXECUTE_TASK / llama_inference request becomes a validated job and its
 * fragments; a fragment becomes a llama_fragment command and (on the worker) back again.
 *
 * Parameter preservation: every request param reaches every fragment command unchanged;
 * herd only adds the fragment's own fields (and max_tokens/temperature/top_p defaults when
 * absent). Those field names are therefore reserved and refused in a request. */
#include "proto.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODEL_NAME_BYTES 256 /* a model name is a file stem, not text */
#define MAX_JOB_ID_BYTES 128	 /* appears in URLs and fragment ids */

static const char *const reserved[] = {
    "job_id",
    "fragment_id",
    "fragment_index",
    "total_fragments",
    "context_window_start",
    "context_window_end",
    "span_start",
    "span_end",
    "context_before",
    "context_after",
};
#define NRESERVED (sizeof reserved / sizeof reserved[0])

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a real number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* An optional integer param in [min, max]; absent or null gives dflt. */
static enum herd_err get_int(const json_t *params, const char *key, int64_t min, int64_t max,
			     int64_t dflt, int64_t *out)
{
	json_t *v = json_object_get(params, key);
	if (!v || json_is_null(v)) {
		*out = dflt;
		return HERD_OK;
	}
	if (!json_is_integer(v))
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "params.%s: must be an integer %" PRId64 "..%" PRId64 ", got %s",
				 key, min, max, type_name(v));
	int64_t x = (int64_t)json_integer_value(v);
	if (x < min || x > max)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "params.%s: must be %" PRId64 "..%" PRId64 ", got %" PRId64, key,
				 min, max, x);
	*out = x;
	return HERD_OK;
}

static enum herd_err need_int(const json_t *params, const char *key, int64_t min, int64_t max,
			      int64_t *out)
{
	if (!json_object_get(params, key))
		return herd_fail(HERD_ERR_BAD_INPUT, "params.%s: required", key);
	return get_int(params, key, min, max, 0, out);
}

static enum herd_err get_number(const json_t *params, const char *key, double min, double max,
				double dflt, double *out)
{
	json_t *v = json_object_get(params, key);
	if (!v || json_is_null(v)) {
		*out = dflt;
		return HERD_OK;
	}
	if (!json_is_number(v))
		return herd_fail(HERD_ERR_BAD_INPUT, "params.%s: must be a number %g..%g, got %s",
				 key, min, max, type_name(v));
	double x = json_number_value(v);
	if (!(x >= min && x <= max))
		return herd_fail(HERD_ERR_BAD_INPUT, "params.%s: must be %g..%g, got %g", key, min,
				 max, x);
	*out = x;
	return HERD_OK;
}

/* A required string param of 1..max bytes without NUL; *out borrows it. */
static enum herd_err need_string(const json_t *params, const char *key, size_t max,
				 const char **out)
{
	json_t *v = json_object_get(params, key);
	if (!v || json_is_null(v))
		return herd_fail(HERD_ERR_BAD_INPUT, "params.%s: required", key);
	if (!json_is_string(v))
		return herd_fail(HERD_ERR_BAD_INPUT, "params.%s: must be a string, got %s", key,
				 type_name(v));
	size_t len = json_string_length(v);
	if (len == 0)
		return herd_fail(HERD_ERR_BAD_INPUT, "params.%s: must not be empty", key);
	if (len > max)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "params.%s: must be at most %zu bytes, got %zu", key, max, len);
	if (strlen(json_string_value(v)) != len)
		return herd_fail(HERD_ERR_BAD_INPUT, "params.%s: must not contain NUL characters",
				 key);
	*out = json_string_value(v);
	return HERD_OK;
}

/* Generation params shared by requests and fragment commands. */
struct gen {
	int64_t max_tokens;
	double temperature, top_p;
};

static enum herd_err check_gen(const json_t *params, struct gen *g)
{
	enum herd_err err;
	int64_t seed;
	if ((err = get_int(params, "max_tokens", 1, HERD_MAX_TOKENS, HERD_DEFAULT_MAX_TOKENS,
			   &g->max_tokens)) ||
	    (err = get_number(params, "temperature", 0, 100, HERD_DEFAULT_TEMPERATURE,
			      &g->temperature)) ||
	    (err = get_number(params, "top_p", 0, 1, HERD_DEFAULT_TOP_P, &g->top_p)) ||
	    (err = get_int(params, "seed", 0, INT64_MAX, 0, &seed)))
		return err;
	json_t *v = json_object_get(params, "stream");
	if (v && !json_is_null(v) && !json_is_boolean(v))
		return herd_fail(HERD_ERR_BAD_INPUT, "params.stream: must be a boolean, got %s",
				 type_name(v));
	v = json_object_get(params, "prompt_template");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v))
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "params.prompt_template: must be a string, got %s",
					 type_name(v));
		if (json_string_length(v) > HERD_MAX_PROMPT_TEMPLATE_BYTES)
			return herd_fail(
			    HERD_ERR_LIMIT,
			    "params.prompt_template: must be at most %u bytes, got %zu",
			    HERD_MAX_PROMPT_TEMPLATE_BYTES, json_string_length(v));
	}
	return HERD_OK;
}

static bool id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MAX_JOB_ID_BYTES)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.' || *s == ':'))
			return false;
	return true;
}

/* Checks params.input_data: a non-empty string, or 1..HERD_MAX_ARRAY_ITEMS strings. */
static enum herd_err check_input(const json_t *in, size_t *total_bytes)
{
	if (!in || json_is_null(in))
		return herd_fail(HERD_ERR_BAD_INPUT, "params.input_data: required");
	if (json_is_string(in)) {
		*total_bytes = json_string_length(in);
		if (*total_bytes == 0)
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "params.input_data: must not be empty");
		if (*total_bytes > HERD_MAX_INPUT_BYTES)
			return herd_fail(HERD_ERR_LIMIT,
					 "params.input_data: must be at most %u bytes, got %zu",
					 HERD_MAX_INPUT_BYTES, *total_bytes);
		return HERD_OK;
	}
	if (!json_is_array(in))
		return herd_fail(
		    HERD_ERR_BAD_INPUT,
		    "params.input_data: must be a string or an array of strings, got %s",
		    type_name(in));
	size_t n = json_array_size(in);
	if (n == 0)
		return herd_fail(HERD_ERR_BAD_INPUT, "params.input_data: array must not be empty");
	if (n > HERD_MAX_ARRAY_ITEMS)
		return herd_fail(HERD_ERR_LIMIT,
				 "params.input_data: must have at most %d items, got %zu",
				 HERD_MAX_ARRAY_ITEMS, n);
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *it = json_array_get(in, i);
		if (!json_is_string(it))
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "params.input_data[%zu]: must be a string, got %s", i,
					 type_name(it));
		if (strlen(json_string_value(it)) != json_string_length(it))
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "params.input_data[%zu]: must not contain NUL characters",
					 i);
		bytes += json_string_length(it);
	}
	if (bytes > HERD_MAX_INPUT_BYTES)
		return herd_fail(HERD_ERR_LIMIT,
				 "params.input_data: items must total at most %u bytes, got %zu",
				 HERD_MAX_INPUT_BYTES, bytes);
	*total_bytes = bytes;
	return HERD_OK;
}

static char *copy_bytes(const char *s, size_t n)
{
	char *c = herd_xmalloc(n + 1);
	memcpy(c, s, n);
	c[n] = 0;
	return c;
}

static char *fragment_id(const char *job_id, int index)
{
	char buf[MAX_JOB_ID_BYTES + 32];
	snprintf(buf, sizeof buf, "%s-frag-%d", job_id, index);
	return herd_xstrdup(buf);
}

static void fragment_clear(struct herd_fragment *f)
{
	free(f->job_id);
	free(f->fragment_id);
	free(f->model_name);
	free(f->text);
	free(f->context_before);
	free(f->context_after);
	for (size_t i = 0; i < f->n_items; i++)
		free(f->items[i]);
	free(f->items);
	json_decref(f->params);
}

void herd_fragment_free(struct herd_fragment *f)
{
	if (!f)
		return;
	fragment_clear(f);
	free(f);
}

void herd_job_free(struct herd_job *job)
{
	if (!job)
		return;
	for (int i = 0; i < job->n_fragments; i++)
		fragment_clear(&job->fragments[i]);
	free(job->fragments);
	free(job->job_id);
	herd_command_free(job->request);
	free(job->model_name);
	free(job->text);
	free(job);
}

/* FNV-1a: a stable job id from what identifies the request. */
static void derive_job_id(const struct herd_command *req, char *buf, size_t size)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *s = req->request_id; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	for (int i = 0; i < 8; i++)
		h = (h ^ (uint8_t)(req->timestamp >> (8 * i))) * 1099511628211ull;
	snprintf(buf, size, "job-%016" PRIx64, h);
}

enum herd_err herd_job_from_request(const struct herd_command *req,
				    const struct herd_job_opts *opts, struct herd_job **out)
{
	*out = NULL;
	static const struct herd_job_opts none = {0};
	if (!opts)
		opts = &none;
	if (req->kind != HERD_COMMAND_EXECUTE_TASK)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "command: must be EXECUTE_TASK for a job, got %s",
				 herd_command_name(req->kind));
	if (req->status != HERD_COMMAND_REQUEST)
		return herd_fail(HERD_ERR_BAD_INPUT, "status: a request must not have a status");
	const json_t *p = req->params;
	json_t *tt = json_object_get(p, "task_type");
	if (tt && !(json_is_string(tt) && !strcmp(json_string_value(tt), "llama_inference")))
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "params.task_type: must be \"llama_inference\" for a job");
	for (size_t i = 0; i < NRESERVED; i++)
		if (json_object_get(p, reserved[i]))
			return herd_fail(
			    HERD_ERR_BAD_INPUT,
			    "params.%s: reserved for fragment commands, not allowed in a request",
			    reserved[i]);

	enum herd_err err;
	const char *model;
	struct gen g;
	int64_t nfrag, overlap;
	size_t bytes;
	json_t *in = json_object_get(p, "input_data");
	if ((err = need_string(p, "model_name", MAX_MODEL_NAME_BYTES, &model)) ||
	    (err = check_input(in, &bytes)) ||
	    (err = get_int(p, "num_fragments", 1, HERD_MAX_FRAGMENTS, HERD_DEFAULT_NUM_FRAGMENTS,
			   &nfrag)) ||
	    (err = get_int(p, "context_overlap", 0, HERD_MAX_CONTEXT_OVERLAP,
			   HERD_DEFAULT_CONTEXT_OVERLAP, &overlap)) ||
	    (err = check_gen(p, &g)))
		return err;
	if (opts->num_fragments != 0) {
		if (opts->num_fragments < 1 || opts->num_fragments > HERD_MAX_FRAGMENTS)
			return herd_fail(HERD_ERR_BAD_INPUT, "num_fragments: must be 1..%d, got %d",
					 HERD_MAX_FRAGMENTS, opts->num_fragments);
		nfrag = opts->num_fragments;
	}
	char idbuf[MAX_JOB_ID_BYTES + 1];
	if (opts->job_id) {
		if (!id_ok(opts->job_id))
			return herd_fail(
			    HERD_ERR_BAD_INPUT,
			    "job_id: must be 1..%d of A-Z a-z 0-9 . _ : -, got \"%.64s\"",
			    MAX_JOB_ID_BYTES, opts->job_id);
		snprintf(idbuf, sizeof idbuf, "%s", opts->job_id);
	} else {
		derive_job_id(req, idbuf, sizeof idbuf);
	}

	struct herd_piece *pieces;
	int npieces;
	bool text = json_is_string(in);
	if (text) {
		err = herd_split_text(json_string_value(in), bytes, (int)nfrag, (size_t)overlap,
				      &pieces, &npieces);
	} else {
		err = herd_split_array(json_array_size(in), (int)nfrag, &pieces, &npieces);
	}
	if (err)
		return err;

	struct herd_job *job = herd_xcalloc(1, sizeof *job);
	job->job_id = herd_xstrdup(idbuf);
	job->model_name = herd_xstrdup(model);
	job->kind = text ? HERD_INPUT_TEXT : HERD_INPUT_ARRAY;
	if (text) {
		job->text = copy_bytes(json_string_value(in), bytes);
		job->text_len = bytes;
	} else {
		job->n_items = json_array_size(in);
	}
	job->num_fragments = (int)nfrag;
	job->num_fragments_auto = opts->num_fragments != 0 && opts->num_fragments_auto;
	job->context_overlap = (size_t)overlap;
	job->max_tokens = g.max_tokens;
	job->temperature = g.temperature;
	job->top_p = g.top_p;

	/* the request without its input: the input lives in job->text or the fragments */
	job->request = herd_command_new(req->kind, req->request_id, req->from, req->to);
	job->request->timestamp = req->timestamp;
	json_decref(job->request->params);
	job->request->params = json_deep_copy(p);
	json_object_del(job->request->params, "input_data");
	if (opts->num_fragments)
		json_object_set_new(job->request->params, "num_fragments",
				    json_integer(opts->num_fragments));

	/* what each fragment carries: the request params less input and task type, plus the
	 * generation defaults the worker needs */
	json_t *fparams = json_deep_copy(job->request->params);
	json_object_del(fparams, "task_type");
	if (!json_object_get(fparams, "max_tokens"))
		json_object_set_new(fparams, "max_tokens", json_integer(g.max_tokens));
	if (!json_object_get(fparams, "temperature"))
		json_object_set_new(fparams, "temperature", json_real(g.temperature));
	if (!json_object_get(fparams, "top_p"))
		json_object_set_new(fparams, "top_p", json_real(g.top_p));

	job->n_fragments = npieces;
	job->fragments = herd_xcalloc((size_t)npieces, sizeof *job->fragments);
	for (int i = 0; i < npieces; i++) {
		struct herd_fragment *f = &job->fragments[i];
		struct herd_piece pc = pieces[i];
		f->job_id = herd_xstrdup(job->job_id);
		f->fragment_id = fragment_id(job->job_id, i);
		f->index = i;
		f->total = npieces;
		f->model_name = herd_xstrdup(model);
		f->kind = job->kind;
		f->piece = pc;
		if (text) {
			f->text =
			    copy_bytes(job->text + pc.span_start, pc.span_end - pc.span_start);
			f->text_len = pc.span_end - pc.span_start;
			f->context_before = copy_bytes(job->text + pc.window_start,
						       pc.span_start - pc.window_start);
			f->context_before_len = pc.span_start - pc.window_start;
			f->context_after =
			    copy_bytes(job->text + pc.span_end, pc.window_end - pc.span_end);
			f->context_after_len = pc.window_end - pc.span_end;
		} else {
			f->n_items = pc.span_end - pc.span_start;
			f->items = herd_xcalloc(f->n_items, sizeof *f->items);
			for (size_t k = 0; k < f->n_items; k++)
				f->items[k] = herd_xstrdup(
				    json_string_value(json_array_get(in, pc.span_start + k)));
		}
		f->max_tokens = g.max_tokens;
		f->temperature = g.temperature;
		f->top_p = g.top_p;
		f->params = json_deep_copy(fparams);
	}
	json_decref(fparams);
	free(pieces);
	*out = job;
	return HERD_OK;
}

enum herd_err herd_job_parse(const char *body, size_t len, const struct herd_job_opts *opts,
			     struct herd_job **out)
{
	*out = NULL;
	struct herd_command *cmd;
	enum herd_err err = herd_command_parse(body, len, &cmd);
	if (err)
		return err;
	err = herd_job_from_request(cmd, opts, out);
	herd_command_free(cmd);
	return err;
}

json_t *herd_job_to_json(const struct herd_job *job)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:O}", "job_id", job->job_id,
			      "request_id", job->request->request_id, "model_name", job->model_name,
			      "input_kind", job->kind == HERD_INPUT_TEXT ? "text" : "array",
			      "num_fragments", job->num_fragments, "total_fragments",
			      job->n_fragments, "context_overlap", (json_int_t)job->context_overlap,
			      "params", job->request->params);
	HERD_ASSERT(j);
	if (job->num_fragments_auto)
		json_object_set_new(j, "num_fragments_auto", json_true());
	if (job->kind == HERD_INPUT_TEXT)
		json_object_set_new(j, "input_bytes", json_integer((json_int_t)job->text_len));
	else
		json_object_set_new(j, "input_items", json_integer((json_int_t)job->n_items));
	return j;
}

struct herd_command *herd_fragment_to_command(const struct herd_fragment *f, const char *from,
					      const char *peer_id)
{
	struct herd_command *c =
	    herd_command_new(HERD_COMMAND_EXECUTE_TASK, f->fragment_id, from, peer_id);
	json_decref(c->params);
	json_t *p = c->params = json_deep_copy(f->params);
	HERD_ASSERT(p);
	json_object_set_new(p, "task_type", json_string("llama_fragment"));
	json_object_set_new(p, "job_id", json_string(f->job_id));
	json_object_set_new(p, "fragment_id", json_string(f->fragment_id));
	json_object_set_new(p, "fragment_index", json_integer(f->index));
	json_object_set_new(p, "total_fragments", json_integer(f->total));
	json_object_set_new(p, "model_name", json_string(f->model_name));
	if (!json_object_get(p, "max_tokens"))
		json_object_set_new(p, "max_tokens", json_integer(f->max_tokens));
	if (!json_object_get(p, "temperature"))
		json_object_set_new(p, "temperature", json_real(f->temperature));
	if (!json_object_get(p, "top_p"))
		json_object_set_new(p, "top_p", json_real(f->top_p));
	json_object_set_new(p, "context_window_start",
			    json_integer((json_int_t)f->piece.window_start));
	json_object_set_new(p, "context_window_end", json_integer((json_int_t)f->piece.window_end));
	json_object_set_new(p, "span_start", json_integer((json_int_t)f->piece.span_start));
	json_object_set_new(p, "span_end", json_integer((json_int_t)f->piece.span_end));
	if (f->kind == HERD_INPUT_TEXT) {
		json_object_set_new(p, "input_data", json_stringn(f->text, f->text_len));
		json_object_set_new(p, "context_before",
				    json_stringn(f->context_before, f->context_before_len));
		json_object_set_new(p, "context_after",
				    json_stringn(f->context_after, f->context_after_len));
	} else {
		json_t *a = json_array();
		for (size_t i = 0; i < f->n_items; i++)
			json_array_append_new(a, json_string(f->items[i]));
		json_object_set_new(p, "input_data", a);
	}
	return c;
}

/* A string param (may be empty) copied with its length; required. */
static enum herd_err take_text(const json_t *p, const char *key, char **out, size_t *len)
{
	json_t *v = json_object_get(p, key);
	if (!v)
		return herd_fail(HERD_ERR_BAD_INPUT, "params.%s: required", key);
	if (!json_is_string(v))
		return herd_fail(HERD_ERR_BAD_INPUT, "params.%s: must be a string, got %s", key,
				 type_name(v));
	*len = json_string_length(v);
	*out = copy_bytes(json_string_value(v), *len);
	return HERD_OK;
}

enum herd_err herd_fragment_from_command(const struct herd_command *cmd, struct herd_fragment **out)
{
	*out = NULL;
	if (cmd->kind != HERD_COMMAND_EXECUTE_TASK || cmd->status != HERD_COMMAND_REQUEST)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "command: must be an EXECUTE_TASK request for a fragment");
	const json_t *p = cmd->params;
	json_t *tt = json_object_get(p, "task_type");
	if (!(json_is_string(tt) && !strcmp(json_string_value(tt), "llama_fragment")))
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "params.task_type: must be \"llama_fragment\"");

	enum herd_err err;
	const char *job_id, *model, *fid;
	int64_t index, total, ws, we, ss, se;
	struct gen g;
	size_t bytes;
	json_t *in = json_object_get(p, "input_data");
	if ((err = need_string(p, "job_id", MAX_JOB_ID_BYTES, &job_id)) ||
	    (err = need_string(p, "fragment_id", MAX_JOB_ID_BYTES + 32, &fid)) ||
	    (err = need_int(p, "total_fragments", 1, HERD_MAX_FRAGMENTS, &total)) ||
	    (err = need_int(p, "fragment_index", 0, total - 1, &index)) ||
	    (err = need_string(p, "model_name", MAX_MODEL_NAME_BYTES, &model)) ||
	    (err = check_input(in, &bytes)) || (err = check_gen(p, &g)) ||
	    (err = need_int(p, "span_start", 0, INT64_MAX, &ss)) ||
	    (err = need_int(p, "span_end", ss, INT64_MAX, &se)) ||
	    (err = need_int(p, "context_window_start", 0, ss, &ws)) ||
	    (err = need_int(p, "context_window_end", se, INT64_MAX, &we)))
		return err;
	if (!id_ok(job_id))
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "params.job_id: must be of A-Z a-z 0-9 . _ : -, got \"%.64s\"",
				 job_id);
	char *want = fragment_id(job_id, (int)index);
	bool same = !strcmp(want, fid);
	free(want);
	if (!same)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "params.fragment_id: must be \"%s-frag-%d\", got \"%.64s\"",
				 job_id, (int)index, fid);

	struct herd_fragment *f = herd_xcalloc(1, sizeof *f);
	f->job_id = herd_xstrdup(job_id);
	f->fragment_id = herd_xstrdup(fid);
	f->index = (int)index;
	f->total = (int)total;
	f->model_name = herd_xstrdup(model);
	f->piece = (struct herd_piece){(size_t)ss, (size_t)se, (size_t)ws, (size_t)we};
	f->max_tokens = g.max_tokens;
	f->temperature = g.temperature;
	f->top_p = g.top_p;
	if (json_is_string(in)) {
		f->kind = HERD_INPUT_TEXT;
		if ((err = take_text(p, "input_data", &f->text, &f->text_len)) ||
		    (err = take_text(p, "context_before", &f->context_before,
				     &f->context_before_len)) ||
		    (err = take_text(p, "context_after", &f->context_after, &f->context_after_len)))
			goto out;
		if (f->text_len != (size_t)(se - ss)) {
			err =
			    herd_fail(HERD_ERR_BAD_INPUT,
				      "params.input_data: must be span_end - span_start = %" PRId64
				      " bytes, got %zu",
				      se - ss, f->text_len);
			goto out;
		}
		if (f->context_before_len != (size_t)(ss - ws) ||
		    f->context_after_len != (size_t)(we - se)) {
			err = herd_fail(
			    HERD_ERR_BAD_INPUT,
			    "params.context_before/context_after: must be %" PRId64 " and %" PRId64
			    " bytes (the context window), got %zu and %zu",
			    ss - ws, we - se, f->context_before_len, f->context_after_len);
			goto out;
		}
	} else {
		f->kind = HERD_INPUT_ARRAY;
		f->n_items = json_array_size(in);
		if (f->n_items != (size_t)(se - ss) || ws != ss || we != se) {
			err = herd_fail(HERD_ERR_BAD_INPUT,
					"params.input_data: an array fragment must have span_end - "
					"span_start = %" PRId64
					" items and its window equal to its span, "
					"got %zu items",
					se - ss, f->n_items);
			f->n_items = 0;
			goto out;
		}
		f->items = herd_xcalloc(f->n_items, sizeof *f->items);
		for (size_t i = 0; i < f->n_items; i++)
			f->items[i] = herd_xstrdup(json_string_value(json_array_get(in, i)));
	}
	/* the params as the job had them: less what this command added */
	f->params = json_deep_copy(p);
	json_object_del(f->params, "task_type");
	json_object_del(f->params, "input_data");
	for (size_t i = 0; i < NRESERVED; i++)
		json_object_del(f->params, reserved[i]);
	*out = f;
	return HERD_OK;
out:
	herd_fragment_free(f);
	return err;
}
