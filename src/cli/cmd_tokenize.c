/* herd tokenize -m MODEL -p TEXT [--no-bos] — the token ids of a text, space-separated on one
 * line. Needs only the tokenizer metadata, so MODEL may be a vocab-only GGUF (0 tensors). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine.h"

static int usage(void)
{
	fprintf(stderr, "usage: herd tokenize -m MODEL -p TEXT [--no-bos]\n");
	return 2;
}

int herd_cmd_tokenize(int argc, char **argv)
{
	const char *model = NULL, *text = NULL;
	bool no_bos = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-m") && i + 1 < argc) {
			model = argv[++i];
		} else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
			text = argv[++i];
		} else if (!strcmp(argv[i], "--no-bos")) {
			no_bos = true;
		} else {
			fprintf(stderr, "herd tokenize: unknown or incomplete argument '%s'\n", argv[i]);
			return usage();
		}
	}
	if (!model || !text) {
		fprintf(stderr, "herd tokenize: %s is required\n", !model ? "-m MODEL" : "-p TEXT");
		return usage();
	}
	struct herd_gguf *g = NULL;
	struct herd_vocab *v = NULL;
	int32_t *ids = NULL;
	size_t n = 0;
	int rc = 1;
	if (herd_gguf_open(model, &g) || herd_vocab_load(g, &v) ||
	    herd_tokenize(v, text, strlen(text), !no_bos && herd_vocab_add_bos(v), &ids, &n)) {
		fprintf(stderr, "herd tokenize: %s: %s\n", model, herd_last_error());
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		printf(i ? " %d" : "%d", ids[i]);
	putchar('\n');
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	free(ids);
	herd_vocab_free(v);
	herd_gguf_close(g);
	return rc;
}
