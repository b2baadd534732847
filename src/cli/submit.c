/* submit.c — follows a streamed job from the client's side (herd submit, herd demo).
 * The one thing to know: fragment events arrive in any order; the printed stream waits for
 * the lowest missing index, so stdout always shows the combined output in order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "proto.h"
#include "submit.h"

struct follow {
	const struct herd_submit_opts *o;
	int total, done;
	int64_t tokens;
	double start_ms, last_draw_ms;
	json_t *outputs; /* index -> output (null until it came) */
	int next_print;
	json_t *answer;
};

static void draw(struct follow *f, bool final)
{
	if (!f->o->progress)
		return;
	bool tty = isatty(STDERR_FILENO);
	if (!tty && !final)
		return; /* a log gets the final line only, not a redrawn one */
	double now = herd_now_ms();
	if (!final && now - f->last_draw_ms < 100)
		return;
	f->last_draw_ms = now;
	double s = (now - f->start_ms) / 1000.0;
	char bar[21];
	int fill = f->total > 0 ? (int)lround(20.0 * f->done / f->total) : 0;
	for (int i = 0; i < 20; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[20] = '\0';
	fprintf(stderr, "%s[%s] %d/%d fragments  %lld tokens  %.1f tok/s  %.1f s ",
		tty ? "\r\033[K" : "", bar, f->done, f->total, (long long)f->tokens,
		s > 0 ? (double)f->tokens / s : 0.0, s);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
}

static void print_ready(struct follow *f)
{
	FILE *out = f->o->out ? f->o->out : stdout;
	while (f->next_print < (int)json_array_size(f->outputs)) {
		json_t *o = json_array_get(f->outputs, (size_t)f->next_print);
		if (json_is_null(o))
			break;
		if (json_is_string(o)) {
			fwrite(json_string_value(o), 1, json_string_length(o), out);
		} else {
			size_t i;
			json_t *item;
			json_array_foreach(o, i, item)
			    fprintf(out, "%s\n", json_string_value(item));
		}
		fflush(out);
		f->next_print++;
	}
}

static bool on_event(const char *event, const char *data, const char *id, void *ud)
{
	(void)id;
	struct follow *f = ud;
	json_t *j = json_loads(data, JSON_DECODE_ANY, NULL);
	if (!j)
		return true; /* a stray non-JSON event is not ours to judge */
	if (!strcmp(event, "job")) {
		json_t *t = json_object_get(j, "total_fragments");
		if (json_is_integer(t) && json_integer_value(t) > 0 &&
		    json_integer_value(t) <= HERD_MAX_FRAGMENTS) {
			f->total = (int)json_integer_value(t);
			json_array_clear(f->outputs);
			for (int i = 0; i < f->total; i++)
				json_array_append_new(f->outputs, json_null());
		}
		draw(f, false);
	} else if (!strcmp(event, "fragment")) {
		json_t *idx = json_object_get(j, "fragment_index");
		json_t *out = json_object_get(j, "output");
		f->done++;
		f->tokens += json_integer_value(json_object_get(j, "tokens_generated"));
		if (json_is_integer(idx) && json_integer_value(idx) >= 0 &&
		    json_integer_value(idx) < (json_int_t)json_array_size(f->outputs) && out)
			json_array_set(f->outputs, (size_t)json_integer_value(idx), out);
		if (f->o->on_fragment)
			f->o->on_fragment(j, f->o->ud);
		if (f->o->print_stream)
			print_ready(f);
		draw(f, false);
	} else if (!strcmp(event, "result")) {
		json_decref(f->answer);
		f->answer = json_incref(j);
	}
	json_decref(j);
	return true;
}

/* The node refused the request before streaming (a 4xx): the message keeps only the start
 * of its answer, so ask again without streaming to get the whole error envelope. A refused
 * request did not start a job, so asking again is harmless. */
static json_t *refused_envelope(const char *url, const char *msg, json_t *req)
{
	const char *p = strstr(msg, ": status 4");
	if (!p)
		return NULL;
	json_object_set_new(json_object_get(req, "params"), "stream", json_false());
	long status = 0;
	json_t *reply = NULL;
	if (herd_http_post_json(url, req, 0, &status, &reply))
		return NULL;
	if (status < 400 || status > 499 || !json_is_object(json_object_get(reply, "error"))) {
		json_decref(reply);
		return NULL;
	}
	return reply;
}

enum herd_err herd_submit_job(const char *base_url, const json_t *envelope,
			      const struct herd_submit_opts *opts, json_t **answer)
{
	*answer = NULL;
	json_t *req = json_deep_copy(envelope);
	json_t *params = json_object_get(req, "params");
	if (!json_is_object(params)) {
		json_decref(req);
		return herd_fail(HERD_ERR_BAD_INPUT, "request: params must be an object");
	}
	json_object_set_new(params, "stream", json_true());
	char url[1024];
	size_t bl = strlen(base_url);
	while (bl > 0 && base_url[bl - 1] == '/')
		bl--;
	snprintf(url, sizeof url, "%.*s/v1/command", (int)bl, base_url);
	struct follow f = {.o = opts, .start_ms = herd_now_ms(), .outputs = json_array()};
	/* no idle limit: the node sends heartbeats, and a fragment may run for minutes */
	enum herd_err e = herd_http_sse(url, req, 0, on_event, &f);
	if (e == HERD_ERR_NET) {
		char msg[256];
		snprintf(msg, sizeof msg, "%s", herd_last_error());
		json_t *env = refused_envelope(url, msg, req);
		if (env) {
			e = HERD_OK;
			json_decref(f.answer);
			f.answer = env;
		} else {
			herd_fail(HERD_ERR_NET, "%s", msg);
		}
	}
	json_decref(req);
	if (!e && !f.answer)
		e = herd_fail(HERD_ERR_NET, "%s: the stream ended without a result event", url);
	draw(&f, true);
	if (!e && opts->print_stream) {
		print_ready(&f);
		json_t *out = json_object_get(json_object_get(f.answer, "result"), "output");
		if (json_is_string(out) && json_string_length(out) > 0)
			fputc('\n', opts->out ? opts->out : stdout);
	}
	json_decref(f.outputs);
	if (e) {
		json_decref(f.answer);
		return e;
	}
	*answer = f.answer;
	return HERD_OK;
}
