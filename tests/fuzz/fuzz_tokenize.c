/* fuzz_tokenize — herd_tokenize + herd_detokenize on arbitrary bytes with two real
 * vocabularies: stories260K (SentencePiece with byte fallback) and GPT-2 (byte-level BPE).
 * Every id must be in range, and valid UTF-8 must come back byte for byte (both tokenizers
 * promise the round trip: tests/unit/test_tokenizer.c). The first byte picks the vocab and
 * whether BOS is added, so one input exercises one tokenizer and stays cheap. */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "engine.h"
#include "proto.h"

struct loaded {
	struct herd_gguf *g;
	struct herd_vocab *v;
};

static struct loaded vocab[2];

static void load(struct loaded *l, const char *rel)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", HERD_SHARED_DIR, rel);
	if (herd_gguf_open(path, &l->g) != HERD_OK || herd_vocab_load(l->g, &l->v) != HERD_OK) {
		fprintf(stderr, "fuzz_tokenize: %s\n", herd_last_error());
		exit(1);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	load(&vocab[0], "models/stories260K.gguf");
	load(&vocab[1], "models/vocab/ggml-vocab-gpt-2.gguf");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const struct herd_vocab *v = vocab[data[0] & 1].v;
	bool bos = data[0] & 2;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;

	int32_t *ids = NULL;
	size_t n = 0;
	enum herd_err e = herd_tokenize(v, text, len, bos, &ids, &n);
	FUZZ_CHECK(e == HERD_OK, "tokenize failed: %s", herd_last_error());
	int32_t nv = herd_vocab_size(v);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(ids[i] >= 0 && ids[i] < nv, "id %d of %d", ids[i], nv);
	if (bos && herd_vocab_bos(v) >= 0)
		FUZZ_CHECK(n >= 1 && ids[0] == herd_vocab_bos(v), "BOS missing");

	char *back = NULL;
	size_t blen = 0;
	e = herd_detokenize(v, ids, n, &back, &blen);
	FUZZ_CHECK(e == HERD_OK, "detokenize failed: %s", herd_last_error());
	FUZZ_CHECK(back[blen] == 0, "not NUL-terminated");
	/* BOS detokenizes to "" (a control token), so the round trip holds with it too. Not for
	 * SentencePiece text that holds U+2581 itself: "\xe2\x96\x81" is the vocab's space
	 * marker and detokenizes to ' ', as in llama.cpp (see docs/fuzzing.md). */
	bool marker = (data[0] & 1) == 0 && memmem(text, len, "\xe2\x96\x81", 3) != NULL;
	if (herd_utf8_valid(text, len, NULL) && !marker)
		FUZZ_CHECK(blen == len && memcmp(back, text, len) == 0,
			   "round trip of %zu bytes gave %zu bytes (vocab %d)", len, blen,
			   data[0] & 1);
	free(back);
	free(ids);
	return 0;
}
