/* model — loads a GGUF Llama: hyperparameters from the llama.* metadata, every tensor found,
 * shape-checked and type-checked before anything runs.
 *
 * The one thing to know: weights are not copied, with one exception. Tensors point into the
 * read-only mapping of the file, which lives as long as the model (norm vectors are copied as
 * floats). The exception: on CPUs with the SIMD kernels (AVX2 and up), the Q8_0 and Q4_0
 * matrices are rewritten 16 rows interleaved (quant_x16.c) into one buffer of huge pages, and
 * the file's pages of them are released, so that memory holds them once. That layout, not the file's, is
 * what lets generation run at the memory's speed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "limits.h"
#include "model_int.h"
#include "quant_int.h"

/* herd_fail with a message that quotes the previous one (herd_last_error's buffer would be
 * both source and destination otherwise). */
static enum herd_err refail(enum herd_err e, const char *path)
{
	char prev[768];
	snprintf(prev, sizeof prev, "%s", herd_last_error());
	return herd_fail(e, "%s: %s", path, prev);
}

static enum herd_err get_i32(const struct herd_gguf *g, const char *path, const char *key,
			     int64_t min, int64_t max, int32_t *out)
{
	int64_t v;
	enum herd_err e = herd_gguf_get_int(g, key, min, max, &v);
	if (e)
		return refail(e, path);
	*out = (int32_t)v;
	return HERD_OK;
}

/* Optional key: leaves *out alone when absent. */
static enum herd_err opt_i32(const struct herd_gguf *g, const char *path, const char *key,
			     int64_t min, int64_t max, int32_t *out)
{
	if (herd_gguf_find_kv(g, key) < 0)
		return HERD_OK;
	return get_i32(g, path, key, min, max, out);
}

static enum herd_err opt_f32(const struct herd_gguf *g, const char *path, const char *key,
			     float *out)
{
	if (herd_gguf_find_kv(g, key) < 0)
		return HERD_OK;
	double v;
	enum herd_err e = herd_gguf_get_float(g, key, &v);
	if (e)
		return refail(e, path);
	*out = (float)v;
	return HERD_OK;
}

static const char *shape_str(const struct herd_tensor *t, char *buf, size_t n)
{
	int k = snprintf(buf, n, "[");
	for (int d = 0; d < t->n_dims && k < (int)n; d++)
		k += snprintf(buf + k, n - (size_t)k, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
	if (k < (int)n)
		snprintf(buf + k, n - (size_t)k, "]");
	return buf;
}

/* Finds tensor `name` and checks it is (ne0) or (ne0, ne1) of a type herd computes with. */
static enum herd_err find(const struct herd_model *m, const char *path, const char *name,
			  int64_t ne0, int64_t ne1, const char *why, const struct herd_tensor **out)
{
	const struct herd_tensor *t = herd_gguf_find_tensor(m->g, name);
	if (!t)
		return herd_fail(HERD_ERR_NOT_FOUND, "%s: tensor '%s' is missing", path, name);
	bool ok =
	    t->ne[0] == ne0 && t->ne[1] == (ne1 > 0 ? ne1 : 1) && t->ne[2] == 1 && t->ne[3] == 1;
	if (!ok) {
		char got[128];
		if (ne1 > 0)
			return herd_fail(HERD_ERR_FORMAT,
					 "%s: tensor '%s' has shape %s, expected [%lld, %lld] (%s)",
					 path, name, shape_str(t, got, sizeof got), (long long)ne0,
					 (long long)ne1, why);
		return herd_fail(HERD_ERR_FORMAT,
				 "%s: tensor '%s' has shape %s, expected [%lld] (%s)", path, name,
				 shape_str(t, got, sizeof got), (long long)ne0, why);
	}
	const struct herd_type_ops *ops =
	    herd_type_supported(t->type) ? herd_type_ops(t->type) : NULL;
	if (!ops)
		return herd_fail(HERD_ERR_UNSUPPORTED,
				 "%s: tensor '%s' has type %s, which herd cannot compute with",
				 path, name,
				 herd_type_name(t->type) ? herd_type_name(t->type) : "(unknown)");
	int bs = herd_type_block_size(t->type), vbs = herd_type_block_size(ops->vec_dot_type);
	if (t->ne[0] % bs != 0 || vbs < 1 || t->ne[0] % vbs != 0)
		return herd_fail(HERD_ERR_FORMAT,
				 "%s: tensor '%s': rows of %lld elements do not fit type %s", path,
				 name, (long long)t->ne[0], herd_type_name(t->type));
	*out = t;
	return HERD_OK;
}

/* A norm vector as floats, copied into dst whatever its type: read every token, a vector left
 * in the mapping would make each fault map the page cache's whole large folio around it (up
 * to 2 MB on recent kernels: 88 MB of a tinyllama file for its 45 norms of 8 KB). */
static const float *norm_floats(const struct herd_tensor *t, float *dst)
{
	herd_type_ops(t->type)->to_float(t->data, dst, t->ne[0]);
	return dst;
}

static enum herd_err load_hparams(struct herd_model *m, const char *path)
{
	const struct herd_gguf *g = m->g;
	struct herd_model_info *I = &m->info;
	struct herd_gguf_str s;
	enum herd_err e = herd_gguf_get_str(g, "general.architecture", &s);
	if (e)
		return refail(e, path);
	m->arch = strndup(s.ptr, s.len);
	if (!m->arch)
		return herd_fail(HERD_ERR_NOMEM, "%s: out of memory", path);
	if (strcmp(m->arch, "llama") != 0)
		return herd_fail(
		    HERD_ERR_UNSUPPORTED,
		    "%s: general.architecture is \"%.64s\": herd runs only \"llama\" models", path,
		    m->arch);
	I->arch = m->arch;
	if (herd_gguf_find_kv(g, "general.name") >= 0 &&
	    !herd_gguf_get_str(g, "general.name", &s)) {
		m->name = strndup(s.ptr, s.len);
	} else {
		const char *base = strrchr(path, '/');
		m->name = strdup(base ? base + 1 : path);
	}
	if (!m->name)
		return herd_fail(HERD_ERR_NOMEM, "%s: out of memory", path);
	I->name = m->name;

	if ((e = get_i32(g, path, "llama.embedding_length", 1, HERD_MAX_EMBD, &I->n_embd)) ||
	    (e = get_i32(g, path, "llama.feed_forward_length", 1, HERD_MAX_FF, &I->n_ff)) ||
	    (e = get_i32(g, path, "llama.block_count", 1, HERD_MAX_LAYERS, &I->n_layer)) ||
	    (e = get_i32(g, path, "llama.attention.head_count", 1, HERD_MAX_HEADS, &I->n_head)) ||
	    (e = get_i32(g, path, "llama.context_length", 1, INT32_MAX, &I->n_ctx_train)))
		return e;
	I->n_head_kv = I->n_head;
	if ((e = opt_i32(g, path, "llama.attention.head_count_kv", 1, I->n_head, &I->n_head_kv)))
		return e;
	if (I->n_embd % I->n_head != 0 || (I->n_embd / I->n_head) % 2 != 0)
		return herd_fail(HERD_ERR_FORMAT,
				 "%s: llama.embedding_length %d must be an even multiple of "
				 "llama.attention.head_count %d",
				 path, I->n_embd, I->n_head);
	if (I->n_head % I->n_head_kv != 0)
		return herd_fail(HERD_ERR_FORMAT,
				 "%s: llama.attention.head_count %d must be a multiple of "
				 "llama.attention.head_count_kv %d",
				 path, I->n_head, I->n_head_kv);
	m->head_dim = I->n_embd / I->n_head;
	m->kv_dim = I->n_head_kv * m->head_dim;
	I->n_rot = m->head_dim;
	if ((e = opt_i32(g, path, "llama.rope.dimension_count", 2, m->head_dim, &I->n_rot)))
		return e;
	if (I->n_rot % 2 != 0)
		return herd_fail(HERD_ERR_FORMAT,
				 "%s: llama.rope.dimension_count must be even, is %d", path,
				 I->n_rot);

	I->rope_freq_base = 10000.0f;
	I->rope_freq_scale = 1.0f;
	if ((e = opt_f32(g, path, "llama.rope.freq_base", &I->rope_freq_base)))
		return e;
	if (!(I->rope_freq_base > 0) || !isfinite(I->rope_freq_base))
		return herd_fail(HERD_ERR_FORMAT, "%s: llama.rope.freq_base must be > 0, is %g",
				 path, (double)I->rope_freq_base);
	bool linear = true; /* files without a scaling type that give a factor mean linear */
	if (herd_gguf_find_kv(g, "llama.rope.scaling.type") >= 0) {
		if ((e = herd_gguf_get_str(g, "llama.rope.scaling.type", &s)))
			return refail(e, path);
		bool none = s.len == 4 && !memcmp(s.ptr, "none", 4);
		linear = s.len == 6 && !memcmp(s.ptr, "linear", 6);
		if (!none && !linear)
			return herd_fail(
			    HERD_ERR_UNSUPPORTED,
			    "%s: llama.rope.scaling.type \"%.*s\" is not supported (none, linear)",
			    path, (int)(s.len > 32 ? 32 : s.len), s.ptr);
	}
	float factor = 0.0f;
	if ((e = opt_f32(g, path, "llama.rope.scaling.factor", &factor)) ||
	    (herd_gguf_find_kv(g, "llama.rope.scaling.factor") < 0 &&
	     (e = opt_f32(g, path, "llama.rope.scale_linear", &factor))))
		return e;
	if (linear && factor != 0.0f) {
		if (!(factor > 0) || !isfinite(factor))
			return herd_fail(HERD_ERR_FORMAT,
					 "%s: llama.rope.scaling.factor must be > 0, is %g", path,
					 (double)factor);
		I->rope_freq_scale = 1.0f / factor;
	}

	double eps;
	if ((e = herd_gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &eps)))
		return refail(e, path);
	if (!(eps > 0 && eps < 1))
		return herd_fail(
		    HERD_ERR_FORMAT,
		    "%s: llama.attention.layer_norm_rms_epsilon must be in (0, 1), is %g", path,
		    eps);
	I->norm_eps = (float)eps;
	return HERD_OK;
}

static enum herd_err load_tensors(struct herd_model *m, const char *path)
{
	struct herd_model_info *I = &m->info;
	const int64_t E = I->n_embd, F = I->n_ff, KV = m->kv_dim;
	enum herd_err e;
	const struct herd_tensor *t = herd_gguf_find_tensor(m->g, "token_embd.weight");
	if (!t)
		return herd_fail(HERD_ERR_NOT_FOUND, "%s: tensor 'token_embd.weight' is missing",
				 path);
	if (t->ne[1] < 1 || t->ne[1] > HERD_MAX_VOCAB)
		return herd_fail(HERD_ERR_FORMAT,
				 "%s: tensor 'token_embd.weight' has %lld rows, must be 1..%d",
				 path, (long long)t->ne[1], HERD_MAX_VOCAB);
	I->n_vocab = (int32_t)t->ne[1];
	if ((e = find(m, path, "token_embd.weight", E, I->n_vocab, "n_embd, n_vocab",
		      &m->tok_embd)))
		return e;
	if (herd_gguf_find_tensor(m->g, "output.weight")) {
		if ((e = find(m, path, "output.weight", E, I->n_vocab, "n_embd, n_vocab",
			      &m->output)))
			return e;
	} else {
		m->output = m->tok_embd; /* tied embeddings */
	}

	/* norms: 2 per layer + the final one */
	m->norm_copies = herd_xmalloc((size_t)(2 * I->n_layer + 1) * (size_t)E * sizeof(float));
	const struct herd_tensor *nt;
	if ((e = find(m, path, "output_norm.weight", E, 0, "n_embd", &nt)))
		return e;
	m->output_norm = norm_floats(nt, m->norm_copies);

	m->layers = herd_xcalloc((size_t)I->n_layer, sizeof *m->layers);
	char name[96];
	for (int32_t l = 0; l < I->n_layer; l++) {
		struct herd_layer *L = &m->layers[l];
#define T(field, suffix, ne0, ne1, why)                                                            \
	do {                                                                                       \
		snprintf(name, sizeof name, "blk.%d." suffix ".weight", l);                        \
		if ((e = find(m, path, name, ne0, ne1, why, &L->field)))                           \
			return e;                                                                  \
	} while (0)
		T(wq, "attn_q", E, E, "n_embd, n_head * head_dim");
		T(wk, "attn_k", E, KV, "n_embd, n_head_kv * head_dim");
		T(wv, "attn_v", E, KV, "n_embd, n_head_kv * head_dim");
		T(wo, "attn_output", E, E, "n_embd, n_embd");
		T(gate, "ffn_gate", E, F, "n_embd, n_ff");
		T(up, "ffn_up", E, F, "n_embd, n_ff");
		T(down, "ffn_down", F, E, "n_ff, n_embd");
#undef T
		snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
		if ((e = find(m, path, name, E, 0, "n_embd", &nt)))
			return e;
		L->attn_norm = norm_floats(nt, m->norm_copies + (size_t)(1 + 2 * l) * (size_t)E);
		snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
		if ((e = find(m, path, name, E, 0, "n_embd", &nt)))
			return e;
		L->ffn_norm = norm_floats(nt, m->norm_copies + (size_t)(2 + 2 * l) * (size_t)E);
	}

	/* weight_bytes: what one generated token reads: every tensor but the embedding table, of
	 * which it reads one row (all of it again when the output is tied to it). */
	uint64_t bytes = 0;
	for (int64_t i = 0; i < herd_gguf_tensor_count(m->g); i++) {
		const struct herd_tensor *x = herd_gguf_tensor(m->g, i);
		if (x != m->tok_embd)
			bytes += x->nbytes;
	}
	bytes += herd_type_row_bytes(m->tok_embd->type, E);
	if (m->output == m->tok_embd)
		bytes += m->tok_embd->nbytes;
	I->weight_bytes = bytes;
	return HERD_OK;
}

/* The places of the matrices a forward pass multiplies by: every layer's 7, then the output
 * (7 * n_layer + 1 of them). */
static void matrix_slots(struct herd_model *m, const struct herd_tensor ***slot)
{
	int k = 0;
	for (int32_t l = 0; l < m->info.n_layer; l++) {
		struct herd_layer *L = &m->layers[l];
		const struct herd_tensor **s[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
		for (size_t j = 0; j < sizeof s / sizeof *s; j++)
			slot[k++] = s[j];
	}
	slot[k] = &m->output;
}

#define HUGE_PAGE (2u << 20)
#define PACK_SLICE_BYTES (1u << 20) /* of the file's rows packed before their pages are released */

/* A packed matrix's share of the buffer: whole 64-byte lines, so the next one is aligned. */
static size_t packed_size(const struct herd_tensor *t)
{
	return (herd_x16_bytes(t->type, t->ne[0], t->ne[1]) + 63) / 64 * 64;
}

/* Packs the matrices herd_x16_packable takes; the model's pointers move to the copies (both
 * tok_embd and output when they are one tensor). Nothing to do on other CPUs, and a failed
 * allocation only leaves the file's layout in place. */
static void pack_matrices(struct herd_model *m)
{
	const int n_slots = 7 * m->info.n_layer + 1;
	const struct herd_tensor ***slot = herd_xcalloc((size_t)n_slots, sizeof *slot);
	matrix_slots(m, slot);
	size_t bytes = 0;
	int n = 0;
	for (int k = 0; k < n_slots; k++) {
		const struct herd_tensor *t = *slot[k];
		if (herd_x16_packable(t->type, t->ne[0], t->ne[1])) {
			bytes += packed_size(t);
			n++;
		}
	}
	void *buf = MAP_FAILED;
	if (n) {
		bytes = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
		buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (buf == MAP_FAILED) {
		free(slot);
		return;
	}
	madvise(buf, bytes, MADV_HUGEPAGE); /* fewer TLB misses on the weight stream; advice only */
	m->pack_buf = buf;
	m->pack_bytes = bytes;
	m->packed = herd_xcalloc((size_t)n, sizeof *m->packed);
	const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	char *dst = buf;
	n = 0;
	for (int k = 0; k < n_slots; k++) {
		const struct herd_tensor *t = *slot[k];
		if (t->packed || !herd_x16_packable(t->type, t->ne[0], t->ne[1]))
			continue; /* already packed (a tied output), or not packable */
		struct herd_tensor *p = &m->packed[n++];
		*p = *t;
		p->data = dst;
		p->packed = true;
		/* in slices, each slice's whole file pages leaving this process's memory (the page
		 * cache keeps them) once packed: resident memory never holds a matrix twice */
		const int64_t ne0 = t->ne[0], rows = t->ne[1];
		const size_t rb = herd_type_row_bytes(t->type, ne0);
		const int64_t slice = PACK_SLICE_BYTES / (16 * rb) * 16 + 16;
		for (int64_t r = 0; r < rows; r += slice) {
			const int64_t nr = rows - r < slice ? rows - r : slice;
			const char *src = (const char *)t->data + (size_t)r * rb;
			herd_x16_pack(t->type, src, ne0, nr, dst + herd_x16_bytes(t->type, ne0, r));
			uintptr_t a = ((uintptr_t)src + page - 1) & ~(page - 1);
			uintptr_t b = ((uintptr_t)src + (size_t)nr * rb) & ~(page - 1);
			if (b > a)
				madvise((void *)a, b - a, MADV_DONTNEED);
		}
		dst += packed_size(t);
		for (int j = k; j < n_slots; j++)
			if (*slot[j] == t)
				*slot[j] = p;
		if (m->tok_embd == t)
			m->tok_embd = p;
	}
	free(slot);
}

enum herd_err herd_model_load(const char *path, struct herd_model **out)
{
	*out = NULL;
	struct herd_model *m = herd_xcalloc(1, sizeof *m);
	enum herd_err e = herd_gguf_open(path, &m->g);
	if (e)
		goto out;
	m->info.file_bytes = herd_gguf_file_size(m->g);
	if ((e = load_hparams(m, path)) || (e = load_tensors(m, path)))
		goto out;
	pack_matrices(m);
	if ((e = herd_vocab_load(m->g, &m->vocab))) {
		e = refail(e, path);
		goto out;
	}
	if (herd_vocab_size(m->vocab) != m->info.n_vocab) {
		e = herd_fail(HERD_ERR_FORMAT,
			      "%s: the vocabulary has %d tokens but token_embd.weight has %d rows",
			      path, herd_vocab_size(m->vocab), m->info.n_vocab);
		goto out;
	}
	*out = m;
	return HERD_OK;
out:
	herd_model_free(m);
	return e;
}

void herd_model_free(struct herd_model *m)
{
	if (!m)
		return;
	herd_vocab_free(m->vocab);
	herd_gguf_close(m->g);
	free(m->layers);
	free(m->norm_copies);
	free(m->packed);
	if (m->pack_buf)
		munmap(m->pack_buf, m->pack_bytes);
	free(m->arch);
	free(m->name);
	free(m);
}

const struct herd_model_info *herd_model_info(const struct herd_model *m)
{
	return &m->info;
}

const struct herd_vocab *herd_model_vocab(const struct herd_model *m)
{
	return m->vocab;
}

const struct herd_gguf *herd_model_gguf(const struct herd_model *m)
{
	return m->g;
}
