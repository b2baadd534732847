/* openai — the OpenAI-compatible API: POST /v1/completions, POST /v1/chat/completions
 * (both also as "stream": true Server-Sent Events, `data: {...}` chunks ending with
 * `data: [DONE]`) and GET /v1/models, so that any OpenAI client can use a herd node.
 * The one thing to know: a single prompt runs on this node's worker as one fragment (no
 * splitting: the model must see the whole prompt); a prompt array is an array job spread
 * over the swarm by the coordinator, one choice per prompt. Fields we do not know are
 * ignored, as OpenAI clients send many; the ones we use are validated. */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <time.h>

#include "node_int.h"

struct oai {
	struct herd_node *n;
	bool chat, stream;
	char id[48];
	int64_t created;
	char model[HERD_CAP_MAX_NAME + 1];
	json_t *input; /* prompt: a string or an array of strings */
	int64_t max_tokens;
	double temperature, top_p;
	json_t *seed; /* integer or NULL */
	/* streaming state */
	struct herd_sse *sse;
	struct herd_command *cmd;
	struct herd_job *job;
	struct herd_work work;
	bool sent_role;
};

static void oai_free(struct oai *o)
{
	json_decref(o->input);
	json_decref(o->seed);
	herd_job_free(o->job);
	herd_command_free(o->cmd);
	free(o);
}

static void oai_error(struct herd_http_resp *resp, enum herd_err e, const char *msg)
{
	const char *type = e == HERD_ERR_BAD_INPUT || e == HERD_ERR_LIMIT ? "invalid_request_error"
			   : e == HERD_ERR_NOT_FOUND			  ? "not_found_error"
									  : "server_error";
	herd_http_resp_json(resp, herd_node_http_status(e),
			    json_pack("{s:s, s:{s:s, s:s, s:s, s:n}}", "status", "error", "error",
				      "code", herd_errcode(e), "message", msg, "type", type,
				      "param"));
}

static enum herd_err number(const json_t *body, const char *key, double min, double max,
			    double *out)
{
	json_t *v = json_object_get(body, key);
	if (!v || json_is_null(v))
		return HERD_OK;
	if (!json_is_number(v) || json_number_value(v) < min || json_number_value(v) > max)
		return herd_fail(HERD_ERR_BAD_INPUT, "%s: must be a number %g..%g", key, min, max);
	*out = json_number_value(v);
	return HERD_OK;
}

/* Validates the fields we use; the prompt (completions) or the rendered chat (chat). */
static enum herd_err parse(struct herd_node *n, const json_t *body, bool chat, struct oai **out)
{
	*out = NULL;
	if (!json_is_object(body))
		return herd_fail(HERD_ERR_BAD_INPUT, "request: must be a JSON object");
	const char *model = json_string_value(json_object_get(body, "model"));
	if (!model || !*model || strlen(model) > HERD_CAP_MAX_NAME)
		return herd_fail(HERD_ERR_BAD_INPUT, "model: required, a model name of 1..%d bytes",
				 HERD_CAP_MAX_NAME);
	struct oai *o = herd_xcalloc(1, sizeof *o);
	o->n = n;
	o->chat = chat;
	herd_node_copy(o->model, sizeof o->model, model);
	o->max_tokens = 16; /* OpenAI's default for completions */
	o->temperature = 1.0;
	o->top_p = 1.0;
	enum herd_err e = HERD_OK;
	json_t *v = json_object_get(body, chat ? "max_completion_tokens" : "max_tokens");
	if (!v && chat)
		v = json_object_get(body, "max_tokens");
	if (chat && (!v || json_is_null(v)))
		o->max_tokens = 256;
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > HERD_MAX_TOKENS) {
			e = herd_fail(HERD_ERR_BAD_INPUT, "max_tokens: must be an integer 1..%d",
				      HERD_MAX_TOKENS);
			goto out;
		}
		o->max_tokens = json_integer_value(v);
	}
	if ((e = number(body, "temperature", 0, 2, &o->temperature)) ||
	    (e = number(body, "top_p", 0, 1, &o->top_p)))
		goto out;
	v = json_object_get(body, "seed");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			e = herd_fail(HERD_ERR_BAD_INPUT, "seed: must be an integer >= 0");
			goto out;
		}
		o->seed = json_incref(v);
	}
	v = json_object_get(body, "n");
	if (v && !json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) == 1)) {
		e = herd_fail(HERD_ERR_UNSUPPORTED, "n: only 1 is supported");
		goto out;
	}
	v = json_object_get(body, "stream");
	if (v && !json_is_null(v) && !json_is_boolean(v)) {
		e = herd_fail(HERD_ERR_BAD_INPUT, "stream: must be a boolean");
		goto out;
	}
	o->stream = json_is_true(v);
	if (chat) {
		const struct node_model *m = herd_worker_model(n->worker, model);
		char *text;
		size_t len;
		if ((e = herd_chat_render(herd_chat_detect(m ? m->chat_template : NULL),
					  json_object_get(body, "messages"), &text, &len)))
			goto out;
		o->input = json_stringn(text, len);
		free(text);
	} else {
		v = json_object_get(body, "prompt");
		if (json_is_string(v)) {
			o->input = json_incref(v);
		} else if (json_is_array(v) && json_array_size(v) > 0) {
			size_t i;
			json_t *it;
			json_array_foreach(v, i, it) if (!json_is_string(it))
			{
				e = herd_fail(HERD_ERR_BAD_INPUT,
					      "prompt[%zu]: must be a string (token arrays are not "
					      "supported)",
					      i);
				goto out;
			}
			o->input = json_incref(v);
		} else {
			e = herd_fail(HERD_ERR_BAD_INPUT,
				      "prompt: required, a string or a non-empty array of strings");
			goto out;
		}
	}
	uint8_t rnd[12];
	randombytes_buf(rnd, sizeof rnd);
	int k = snprintf(o->id, sizeof o->id, "%s-", chat ? "chatcmpl" : "cmpl");
	for (size_t i = 0; i < sizeof rnd; i++)
		k += snprintf(o->id + k, sizeof o->id - (size_t)k, "%02x", rnd[i]);
	o->created = (int64_t)time(NULL);
out:
	if (e)
		oai_free(o);
	else
		*out = o;
	return e;
}

/* The herd job for the request: the prompt as input_data, one fragment per prompt. */
static enum herd_err make_job(struct oai *o)
{
	o->cmd = herd_command_new(HERD_COMMAND_EXECUTE_TASK, o->id, "openai", o->n->id);
	struct herd_command *c = o->cmd;
	herd_command_with_param(c, "task_type", json_string("llama_inference"));
	herd_command_with_param(c, "model_name", json_string(o->model));
	herd_command_with_param(c, "input_data", json_incref(o->input));
	size_t n = json_is_array(o->input) ? json_array_size(o->input) : 1;
	herd_command_with_param(c, "num_fragments",
				json_integer(n > HERD_MAX_FRAGMENTS ? HERD_MAX_FRAGMENTS : (json_int_t)n));
	herd_command_with_param(c, "max_tokens", json_integer(o->max_tokens));
	herd_command_with_param(c, "temperature", json_real(o->temperature));
	herd_command_with_param(c, "top_p", json_real(o->top_p));
	herd_command_with_param(c, "context_overlap", json_integer(0));
	herd_command_with_param(c, "prompt_template", json_string("{fragment}"));
	if (o->seed)
		herd_command_with_param(c, "seed", json_incref(o->seed));
	enum herd_err e = herd_job_from_request(c, NULL, &o->job);
	if (e) { /* name the OpenAI field, not the herd param */
		char msg[1100];
		snprintf(msg, sizeof msg, "%s (%s)", o->chat ? "messages" : "prompt",
			 herd_last_error());
		return herd_fail(e, "%s", msg);
	}
	return HERD_OK;
}

static json_t *choice(const struct oai *o, size_t index, json_t *text, const char *finish)
{
	if (o->chat)
		return json_pack("{s:I, s:{s:s, s:o}, s:s}", "index", (json_int_t)index, "message",
				 "role", "assistant", "content", text, "finish_reason", finish);
	return json_pack("{s:I, s:o, s:n, s:s}", "index", (json_int_t)index, "text", text,
			 "logprobs", "finish_reason", finish);
}

static json_t *completion(const struct oai *o, json_t *choices, int64_t prompt_tokens,
			  int64_t completion_tokens)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:o, s:{s:I, s:I, s:I}}", "id", o->id, "object",
			 o->chat ? "chat.completion" : "text_completion", "created",
			 (json_int_t)o->created, "model", o->model, "choices", choices, "usage",
			 "prompt_tokens", (json_int_t)prompt_tokens, "completion_tokens",
			 (json_int_t)completion_tokens, "total_tokens",
			 (json_int_t)(prompt_tokens + completion_tokens));
}

static json_t *chunk(const struct oai *o, size_t index, const char *role, json_t *text,
		     const char *finish)
{
	json_t *c;
	if (o->chat) {
		json_t *delta = json_object();
		if (role)
			json_object_set_new(delta, "role", json_string(role));
		if (text)
			json_object_set_new(delta, "content", text);
		c = json_pack("{s:I, s:o, s:o}", "index", (json_int_t)index, "delta", delta,
			      "finish_reason", finish ? json_string(finish) : json_null());
	} else {
		c = json_pack("{s:I, s:o, s:n, s:o}", "index", (json_int_t)index, "text",
			      text ? text : json_string(""), "logprobs", "finish_reason",
			      finish ? json_string(finish) : json_null());
	}
	return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", o->id, "object",
			 o->chat ? "chat.completion.chunk" : "text_completion", "created",
			 (json_int_t)o->created, "model", o->model, "choices", c);
}

static void send_chunk(struct oai *o, json_t *c)
{
	herd_sse_send_json(o->sse, NULL, c);
	json_decref(c);
}

/* ---- streaming a single prompt from the local worker ---- */

static int stream_token(void *ud, int item, const char *text, size_t len)
{
	struct oai *o = ud;
	if (o->chat && !o->sent_role) {
		send_chunk(o, chunk(o, 0, "assistant", json_string(""), NULL));
		o->sent_role = true;
	}
	send_chunk(o, chunk(o, (size_t)item, NULL, herd_node_json_text(text, len), NULL));
	return herd_sse_is_gone(o->sse);
}

static void stream_done(void *ud, enum herd_err err, const char *msg, json_t *result)
{
	struct oai *o = ud;
	if (err) {
		json_t *j = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", herd_errcode(err),
				      "message", msg, "type", "server_error");
		herd_sse_send_json(o->sse, NULL, j);
		json_decref(j);
	} else {
		if (o->chat && !o->sent_role)
			send_chunk(o, chunk(o, 0, "assistant", json_string(""), NULL));
		const char *fin = json_string_value(
		    json_array_get(json_object_get(result, "finish_reasons"), 0));
		json_t *last = chunk(o, 0, NULL, o->chat ? NULL : json_string(""), fin ? fin : "stop");
		int64_t pt = json_integer_value(json_object_get(result, "prompt_tokens"));
		int64_t ct = json_integer_value(json_object_get(result, "tokens_generated"));
		json_object_set_new(last, "usage",
				    json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)pt,
					      "completion_tokens", (json_int_t)ct, "total_tokens",
					      (json_int_t)(pt + ct)));
		send_chunk(o, last);
	}
	herd_sse_send(o->sse, NULL, "[DONE]");
	json_decref(result);
	herd_sse_close(o->sse);
	oai_free(o);
}

static void stream_gone(struct herd_sse *s, void *ud)
{
	(void)s;
	struct herd_work *w = ud;
	atomic_store(&w->cancel, true);
}

static void handle(struct herd_http_req *req, struct herd_http_resp *resp, void *ud, bool chat)
{
	struct herd_node *n = ud;
	if (!n->worker || atomic_load(&n->stopping)) {
		oai_error(resp, HERD_ERR_CANCELLED, "node: not serving (starting or stopping)");
		return;
	}
	json_t *body = NULL;
	struct oai *o = NULL;
	enum herd_err e = herd_http_req_json(req, &body);
	if (!e)
		e = parse(n, body, chat, &o);
	json_decref(body);
	if (!e)
		e = make_job(o);
	if (e) {
		oai_error(resp, e, herd_last_error());
		if (o)
			oai_free(o);
		return;
	}
	bool local = !json_is_array(o->input) && herd_worker_model(n->worker, o->model);
	if (local && o->stream) {
		o->work.frag = &o->job->fragments[0];
		o->work.on_token = stream_token;
		o->work.token_ud = o;
		o->work.on_done = stream_done;
		o->work.ud = o;
		o->sse = herd_http_resp_sse(resp, stream_gone, &o->work);
		if ((e = herd_worker_submit(n->worker, &o->work)))
			stream_done(o, e, herd_last_error(), NULL);
		return;
	}
	json_t *choices = json_array(), *fins = NULL;
	int64_t pt = 0, ct = 0;
	if (local) {
		struct herd_work work = {.frag = &o->job->fragments[0]};
		json_t *r = NULL;
		if ((e = herd_worker_run(n->worker, &work, &r))) {
			oai_error(resp, e, herd_last_error());
			goto out;
		}
		fins = json_incref(json_object_get(r, "finish_reasons"));
		json_array_append_new(choices,
				      choice(o, 0, json_incref(json_object_get(r, "output")),
					     json_string_value(json_array_get(fins, 0)) ?: "stop"));
		pt = json_integer_value(json_object_get(r, "prompt_tokens"));
		ct = json_integer_value(json_object_get(r, "tokens_generated"));
		json_decref(r);
	} else {
		unsigned status;
		json_t *extras = NULL;
		json_t *env = herd_coord_run(n, o->cmd, o->job, NULL, &status, &extras);
		if (status != 200) {
			json_t *err = json_object_get(env, "error");
			herd_http_resp_json(resp, status,
					    json_pack("{s:s, s:{s:O, s:O, s:s, s:n}}", "status", "error",
						      "error", "code", json_object_get(err, "code"),
						      "message", json_object_get(err, "message"), "type",
						      "server_error", "param"));
			json_decref(env);
			json_decref(extras);
			goto out;
		}
		json_t *res = json_object_get(env, "result");
		json_t *output = json_object_get(res, "output");
		ct = json_integer_value(json_object_get(res, "total_tokens"));
		fins = json_array();
		size_t i;
		json_t *x;
		json_array_foreach(extras, i, x)
		{
			pt += json_integer_value(json_object_get(x, "prompt_tokens"));
			json_array_extend(fins, json_object_get(x, "finish_reasons"));
		}
		if (json_is_string(output))
			json_array_append_new(choices,
					      choice(o, 0, json_incref(output),
						     json_string_value(json_array_get(fins, 0)) ?: "stop"));
		else
			json_array_foreach(output, i, x) json_array_append_new(
			    choices, choice(o, i, json_incref(x),
					    json_string_value(json_array_get(fins, i)) ?: "stop"));
		json_decref(env);
		json_decref(extras);
	}
	if (o->stream) { /* a prompt array or a remote model: every choice as one chunk */
		o->sse = herd_http_resp_sse(resp, NULL, NULL);
		size_t i;
		json_t *c;
		json_array_foreach(choices, i, c)
		{
			json_t *text = o->chat ? json_object_get(json_object_get(c, "message"), "content")
					       : json_object_get(c, "text");
			if (o->chat)
				send_chunk(o, chunk(o, i, "assistant", json_string(""), NULL));
			send_chunk(o, chunk(o, i, NULL, json_incref(text), NULL));
			send_chunk(o, chunk(o, i, NULL, o->chat ? NULL : json_string(""),
					    json_string_value(json_object_get(c, "finish_reason"))));
		}
		herd_sse_send(o->sse, NULL, "[DONE]");
		herd_sse_close(o->sse);
	} else {
		herd_http_resp_json(resp, 200, completion(o, json_incref(choices), pt, ct));
	}
out:
	json_decref(choices);
	json_decref(fins);
	oai_free(o);
}

void herd_openai_completions(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	handle(req, resp, ud, false);
}

void herd_openai_chat(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	handle(req, resp, ud, true);
}

void herd_openai_models(struct herd_http_req *req, struct herd_http_resp *resp, void *ud)
{
	(void)req;
	struct herd_node *n = ud;
	json_t *data = json_array();
	int64_t created = (int64_t)time(NULL);
	for (size_t i = 0; i < n->n_models; i++)
		json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s}", "id", n->models[i].name,
						      "object", "model", "created",
						      (json_int_t)created, "owned_by", "herd"));
	pthread_mutex_lock(&n->peers_mu);
	for (size_t i = 0; i < n->n_peers; i++) {
		size_t k;
		json_t *m;
		json_array_foreach(n->peers[i].models, k, m)
		{
			bool dup = false;
			size_t j;
			json_t *d;
			json_array_foreach(data, j, d) dup |= json_equal(json_object_get(d, "id"), m);
			if (!dup)
				json_array_append_new(data, json_pack("{s:O, s:s, s:I, s:s}", "id", m,
								      "object", "model", "created",
								      (json_int_t)created, "owned_by",
								      n->peers[i].url));
		}
	}
	pthread_mutex_unlock(&n->peers_mu);
	herd_http_resp_json(resp, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}
