/* bench_tokenize MODEL [TEXT_FILE] [MEGABYTES] — tokenizing speed: the text (default
 * ../shared/reference/ppl-text.txt) repeated to MEGABYTES (default 1) MiB, tokenized once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_tokenize MODEL [TEXT_FILE] [MEGABYTES]\n");
		return 2;
	}
	const char *file = argc > 2 ? argv[2] : HERD_SHARED_DIR "/reference/ppl-text.txt";
	size_t len = (size_t)(argc > 3 ? atof(argv[3]) : 1.0) * (1u << 20);
	FILE *f = fopen(file, "rb");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", file);
		return 1;
	}
	char part[1 << 16];
	size_t plen = fread(part, 1, sizeof part, f);
	fclose(f);
	if (plen == 0 || len == 0)
		return 2;
	char *text = malloc(len);
	for (size_t o = 0; o < len; o += plen)
		memcpy(text + o, part, len - o < plen ? len - o : plen);
	struct herd_gguf *g;
	struct herd_vocab *v;
	double t0 = herd_now_ms();
	if (herd_gguf_open(argv[1], &g) || herd_vocab_load(g, &v)) {
		fprintf(stderr, "%s: %s\n", argv[1], herd_last_error());
		return 1;
	}
	double t1 = herd_now_ms();
	int32_t *ids;
	size_t n;
	if (herd_tokenize(v, text, len, false, &ids, &n)) {
		fprintf(stderr, "%s\n", herd_last_error());
		return 1;
	}
	double t2 = herd_now_ms();
	printf("%s: load %.1f ms, %zu bytes -> %zu tokens in %.1f ms (%.1f MB/s)\n", argv[1],
	       t1 - t0, len, n, t2 - t1, len / 1e3 / (t2 - t1));
	free(ids);
	free(text);
	herd_vocab_free(v);
	herd_gguf_close(g);
	return 0;
}
