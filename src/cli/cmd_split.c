/* herd split — a dry run of the coordinator's first step: the request on stdin becomes a
 * job and the llama_fragment commands it would send, printed as one JSON document. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "proto.h"

static int usage(void)
{
	fprintf(stderr, "usage: herd split [--fragments N] < request.json\n");
	return 2;
}

/* Reads all of stdin, at most HERD_MAX_REQUEST_BYTES (+1 to notice more). */
static char *read_stdin(size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = herd_xmalloc(cap);
	for (;;) {
		if (n == cap) {
			if (cap > HERD_MAX_REQUEST_BYTES)
				break;
			cap *= 2;
			buf = herd_xrealloc(buf, cap);
		}
		size_t got = fread(buf + n, 1, cap - n, stdin);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(stdin)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

int herd_cmd_split(int argc, char **argv)
{
	struct herd_job_opts opts = {0};
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--fragments") && i + 1 < argc) {
			char *end;
			errno = 0;
			long v = strtol(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] || v < 1 || v > HERD_MAX_FRAGMENTS) {
				fprintf(stderr,
					"herd split: --fragments: must be 1..%d, got \"%s\"\n",
					HERD_MAX_FRAGMENTS, argv[i]);
				return 2;
			}
			opts.num_fragments = (int)v;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage();
			return 0;
		} else {
			fprintf(stderr, "herd split: unknown argument \"%s\"\n", argv[i]);
			return usage();
		}
	}
	size_t len;
	char *body = read_stdin(&len);
	if (!body) {
		fprintf(stderr, "herd split: reading stdin: %s\n", strerror(errno));
		return 1;
	}
	struct herd_job *job;
	enum herd_err err = herd_job_parse(body, len, &opts, &job);
	free(body);
	if (err) {
		fprintf(stderr, "herd split: %s\n", herd_last_error());
		return 2;
	}
	json_t *doc = json_pack("{s:o, s:[]}", "job", herd_job_to_json(job), "fragments");
	json_t *frags = json_object_get(doc, "fragments");
	for (int i = 0; i < job->n_fragments; i++) {
		struct herd_command *c =
		    herd_fragment_to_command(&job->fragments[i], "herd-split", "");
		json_array_append_new(frags, herd_command_to_json(c));
		herd_command_free(c);
	}
	int rc =
	    json_dumpf(doc, stdout, JSON_INDENT(2)) || fputc('\n', stdout) == EOF || fflush(stdout)
		? 1
		: 0;
	if (rc)
		fprintf(stderr, "herd split: writing stdout: %s\n", strerror(errno));
	json_decref(doc);
	herd_job_free(job);
	return rc;
}
