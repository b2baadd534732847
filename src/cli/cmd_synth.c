/* herd synth — writes a random-weight GGUF Llama of a real model's shape, so that benchmarks
 * run on realistic sizes without downloading weights. The tokenizer (every tokenizer.* key)
 * is copied from another GGUF, and the vocabulary size follows it. Deterministic: the same
 * seed gives the same bytes. Weights are uniform with std 0.02 (as at initialization), norms
 * 1.0; the output is gibberish but every number is finite and every kernel does real work. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "engine_int.h"

struct shape {
	const char *name;
	int dim, layers, heads, kv_heads, ffn, ctx;
	float rope_base;
	bool tied; /* output shares token_embd */
};

static const struct shape shapes[] = {
	{"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 2048, 10000.0f, false},
	{"llama-2-7b", 4096, 32, 32, 32, 11008, 4096, 10000.0f, false},
	{"smollm-135m", 576, 30, 9, 3, 1536, 2048, 10000.0f, true},
	{"stories-260k", 64, 5, 8, 4, 172, 512, 10000.0f, false},
};

struct synth {
	uint64_t seed;
	enum herd_type type;
	float *row; /* one row of floats, reused */
};

struct tensor_plan {
	struct synth *s;
	enum herd_type type;
	int64_t ne0, rows;
	bool is_norm;
	uint64_t seed;
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill(void *ud, int64_t index, void *buf, uint64_t nbytes)
{
	struct tensor_plan *p = ud;
	const struct herd_type_ops *ops = herd_type_ops(p->type);
	size_t row_bytes = herd_type_row_bytes(p->type, p->ne0);
	HERD_ASSERT(row_bytes * (uint64_t)p->rows == nbytes);
	uint64_t state = p->seed;
	const float a = 0.02f * sqrtf(3.0f); /* uniform on [-a, a] has std 0.02 */
	for (int64_t r = 0; r < p->rows; r++) {
		for (int64_t i = 0; i < p->ne0; i++)
			p->s->row[i] = p->is_norm ? 1.0f
						  : a * (2.0f * (float)(splitmix64(&state) >> 40) / 16777216.0f - 1.0f);
		ops->from_float(p->s->row, (char *)buf + (size_t)r * row_bytes, p->ne0);
	}
}

/* The requested type where the row length allows it, else Q8_0, else F16 (as llama.cpp's
 * quantizer falls back). */
static enum herd_type fit_type(enum herd_type want, int64_t ne0)
{
	if (ne0 % herd_type_block_size(want) == 0)
		return want;
	return ne0 % 32 == 0 ? HERD_TYPE_Q8_0 : HERD_TYPE_F16;
}

int herd_cmd_synth(int argc, char **argv)
{
	const char *shape_name = NULL, *type_name = "Q8_0", *vocab_from = NULL, *out = NULL;
	uint64_t seed = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--shape") && v)
			shape_name = v, i++;
		else if (!strcmp(a, "--type") && v)
			type_name = v, i++;
		else if (!strcmp(a, "--vocab-from") && v)
			vocab_from = v, i++;
		else if (!strcmp(a, "-o") && v)
			out = v, i++;
		else if (!strcmp(a, "--seed") && v)
			seed = strtoull(v, NULL, 10), i++;
		else {
			fprintf(stderr, "herd synth: unknown or incomplete argument '%s'\n", a);
			goto usage;
		}
	}
	if (!shape_name || !vocab_from || !out)
		goto usage;
	const struct shape *sh = NULL;
	for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
		if (!strcmp(shapes[i].name, shape_name))
			sh = &shapes[i];
	if (!sh) {
		fprintf(stderr, "herd synth: unknown shape '%s' (known:", shape_name);
		for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
			fprintf(stderr, " %s", shapes[i].name);
		fprintf(stderr, ")\n");
		return 2;
	}
	enum herd_type type;
	if (!herd_type_from_name(type_name, &type) || !herd_type_ops(type) || herd_type_block_size(type) == 0 ||
	    type == HERD_TYPE_Q8_1 || type == HERD_TYPE_Q8_K) {
		fprintf(stderr, "herd synth: --type %s: not a weight type herd can write (F32, F16, BF16, Q8_0, "
				"Q4_0, Q4_K, ...)\n", type_name);
		return 2;
	}
	struct herd_gguf *voc;
	if (herd_gguf_open(vocab_from, &voc)) {
		fprintf(stderr, "herd synth: %s\n", herd_last_error());
		return 1;
	}
	int64_t ti = herd_gguf_find_kv(voc, "tokenizer.ggml.tokens");
	if (ti < 0 || herd_gguf_arr_type(voc, ti) != HERD_GGUF_STRING || herd_gguf_arr_len(voc, ti) == 0) {
		fprintf(stderr, "herd synth: %s has no tokenizer.ggml.tokens\n", vocab_from);
		herd_gguf_close(voc);
		return 1;
	}
	int64_t n_vocab = (int64_t)herd_gguf_arr_len(voc, ti);

	struct herd_gguf_writer *w = herd_gguf_writer_new(0);
	char name[128];
	snprintf(name, sizeof name, "synthetic %s %s", sh->name, herd_type_name(type));
	herd_gguf_writer_str(w, "general.architecture", "llama");
	herd_gguf_writer_str(w, "general.name", name);
	herd_gguf_writer_u32(w, "llama.context_length", (uint32_t)sh->ctx);
	herd_gguf_writer_u32(w, "llama.embedding_length", (uint32_t)sh->dim);
	herd_gguf_writer_u32(w, "llama.feed_forward_length", (uint32_t)sh->ffn);
	herd_gguf_writer_u32(w, "llama.block_count", (uint32_t)sh->layers);
	herd_gguf_writer_u32(w, "llama.attention.head_count", (uint32_t)sh->heads);
	herd_gguf_writer_u32(w, "llama.attention.head_count_kv", (uint32_t)sh->kv_heads);
	herd_gguf_writer_u32(w, "llama.rope.dimension_count", (uint32_t)(sh->dim / sh->heads));
	herd_gguf_writer_f32(w, "llama.rope.freq_base", sh->rope_base);
	herd_gguf_writer_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	for (int64_t i = 0; i < herd_gguf_kv_count(voc); i++) {
		struct herd_gguf_str k = herd_gguf_kv_key(voc, i);
		if (k.len > 10 && !memcmp(k.ptr, "tokenizer.", 10))
			herd_gguf_writer_copy_kv(w, voc, i);
	}

	struct synth s = {.seed = seed, .type = type};
	int64_t max_row = sh->dim > sh->ffn ? sh->dim : sh->ffn;
	s.row = herd_xmalloc((size_t)max_row * sizeof(float));
	int n_plans = 3 + 9 * sh->layers, np = 0;
	struct tensor_plan *plans = herd_xcalloc((size_t)n_plans, sizeof *plans);
	int head_dim = sh->dim / sh->heads;
#define TENSOR(tname, ne0_, rows_, norm)                                                                   \
	do {                                                                                               \
		struct tensor_plan *p = &plans[np++];                                                      \
		p->s = &s;                                                                                 \
		p->ne0 = (ne0_);                                                                           \
		p->rows = (rows_);                                                                         \
		p->is_norm = (norm);                                                                       \
		p->type = (norm) ? HERD_TYPE_F32 : fit_type(type, p->ne0);                                 \
		p->seed = seed * 1000003u + (uint64_t)np;                                                  \
		int64_t ne[2] = {p->ne0, p->rows};                                                         \
		herd_gguf_writer_tensor(w, (tname), p->type, (norm) ? 1 : 2, ne, fill, p);                 \
	} while (0)
	TENSOR("token_embd.weight", sh->dim, n_vocab, false);
	TENSOR("output_norm.weight", sh->dim, 1, true);
	if (!sh->tied)
		TENSOR("output.weight", sh->dim, n_vocab, false);
	for (int l = 0; l < sh->layers; l++) {
		char tn[64];
#define LAYER(suffix, ne0_, rows_, norm)                                                                   \
	snprintf(tn, sizeof tn, "blk.%d.%s", l, suffix);                                                   \
	TENSOR(tn, ne0_, rows_, norm)
		LAYER("attn_norm.weight", sh->dim, 1, true);
		LAYER("attn_q.weight", sh->dim, sh->dim, false);
		LAYER("attn_k.weight", sh->dim, (int64_t)head_dim * sh->kv_heads, false);
		LAYER("attn_v.weight", sh->dim, (int64_t)head_dim * sh->kv_heads, false);
		LAYER("attn_output.weight", sh->dim, sh->dim, false);
		LAYER("ffn_norm.weight", sh->dim, 1, true);
		LAYER("ffn_gate.weight", sh->dim, sh->ffn, false);
		LAYER("ffn_up.weight", sh->dim, sh->ffn, false);
		LAYER("ffn_down.weight", sh->ffn, sh->dim, false);
	}
	HERD_ASSERT(np <= n_plans);
	enum herd_err e = herd_gguf_writer_save(w, out);
	if (e)
		fprintf(stderr, "herd synth: %s\n", herd_last_error());
	else
		fprintf(stderr, "herd synth: wrote %s (%s, %s, %lld-token vocabulary from %s)\n", out, sh->name,
			herd_type_name(type), (long long)n_vocab, vocab_from);
	herd_gguf_writer_free(w);
	free(plans);
	free(s.row);
	herd_gguf_close(voc);
	return e ? 1 : 0;
usage:
	fprintf(stderr, "usage: herd synth --shape NAME --type TYPE --vocab-from MODEL -o OUT.gguf [--seed S]\n");
	return 2;
}
