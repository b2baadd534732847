/* herd generate — runs a prompt through a model and streams the continuation to stdout as it
 * is produced (the prompt is not echoed); prompt and generation speed go to stderr.
 * --ids prints the generated ids on one line instead; --json prints one JSON document. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "engine.h"
#include "limits.h"

#define USAGE                                                                                      \
	"usage: herd generate -m MODEL [-p PROMPT | -f FILE] [-n N] [--temp T] [--top-k K] "       \
	"[--top-p P]\n"                                                                            \
	"                     [--min-p P] [--repeat-penalty R] [--seed S] [-t THREADS] [-c CTX] "  \
	"[--ids]\n"                                                                                \
	"                     [--json]\n"

#define bad(...) herd_cli_usage("generate", USAGE, __VA_ARGS__)

static bool parse_float(const char *s, float *out)
{
	char *end;
	errno = 0;
	float v = strtof(s, &end);
	if (errno || end == s || *end || !isfinite(v))
		return false;
	*out = v;
	return true;
}

/* Reads a whole file (at most HERD_MAX_INPUT_BYTES). NULL with a message on error. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "herd generate: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = herd_xmalloc(cap);
	for (;;) {
		if (n + 1 >= cap) {
			if (cap > HERD_MAX_INPUT_BYTES) {
				fprintf(stderr, "herd generate: %s: larger than %u bytes\n", path,
					HERD_MAX_INPUT_BYTES);
				free(buf);
				fclose(f);
				return NULL;
			}
			cap *= 2;
			buf = herd_xrealloc(buf, cap);
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	bool err = ferror(f);
	fclose(f);
	if (err) {
		fprintf(stderr, "herd generate: %s: read error\n", path);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

struct stream {
	bool on;
	size_t written;
};

static int on_token(void *ud, int32_t id, const char *text, size_t len)
{
	(void)id;
	struct stream *s = ud;
	if (s->on && len) {
		fwrite(text, 1, len, stdout);
		fflush(stdout);
	}
	s->written += len;
	return 0;
}

/* JSON string of bytes that may end in an unfinished UTF-8 character (or hold stray bytes):
 * invalid bytes become U+FFFD so that the document stays valid. */
static json_t *json_text(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	if (j)
		return j;
	char *out = herd_xmalloc(n * 3 + 1);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t k = 1;
		unsigned char b = (unsigned char)s[i];
		size_t need = b < 0x80		   ? 1
			      : (b & 0xE0) == 0xC0 ? 2
			      : (b & 0xF0) == 0xE0 ? 3
			      : (b & 0xF8) == 0xF0 ? 4
						   : 0;
		json_t *probe = need && i + need <= n ? json_stringn(s + i, need) : NULL;
		if (probe) {
			memcpy(out + o, s + i, need);
			o += need;
			k = need;
			json_decref(probe);
		} else {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
		}
		i += k;
	}
	j = json_stringn(out, o);
	free(out);
	return j;
}

static int exit_code(enum herd_err e)
{
	return e == HERD_ERR_BAD_INPUT || e == HERD_ERR_LIMIT ? 2 : 1;
}

int herd_cmd_generate(int argc, char **argv)
{
	const char *model = NULL, *prompt = NULL, *file = NULL;
	long n_predict = 128, threads = 0, n_ctx = 0, v;
	bool ids_out = false, json_out = false, seed_given = false;
	struct herd_sampler_params sp = herd_sampler_default_params();
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--ids")) {
			ids_out = true;
			continue;
		}
		if (!strcmp(a, "--json")) {
			json_out = true;
			continue;
		}
		if (!val)
			return bad("%s: needs a value", a);
		i++;
		if (!strcmp(a, "-m")) {
			model = val;
		} else if (!strcmp(a, "-p")) {
			prompt = val;
		} else if (!strcmp(a, "-f")) {
			file = val;
		} else if (!strcmp(a, "-n")) {
			if (!herd_cli_parse_long(val, 0, HERD_MAX_TOKENS, &n_predict))
				return bad("%s: must be an integer 0..32768, got '%s'", a, val);
		} else if (!strcmp(a, "-t")) {
			if (!herd_cli_parse_long(val, 0, HERD_MAX_THREADS, &threads))
				return bad(
				    "%s: must be an integer 0..512 (0 = all cores), got '%s'", a,
				    val);
		} else if (!strcmp(a, "-c")) {
			if (!herd_cli_parse_long(val, 0, HERD_MAX_CONTEXT, &n_ctx))
				return bad("%s: must be an integer 0..131072 (0 = the model's, at "
					   "most 4096), got '%s'",
					   a, val);
		} else if (!strcmp(a, "--temp")) {
			if (!parse_float(val, &sp.temperature) || sp.temperature < 0)
				return bad("%s: must be a number >= 0, got '%s'", a, val);
		} else if (!strcmp(a, "--top-k")) {
			if (!herd_cli_parse_long(val, 0, HERD_MAX_VOCAB, &v))
				return bad("%s: must be an integer >= 0 (0 = off), got '%s'", a,
					   val);
			sp.top_k = (int32_t)v;
		} else if (!strcmp(a, "--top-p")) {
			if (!parse_float(val, &sp.top_p) || !(sp.top_p > 0 && sp.top_p <= 1))
				return bad("%s: must be in (0, 1] (1 = off), got '%s'", a, val);
		} else if (!strcmp(a, "--min-p")) {
			if (!parse_float(val, &sp.min_p) || !(sp.min_p >= 0 && sp.min_p <= 1))
				return bad("%s: must be in [0, 1] (0 = off), got '%s'", a, val);
		} else if (!strcmp(a, "--repeat-penalty")) {
			if (!parse_float(val, &sp.repeat_penalty) || !(sp.repeat_penalty > 0))
				return bad("%s: must be a number > 0 (1 = off), got '%s'", a, val);
		} else if (!strcmp(a, "--seed")) {
			char *end;
			errno = 0;
			unsigned long long s = strtoull(val, &end, 10);
			if (errno || end == val || *end || val[0] == '-')
				return bad("%s: must be an unsigned integer, got '%s'", a, val);
			sp.seed = s;
			seed_given = true;
		} else {
			return bad("unknown argument '%s'", a);
		}
	}
	if (!model)
		return bad("-m MODEL is required");
	if (prompt && file)
		return bad("-p and -f: give one of them");
	if (!seed_given)
		sp.seed = ((uint64_t)time(NULL) ^ ((uint64_t)clock() << 20)) & ((1ull << 53) - 1);

	size_t plen = 0;
	char *ptext = NULL;
	if (file) {
		if (!(ptext = read_file(file, &plen)))
			return 1;
	} else {
		ptext = herd_xstrdup(prompt ? prompt : "");
		plen = strlen(ptext);
	}

	struct herd_model *m = NULL;
	struct herd_ctx *c = NULL;
	struct herd_generate_result r = {0};
	int rc = 1;
	enum herd_err e = herd_model_load(model, &m);
	if (e) {
		fprintf(stderr, "herd generate: %s\n", herd_last_error());
		rc = exit_code(e);
		goto out;
	}
	struct herd_ctx_params cp = herd_ctx_default_params();
	cp.n_ctx = (int32_t)n_ctx;
	cp.n_threads = (int32_t)threads;
	if ((e = herd_ctx_new(m, &cp, &c))) {
		fprintf(stderr, "herd generate: %s\n", herd_last_error());
		rc = exit_code(e);
		goto out;
	}
	struct herd_generate_params gp = herd_generate_default_params(m);
	gp.max_tokens = (int32_t)n_predict;
	gp.sampling = sp;
	struct stream st = {.on = !ids_out && !json_out};
	gp.on_token = on_token;
	gp.ud = &st;
	if ((e = herd_generate(c, ptext, plen, &gp, &r))) {
		fprintf(stderr, "herd generate: %s\n", herd_last_error());
		rc = exit_code(e);
		goto out;
	}
	double pp = r.prompt_ms > 0 ? r.n_prompt * 1000.0 / r.prompt_ms : 0;
	double tg = r.gen_ms > 0 ? r.n_ids * 1000.0 / r.gen_ms : 0;
	if (json_out) {
		json_t *ids = json_array();
		for (size_t i = 0; i < r.n_ids; i++)
			json_array_append_new(ids, json_integer(r.ids[i]));
		json_t *doc = json_pack(
		    "{s:s, s:i, s:i, s:o, s:o, s:b, s:f, s:f, s:f, s:f, s:I}", "model",
		    herd_model_info(m)->name, "prompt_tokens", r.n_prompt, "generated_tokens",
		    (int)r.n_ids, "ids", ids, "text", json_text(r.text, r.text_len),
		    "stopped_at_eos", r.stopped_at_eos, "prompt_ms", r.prompt_ms, "gen_ms",
		    r.gen_ms, "prompt_tok_s", pp, "gen_tok_s", tg, "seed", (json_int_t)sp.seed);
		json_dumpf(doc, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(doc);
	} else if (ids_out) {
		for (size_t i = 0; i < r.n_ids; i++)
			printf(i ? " %d" : "%d", r.ids[i]);
		putchar('\n');
	} else {
		/* bytes of an unfinished character at the very end were never streamed */
		fwrite(r.text + st.written, 1, r.text_len - st.written, stdout);
		putchar('\n');
	}
	fprintf(stderr,
		"herd generate: prompt %d tokens in %.1f ms (%.1f tok/s); generated %zu tokens in "
		"%.1f ms (%.1f tok/s)%s\n",
		r.n_prompt, r.prompt_ms, pp, r.n_ids, r.gen_ms, tg,
		r.stopped_at_eos ? ", stopped at EOS" : "");
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	herd_generate_result_free(&r);
	herd_ctx_free(c);
	herd_model_free(m);
	free(ptext);
	return rc;
}
