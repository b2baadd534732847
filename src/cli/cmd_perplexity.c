/* herd perplexity -m MODEL -f FILE -c N [-t THREADS] [--json] — perplexity of a text with
 * llama.cpp's method (see engine.h and ../shared/reference/README.md), so that the numbers
 * compare with llama-perplexity's. Each chunk of N tokens is evaluated in one pass. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "limits.h"

#define USAGE "usage: herd perplexity -m MODEL -f FILE -c N [-t THREADS] [--json]\n"

#define bad(...) herd_cli_usage("perplexity", USAGE, __VA_ARGS__)

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "herd perplexity: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = herd_xmalloc(cap);
	size_t r;
	while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (n + 1 == cap) {
			if (cap > HERD_MAX_INPUT_BYTES) {
				fprintf(stderr, "herd perplexity: %s: larger than %u bytes\n", path,
					HERD_MAX_INPUT_BYTES);
				free(buf);
				fclose(f);
				return NULL;
			}
			cap *= 2;
			buf = herd_xrealloc(buf, cap);
		}
	}
	bool err = ferror(f);
	fclose(f);
	if (err) {
		fprintf(stderr, "herd perplexity: %s: read error\n", path);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

int herd_cmd_perplexity(int argc, char **argv)
{
	const char *model = NULL, *file = NULL;
	long n_ctx = 0, threads = 0;
	bool json_out = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--json")) {
			json_out = true;
			continue;
		}
		if (!val)
			return bad("%s: needs a value", a);
		i++;
		if (!strcmp(a, "-m")) {
			model = val;
		} else if (!strcmp(a, "-f")) {
			file = val;
		} else if (!strcmp(a, "-c")) {
			if (!herd_cli_parse_long(val, 4, HERD_MAX_BATCH, &n_ctx) || n_ctx % 2)
				return bad("-c: must be an even integer 4..4096, got '%s'", val);
		} else if (!strcmp(a, "-t")) {
			if (!herd_cli_parse_long(val, 0, HERD_MAX_THREADS, &threads))
				return bad("-t: must be an integer 0..512 (0 = all cores), got '%s'",
					   val);
		} else {
			return bad("unknown argument '%s'", a);
		}
	}
	if (!model || !file || !n_ctx)
		return bad("%s is required", !model ? "-m MODEL" : !file ? "-f FILE" : "-c N");
	size_t len = 0;
	char *text = read_file(file, &len);
	if (!text)
		return 1;
	struct herd_model *m = NULL;
	struct herd_ctx *c = NULL;
	struct herd_perplexity_result r = {0};
	int rc = 1;
	enum herd_err e;
	struct herd_ctx_params cp = herd_ctx_default_params();
	cp.n_ctx = (int32_t)n_ctx;
	cp.n_batch = (int32_t)n_ctx; /* one pass per chunk, as llama-perplexity -b N */
	cp.n_threads = (int32_t)threads;
	double t0 = herd_now_ms();
	if ((e = herd_model_load(model, &m)) || (e = herd_ctx_new(m, &cp, &c)) ||
	    (e = herd_perplexity(c, text, len, (int32_t)n_ctx, &r))) {
		fprintf(stderr, "herd perplexity: %s\n", herd_last_error());
		rc = e == HERD_ERR_BAD_INPUT || e == HERD_ERR_LIMIT ? 2 : 1;
		goto out;
	}
	double ms = herd_now_ms() - t0;
	if (json_out) {
		json_t *doc =
		    json_pack("{s:s, s:s, s:i, s:f, s:f, s:i, s:i, s:i, s:f}", "model",
			      herd_model_info(m)->name, "file", file, "n_ctx", (int)n_ctx, "ppl",
			      r.ppl, "nll_mean", r.nll_mean, "n_chunks", r.n_chunks, "n_scored",
			      r.n_scored, "n_tokens", r.n_tokens, "time_ms", ms);
		json_dumpf(doc, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(doc);
	} else {
		printf("perplexity: %.4f (%d chunks of %ld tokens, %d tokens scored, %d tokens in "
		       "the text)\n",
		       r.ppl, r.n_chunks, n_ctx, r.n_scored, r.n_tokens);
	}
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	herd_ctx_free(c);
	herd_model_free(m);
	free(text);
	return rc;
}
