/* fuzz_gguf — the GGUF reader on arbitrary bytes. When herd_gguf_open accepts a file, every
 * accessor is walked (each kv, each array element, each tensor, which must lie inside the
 * file), and the tokenizer and model loaders run on it; a model that loads evaluates two
 * tokens. Seeds: tiny valid GGUFs from fuzz_corpus_gen and truncated heads of real models. */
#include "fuzz.h" /* first: it defines _GNU_SOURCE */

#include <string.h>

#include "engine.h"

static volatile uint64_t sink; /* keeps the walks from being optimized away */

static void touch(const void *p, uint64_t n)
{
	const uint8_t *b = p;
	uint64_t x = 0;
	for (uint64_t i = 0; i < n; i++)
		x += b[i];
	sink += x;
}

static void walk(const struct herd_gguf *g)
{
	uint64_t fsize = herd_gguf_file_size(g);
	uint64_t data = herd_gguf_data_offset(g);
	/* a file without tensors may end before its (aligned) data offset: gguf.c allows it */
	FUZZ_CHECK(data <= fsize || herd_gguf_tensor_count(g) == 0,
		   "data offset %llu past the file (%llu bytes)", (unsigned long long)data,
		   (unsigned long long)fsize);
	uint64_t align = herd_gguf_alignment(g);
	FUZZ_CHECK(align > 0 && data % align == 0, "data offset %llu not aligned to %llu",
		   (unsigned long long)data, (unsigned long long)align);

	int64_t nkv = herd_gguf_kv_count(g);
	FUZZ_CHECK(nkv >= 0, "kv count %lld", (long long)nkv);
	for (int64_t i = 0; i < nkv; i++) {
		struct herd_gguf_str k = herd_gguf_kv_key(g, i);
		touch(k.ptr, k.len);
		/* find_kv wants a C string: only keys without NUL can be looked up */
		if (k.len < 256 && !memchr(k.ptr, 0, k.len)) {
			char key[256];
			memcpy(key, k.ptr, k.len);
			key[k.len] = 0;
			int64_t j = herd_gguf_find_kv(g, key);
			FUZZ_CHECK(j >= 0 && j <= i, "key %s at %lld found at %lld", key,
				   (long long)i, (long long)j);
			int64_t iv;
			double dv;
			bool bv;
			struct herd_gguf_str sv;
			(void)herd_gguf_get_int(g, key, INT64_MIN, INT64_MAX, &iv);
			(void)herd_gguf_get_float(g, key, &dv);
			(void)herd_gguf_get_str(g, key, &sv);
			(void)herd_gguf_get_bool(g, key, &bv);
		}
		enum herd_gguf_vtype t = herd_gguf_kv_type(g, i);
		FUZZ_CHECK(t >= 0 && t < HERD_GGUF_VTYPE_COUNT, "kv %lld has type %d", (long long)i,
			   (int)t);
		FUZZ_CHECK(herd_gguf_vtype_name(t) != NULL, "no name for type %d", (int)t);
		int64_t iv;
		double dv;
		(void)herd_gguf_kv_int(g, i, &iv);
		(void)herd_gguf_kv_float(g, i, &dv);
		struct herd_gguf_str s = herd_gguf_kv_str(g, i);
		FUZZ_CHECK((t == HERD_GGUF_STRING) == (s.ptr != NULL),
			   "kv %lld: str %p for type %d", (long long)i, (const void *)s.ptr,
			   (int)t);
		touch(s.ptr, s.len);
		if (t != HERD_GGUF_ARRAY)
			continue;
		enum herd_gguf_vtype at = herd_gguf_arr_type(g, i);
		uint64_t n = herd_gguf_arr_len(g, i);
		for (uint64_t j = 0; j < n; j++) {
			(void)herd_gguf_arr_int(g, i, j, &iv);
			(void)herd_gguf_arr_float(g, i, j, &dv);
			struct herd_gguf_str e = herd_gguf_arr_str(g, i, j);
			FUZZ_CHECK((at == HERD_GGUF_STRING) == (e.ptr != NULL), "array %lld[%llu]",
				   (long long)i, (unsigned long long)j);
			touch(e.ptr, e.len);
		}
		/* one past the end must be refused, not read */
		FUZZ_CHECK(!herd_gguf_arr_int(g, i, n, &iv), "array %lld read past its end",
			   (long long)i);
		FUZZ_CHECK(herd_gguf_arr_str(g, i, n).ptr == NULL, "array %lld read past its end",
			   (long long)i);
	}

	/* (an index out of range is a caller's bug: kv_at / herd_gguf_tensor assert, by design) */
	int64_t nt = herd_gguf_tensor_count(g);
	FUZZ_CHECK(nt >= 0, "tensor count %lld", (long long)nt);
	for (int64_t i = 0; i < nt; i++) {
		const struct herd_tensor *t = herd_gguf_tensor(g, i);
		FUZZ_CHECK(t && t->name, "tensor %lld missing", (long long)i);
		FUZZ_CHECK(t->n_dims >= 1 && t->n_dims <= 4, "tensor %s: %d dims", t->name,
			   t->n_dims);
		FUZZ_CHECK(herd_type_block_bytes(t->type) > 0, "tensor %s: type %d", t->name,
			   (int)t->type);
		int64_t ne = 1;
		for (int d = 0; d < 4; d++) {
			FUZZ_CHECK(t->ne[d] >= 1, "tensor %s: ne[%d] = %lld", t->name, d,
				   (long long)t->ne[d]);
			FUZZ_CHECK(!__builtin_mul_overflow(ne, t->ne[d], &ne),
				   "tensor %s: element count overflows", t->name);
		}
		FUZZ_CHECK(t->ne[0] % herd_type_block_size(t->type) == 0, "tensor %s: ne0 %lld",
			   t->name, (long long)t->ne[0]);
		FUZZ_CHECK(t->nbytes ==
			       herd_type_row_bytes(t->type, t->ne[0]) * (uint64_t)(ne / t->ne[0]),
			   "tensor %s: nbytes %llu", t->name, (unsigned long long)t->nbytes);
		FUZZ_CHECK(data <= fsize && t->offset <= fsize - data &&
			       t->nbytes <= fsize - data - t->offset,
			   "tensor %s: [%llu, +%llu) past the data (%llu bytes)", t->name,
			   (unsigned long long)t->offset, (unsigned long long)t->nbytes,
			   (unsigned long long)(fsize - data));
		FUZZ_CHECK(herd_gguf_find_tensor(g, t->name) != NULL, "tensor %s not found by name",
			   t->name);
		touch(t->data, t->nbytes);
	}
}

static void use_vocab(const struct herd_vocab *v)
{
	int32_t n = herd_vocab_size(v);
	FUZZ_CHECK(n > 0, "vocab of %d", n);
	for (int32_t id = 0; id < n; id++) {
		size_t len;
		const char *t = herd_token_text(v, id, &len);
		FUZZ_CHECK(t != NULL, "token %d has no text", id);
		touch(t, len);
	}
	static const char text[] =
	    "Once upon a time, \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 12 345\n\n";
	int32_t *ids = NULL;
	size_t nids = 0;
	if (herd_tokenize(v, text, sizeof text - 1, true, &ids, &nids) == HERD_OK) {
		for (size_t i = 0; i < nids; i++)
			FUZZ_CHECK(ids[i] >= 0 && ids[i] < n, "token id %d of %d", ids[i], n);
		char *back = NULL;
		size_t blen = 0;
		if (herd_detokenize(v, ids, nids, &back, &blen) == HERD_OK) {
			FUZZ_CHECK(back[blen] == 0, "detokenized text not terminated");
			free(back);
		}
	}
	free(ids);
}

static void use_model(const struct herd_model *m)
{
	const struct herd_model_info *I = herd_model_info(m);
	FUZZ_CHECK(I->n_vocab > 0 && I->n_embd > 0 && I->n_layer > 0, "model sizes");
	struct herd_ctx_params p = herd_ctx_default_params();
	p.n_ctx = 4;
	p.n_threads = 1;
	p.n_batch = 2;
	struct herd_ctx *c = NULL;
	if (herd_ctx_new(m, &p, &c) != HERD_OK)
		return;
	int32_t toks[2] = {0, I->n_vocab - 1};
	if (herd_ctx_eval(c, toks, 2, true) == HERD_OK) {
		touch(herd_ctx_logits(c, 0), sizeof(float) * (size_t)I->n_vocab);
		touch(herd_ctx_logits(c, 1), sizeof(float) * (size_t)I->n_vocab);
	}
	int32_t bad = I->n_vocab;
	FUZZ_CHECK(herd_ctx_eval(c, &bad, 1, false) != HERD_OK, "id n_vocab accepted");
	herd_ctx_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		fuzz_quiet();
		init = true;
	}
	char path[64];
	int fd = fuzz_memfile(data, size, path);
	struct herd_gguf *g = NULL;
	if (herd_gguf_open(path, &g) == HERD_OK) {
		walk(g);
		struct herd_vocab *v = NULL;
		if (herd_vocab_load(g, &v) == HERD_OK) {
			use_vocab(v);
			herd_vocab_free(v);
		}
		herd_gguf_close(g);
		struct herd_model *m = NULL;
		if (herd_model_load(path, &m) == HERD_OK) {
			use_model(m);
			herd_model_free(m);
		}
	} else {
		FUZZ_CHECK(g == NULL, "failed open left a handle");
		FUZZ_CHECK(herd_last_error()[0] != 0, "failed open without a message");
	}
	close(fd);
	return 0;
}
