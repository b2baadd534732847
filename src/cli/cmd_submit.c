/* herd submit — sends a job to a node and prints the combined output. The job is either a
 * whole Command envelope (REQUEST.json) or built from a text file and flags. It always
 * runs as a streamed job so that stderr can show progress (fragments done/total, tokens/s,
 * elapsed); --stream prints the output as it becomes ready in order, --json the whole
 * final answer. Exit 0 on success, 1 when the job failed, 2 for bad usage or input. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "proto.h"
#include "submit.h"

#define USAGE                                                                                      \
	"usage: herd submit --to URL (REQUEST.json | -f TEXT_FILE --model NAME [--fragments N]\n"  \
	"                   [--max-tokens N] [--temp T] [--top-p P] [--seed S] [--overlap "        \
	"BYTES]\n"                                                                                 \
	"                   [--template TEMPLATE]) [--stream] [--json] [--quiet]\n"

#define bad(...) herd_cli_usage("submit", USAGE, __VA_ARGS__)

static char *read_file(const char *path, size_t max, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		fprintf(stderr, "herd submit: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	size_t cap = 1 << 16, n = 0;
	char *buf = herd_xmalloc(cap + 1);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n, fp)) > 0) {
		n += got;
		if (n > max) {
			fprintf(stderr, "herd submit: %s: larger than %zu bytes\n", path, max);
			fclose(fp);
			free(buf);
			return NULL;
		}
		if (n == cap) {
			cap *= 2;
			buf = herd_xrealloc(buf, cap + 1);
		}
	}
	bool err = ferror(fp);
	fclose(fp);
	if (err) {
		fprintf(stderr, "herd submit: %s: read error\n", path);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* A number flag into params[key]: integer or real as JSON says; the node validates ranges. */
static int set_number(json_t *params, const char *key, const char *flag, const char *val,
		      bool integer)
{
	char *end;
	errno = 0;
	if (integer) {
		long long v = strtoll(val, &end, 10);
		if (errno || end == val || *end)
			return bad("%s: '%s' is not an integer", flag, val);
		json_object_set_new(params, key, json_integer(v));
	} else {
		double v = strtod(val, &end);
		if (errno || end == val || *end)
			return bad("%s: '%s' is not a number", flag, val);
		json_object_set_new(params, key, json_real(v));
	}
	return 0;
}

int herd_cmd_submit(int argc, char **argv)
{
	const char *to = NULL, *text_file = NULL, *model = NULL, *request_file = NULL;
	bool stream = false, json_out = false, quiet = false;
	json_t *flags = json_object(); /* params from flags, applied last */
	int rc = 2;
	json_t *env = NULL, *answer = NULL;
	char *buf = NULL;
	static const struct {
		const char *flag, *key;
		bool integer;
	} numbers[] = {
	    {"--fragments", "num_fragments", true},
	    {"--max-tokens", "max_tokens", true},
	    {"--temp", "temperature", false},
	    {"--top-p", "top_p", false},
	    {"--seed", "seed", true},
	    {"--overlap", "context_overlap", true},
	};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		bool matched = false;
		for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; k++)
			if (!strcmp(a, numbers[k].flag)) {
				if (!has_val) {
					rc = bad("%s: needs a value", a);
					goto out;
				}
				if (set_number(flags, numbers[k].key, a, argv[++i],
					       numbers[k].integer))
					goto out;
				matched = true;
			}
		if (matched)
			continue;
		if ((!strcmp(a, "--to") || !strcmp(a, "-f") || !strcmp(a, "--model") ||
		     !strcmp(a, "--template")) &&
		    !has_val) {
			rc = bad("%s: needs a value", a);
			goto out;
		}
		if (!strcmp(a, "--to"))
			to = argv[++i];
		else if (!strcmp(a, "-f"))
			text_file = argv[++i];
		else if (!strcmp(a, "--model"))
			model = argv[++i];
		else if (!strcmp(a, "--template"))
			json_object_set_new(flags, "prompt_template", json_string(argv[++i]));
		else if (!strcmp(a, "--stream"))
			stream = true;
		else if (!strcmp(a, "--json"))
			json_out = true;
		else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
			quiet = true;
		else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(USAGE, stdout);
			rc = 0;
			goto out;
		} else if (a[0] == '-' && a[1]) {
			rc = bad("unknown option '%s'", a);
			goto out;
		} else if (!request_file)
			request_file = a;
		else {
			rc = bad("more than one REQUEST.json ('%s', '%s')", request_file, a);
			goto out;
		}
	}
	if (!to) {
		rc = bad("--to URL is required");
		goto out;
	}
	if (!!request_file == !!text_file) {
		rc = bad("give either REQUEST.json or -f TEXT_FILE");
		goto out;
	}
	size_t len;
	if (request_file) {
		if (!(buf = read_file(request_file, HERD_MAX_REQUEST_BYTES, &len)))
			goto out;
		if (herd_json_parse(buf, len, &env)) {
			fprintf(stderr, "herd submit: %s: %s\n", request_file, herd_last_error());
			goto out;
		}
		if (!json_is_object(env) || !json_is_object(json_object_get(env, "params"))) {
			fprintf(stderr,
				"herd submit: %s: must be a Command envelope with a params "
				"object\n",
				request_file);
			goto out;
		}
		if (model)
			json_object_set_new(json_object_get(env, "params"), "model_name",
					    json_string(model));
	} else {
		if (!model) {
			rc = bad("-f TEXT_FILE needs --model NAME");
			goto out;
		}
		if (!(buf = read_file(text_file, HERD_MAX_INPUT_BYTES, &len)))
			goto out;
		if (!herd_utf8_valid(buf, len, NULL)) {
			fprintf(stderr, "herd submit: %s: not valid UTF-8 text\n", text_file);
			goto out;
		}
		struct herd_command *c =
		    herd_command_new(HERD_COMMAND_EXECUTE_TASK, NULL, "herd-submit", "");
		herd_command_with_param(c, "task_type", json_string("llama_inference"));
		herd_command_with_param(c, "model_name", json_string(model));
		herd_command_with_param(c, "input_data", json_stringn(buf, len));
		env = herd_command_to_json(c);
		herd_command_free(c);
	}
	json_object_update(json_object_get(env, "params"), flags);

	struct herd_submit_opts o = {.progress = !quiet && isatty(STDERR_FILENO),
				     .print_stream = stream && !json_out};
	if (!quiet && !o.progress)
		o.progress = getenv("HERD_PROGRESS") != NULL;
	enum herd_err e = herd_submit_job(to, env, &o, &answer);
	if (e) {
		fprintf(stderr, "herd submit: %s\n", herd_last_error());
		rc = 1;
		goto out;
	}
	bool ok = !strcmp(json_string_value(json_object_get(answer, "status")) ?: "", "success");
	if (json_out) {
		json_dumpf(answer, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else if (!ok) {
		json_t *err = json_object_get(answer, "error");
		fprintf(stderr, "herd submit: %s: %s\n",
			json_string_value(json_object_get(err, "code")) ?: "ERROR",
			json_string_value(json_object_get(err, "message")) ?: "(no message)");
	} else if (!stream) {
		json_t *out = json_object_get(json_object_get(answer, "result"), "output");
		if (json_is_string(out)) {
			fwrite(json_string_value(out), 1, json_string_length(out), stdout);
			fputc('\n', stdout);
		} else {
			size_t i;
			json_t *item;
			json_array_foreach(out, i, item) printf("%s\n", json_string_value(item));
		}
	}
	if (ok && !quiet) {
		json_t *r = json_object_get(answer, "result");
		fprintf(stderr, "job %s: %lld fragments, %lld tokens, %.0f ms\n",
			json_string_value(json_object_get(r, "job_id")) ?: "?",
			(long long)json_integer_value(json_object_get(r, "fragments_processed")),
			(long long)json_integer_value(json_object_get(r, "total_tokens")),
			json_number_value(json_object_get(r, "wall_time_ms")));
	}
	rc = ok ? 0 : 1;
out:
	json_decref(flags);
	json_decref(env);
	json_decref(answer);
	free(buf);
	return rc;
}
