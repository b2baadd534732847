/* forward — the Llama forward pass over a batch of tokens, with an F32 KV cache.
 *
 * The one thing to know: a context allocates everything once (KV cache, activations, the
 * converted-activation buffers, per-thread attention scratch) and every pass is a fixed
 * sequence of phases, each run on the thread pool and split by rows or tokens (ith/nth):
 *   embed (+ the RoPE table of the batch); per layer: norm+convert, Q/K/V matmul (K, V written
 *   straight into the cache), RoPE, attention, convert, output matmul, residual+norm+convert,
 *   gate/up matmul, SwiGLU+convert, down matmul; then residual + final norm + convert, logits.
 * Each phase runs on as many threads as its work keeps busy (one, for a tiny model); matmuls
 * hand out chunks of rows (a run of them per thread, shared at the end) and walk a prompt in
 * activation tiles.
 * Activations are converted once per matrix input to the weights' vec_dot_type (none for F32).
 * Shapes below are (rows, row length) in floats unless stated. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "limits.h"
#include "model_int.h"
#include "quant_int.h"

#define MAX_JOBS 3 /* matrices sharing one input in one phase: Q, K, V */

/* Work (about one multiply-add or one element touched) a thread must get for waking it to pay:
 * a run costs a few µs of cross-core traffic and, on a busy machine, the wait for the slowest
 * thread. Below this a phase runs on fewer threads; a tiny model (stories260K) runs each token
 * on the caller alone. */
#define MIN_WORK_PER_THREAD 40000

/* Matrix products are cut into chunks of rows. Each thread takes the chunks of its own run in
 * order, then helps with the others' (a preempted thread on a shared machine then delays a
 * chunk, not half the phase). In order, because the kernels prefetch past the end of a pass
 * into the weights that follow: chunks handed out in turn from one counter (thread 0 took
 * 0, 2, 4.., thread 1 1, 3, 5..) started every chunk's streams cold. A chunk is
 * a multiple of the 64 rows (4 groups of 16) that the packed matrices' AVX-512 generation
 * kernel takes at once (quant_x16_avx512.c; the AVX2 one takes 32), and so of the file-layout
 * AVX2 kernels' 4-row tile; there are about CHUNKS_PER_THREAD per thread. */
#define CHUNK_ROWS 64
#define CHUNKS_PER_THREAD 8
/* Prompt processing reads the converted activations once per chunk of rows: they are taken in
 * tiles of at most this many bytes (a multiple of 4 tokens) so that a tile and the chunk's
 * weight rows stay in the L2 cache. */
#define X_TILE_BYTES (256u << 10)

/* One matrix input: float rows, converted (when the weights do not take F32) into buf. */
struct act {
	enum herd_type vdt;
	bool convert;
	void *buf;     /* converted rows, stride bytes apart */
	size_t stride; /* bytes between rows of what the matmul reads */
};

struct mm_job {
	const struct herd_tensor *w;
	const void *x; /* input rows as the matmul reads them */
	size_t x_stride;
	float *y; /* y[t * ldy + r] */
	int64_t ldy;
	int64_t chunk_rows, chunk0; /* rows per chunk; index of this job's first chunk */
};

/* Thread t's share of a matmul's chunks: [next, end), taken in order, so that one chunk's
 * weights follow the last's in memory and the kernels' prefetch past a pass's end lands on
 * what the thread reads next. A thread that ran out of its own helps in the others'. */
struct region {
	_Alignas(64) atomic_llong next;
	int64_t end;
};

struct herd_ctx {
	const struct herd_model *m;
	struct herd_pool *pool;
	int32_t n_ctx, n_batch, pos;
	float *k_cache, *v_cache; /* (n_layer * n_ctx, kv_dim) each */
	float *x;		  /* (n_batch, n_embd) the residual stream */
	float *xb;		  /* (n_batch, n_embd) normed input of a matrix */
	float *q;		  /* (n_batch, n_embd) queries */
	float *att;		  /* (n_batch, n_embd) attention output */
	float *tmp;		  /* (n_batch, n_embd) output of wo / down */
	float *hb, *hb2;	  /* (n_batch, n_ff) gate, up */
	void *xq[MAX_JOBS];	  /* (n_batch, xq_row_bytes) converted activations */
	size_t xq_row_bytes;
	float *scores; /* (n_threads, heads per KV head, n_ctx) attention weights per thread */
	float *rope;   /* (n_batch, n_rot) cos, sin pairs per token of the batch */
	float *logits; /* (logits_cap, n_vocab) */
	int32_t logits_cap, n_logits;
	bool all_logits;

	/* the phase being run (set before each herd_pool_run) */
	int32_t layer, nt, pos0;
	const int32_t *tokens;
	struct act in[MAX_JOBS];
	int n_in;
	const float *src; /* float rows being converted (row length src_n) */
	int64_t src_n;
	const float *norm_w; /* the norm weight of a norm phase */
	bool add_residual;
	int32_t row0; /* norm phase: first token row it works on */
	struct mm_job jobs[MAX_JOBS];
	int n_jobs;
	int64_t n_chunks, x_tile;	/* chunks of all jobs; tokens per activation tile */
	double min_work;		/* MIN_WORK_PER_THREAD unless tuned (herd_ctx_tune) */
	size_t x_tile_bytes;		/* X_TILE_BYTES unless tuned */
	_Alignas(64) atomic_llong next; /* next item (attention) to take */
	struct region *region;		/* a matmul's chunks, one run of them per thread */
	struct herd_x16_prep *prep;	/* per thread: its token's blocks for the packed kernels */
};

struct herd_ctx_params herd_ctx_default_params(void)
{
	return (struct herd_ctx_params){.n_ctx = 0, .n_threads = 0, .n_batch = 512};
}

static inline void split(int64_t n, int ith, int nth, int64_t *a, int64_t *b)
{
	*a = n * ith / nth;
	*b = n * (ith + 1) / nth;
}

/* Plans up to three matrices reading the same float rows src (row length n, rows n apart):
 * the matrices whose vec_dot_type is the same share one converted copy; F32 reads src. */
static void plan(struct herd_ctx *c, const struct herd_tensor *const *w, float *const *y,
		 const int64_t *ldy, int nw, const float *src, int64_t n)
{
	int nbuf = 0;
	c->n_in = 0;
	c->src = src;
	c->src_n = n;
	for (int i = 0; i < nw; i++) {
		enum herd_type v = herd_type_ops(w[i]->type)->vec_dot_type;
		int k;
		for (k = 0; k < c->n_in; k++)
			if (c->in[k].vdt == v)
				break;
		if (k == c->n_in) {
			struct act *a = &c->in[c->n_in++];
			a->vdt = v;
			a->convert = v != HERD_TYPE_F32;
			a->stride =
			    a->convert ? herd_type_row_bytes(v, n) : (size_t)n * sizeof(float);
			a->buf = a->convert ? c->xq[nbuf++] : NULL;
		}
		struct mm_job *J = &c->jobs[i];
		J->w = w[i];
		J->x = c->in[k].convert ? c->in[k].buf : (const void *)src;
		J->x_stride = c->in[k].stride;
		J->y = y[i];
		J->ldy = ldy[i];
	}
	c->n_jobs = nw;

	/* chunks of rows, numbered across the jobs in order */
	const int64_t nth = herd_pool_size(c->pool);
	size_t xs = 0;
	c->n_chunks = 0;
	for (int i = 0; i < nw; i++) {
		struct mm_job *J = &c->jobs[i];
		int64_t rows = J->w->ne[1];
		int64_t cr = (rows + nth * CHUNKS_PER_THREAD - 1) / (nth * CHUNKS_PER_THREAD);
		cr = (cr + CHUNK_ROWS - 1) / CHUNK_ROWS * CHUNK_ROWS;
		J->chunk_rows = cr;
		J->chunk0 = c->n_chunks;
		c->n_chunks += (rows + cr - 1) / cr;
		if (J->x_stride > xs)
			xs = J->x_stride;
	}
	/* activation tiles: as few as fit X_TILE_BYTES, of equal size rounded up to 4 tokens */
	const int64_t tb = (int64_t)c->x_tile_bytes;
	int64_t nt = c->nt, ntiles = ((int64_t)xs * nt + tb - 1) / tb;
	if (ntiles < 1)
		ntiles = 1;
	c->x_tile = ((nt + ntiles - 1) / ntiles + 3) / 4 * 4;
}

/* Converts row r of c->src into every planned input that needs it. */
static void convert_row(struct herd_ctx *c, int64_t r)
{
	for (int k = 0; k < c->n_in; k++) {
		struct act *a = &c->in[k];
		if (a->convert)
			herd_type_ops(a->vdt)->from_float(c->src + r * c->src_n,
							  (char *)a->buf + (size_t)r * a->stride,
							  c->src_n);
	}
}

/* ---- phases: each is fn(ctx, ith, nth) on the pool ---- */

/* ggml's "normal" RoPE: rotates adjacent pairs (x[2i], x[2i+1]) of the first n_rot elements
 * of every head by theta = pos * freq_scale * base^(-2i/n_rot), theta built up by repeated
 * multiplication in float as ggml does, so that the angles round the same way. */
static void rope_table(const struct herd_model_info *I, int32_t pos, float *cs)
{
	const float theta_scale = powf(I->rope_freq_base, -2.0f / (float)I->n_rot);
	float theta = (float)pos;
	for (int32_t i = 0; i < I->n_rot / 2; i++) {
		float th = I->rope_freq_scale * theta;
		cs[2 * i] = cosf(th);
		cs[2 * i + 1] = sinf(th);
		theta *= theta_scale;
	}
}

static void rope_apply(float *v, const float *cs, int32_t n_rot)
{
	for (int32_t i = 0; i < n_rot / 2; i++) {
		float x0 = v[2 * i], x1 = v[2 * i + 1];
		v[2 * i] = x0 * cs[2 * i] - x1 * cs[2 * i + 1];
		v[2 * i + 1] = x0 * cs[2 * i + 1] + x1 * cs[2 * i];
	}
}

static void ph_embed(void *arg, int ith, int nth)
{
	struct herd_ctx *c = arg;
	const struct herd_tensor *e = c->m->tok_embd;
	int64_t E = c->m->info.n_embd, a, b;
	size_t rb = herd_type_row_bytes(e->type, E);
	split(c->nt, ith, nth, &a, &b);
	for (int64_t t = a; t < b; t++) {
		const void *row = (const char *)e->data + (size_t)c->tokens[t] * rb;
		if (e->packed)
			herd_x16_row_to_float(e->type, e->data, E, c->tokens[t], c->x + t * E);
		else if (e->type == HERD_TYPE_F32)
			memcpy(c->x + t * E, row, rb);
		else
			herd_type_ops(e->type)->to_float(row, c->x + t * E, E);
		rope_table(&c->m->info, c->pos0 + (int32_t)t, c->rope + t * c->m->info.n_rot);
	}
}

/* For token rows t in [row0, nt): x[t] += tmp[t] (when add_residual), then
 * xb[t - row0] = rmsnorm(x[t]) * norm_w, converted for the planned matrices. */
static void ph_norm(void *arg, int ith, int nth)
{
	struct herd_ctx *c = arg;
	int64_t E = c->m->info.n_embd, a, b;
	split(c->nt - c->row0, ith, nth, &a, &b);
	for (int64_t r = a; r < b; r++) {
		int64_t t = c->row0 + r;
		herd_rmsnorm(c->xb + r * E, c->x + t * E, c->add_residual ? c->tmp + t * E : NULL,
			     c->norm_w, E, c->m->info.norm_eps);
		convert_row(c, r);
	}
}

/* Converts rows [0, nt) of c->src (attention output before wo). */
static void ph_convert(void *arg, int ith, int nth)
{
	struct herd_ctx *c = arg;
	int64_t a, b;
	split(c->nt, ith, nth, &a, &b);
	for (int64_t r = a; r < b; r++)
		convert_row(c, r);
}

/* Chunk i of the planned matrices, over the tokens in tiles; prep: the thread's scratch. */
static void matmul_chunk(struct herd_ctx *c, int64_t i, struct herd_x16_prep *prep)
{
	const int64_t nt = c->nt, tile = c->x_tile;
	int j = c->n_jobs - 1;
	while (c->jobs[j].chunk0 > i)
		j--;
	const struct mm_job *J = &c->jobs[j];
	const int64_t n = J->w->ne[0], rows = J->w->ne[1];
	const int64_t r0 = (i - J->chunk0) * J->chunk_rows;
	const int64_t r1 = r0 + J->chunk_rows < rows ? r0 + J->chunk_rows : rows;
	const size_t ws = herd_type_row_bytes(J->w->type, n);
	for (int64_t t0 = 0; t0 < nt; t0 += tile) {
		const int64_t tn = nt - t0 < tile ? nt - t0 : tile;
		const void *x = (const char *)J->x + (size_t)t0 * J->x_stride;
		if (J->w->packed)
			herd_x16_matmul(J->w->type, J->w->data, n, x, J->x_stride, tn, r0, r1,
					J->y + t0 * J->ldy, J->ldy, prep);
		else
			herd_matmul(J->w->type, J->w->data, ws, x, J->x_stride, n, tn, r0, r1,
				    J->y + t0 * J->ldy, J->ldy);
	}
}

/* Takes the chunks of its own region in order, then helps in the others' until none is left.
 * The activations are new to this phase: what the thread's scratch kept of them goes. */
static void ph_matmul(void *arg, int ith, int nth)
{
	struct herd_ctx *c = arg;
	c->prep[ith].x = NULL;
	for (int k = 0; k < nth; k++) {
		struct region *R = &c->region[(ith + k) % nth];
		for (int64_t i;
		     (i = atomic_fetch_add_explicit(&R->next, 1, memory_order_relaxed)) < R->end;)
			matmul_chunk(c, i, &c->prep[ith]);
	}
}

static void ph_rope(void *arg, int ith, int nth)
{
	struct herd_ctx *c = arg;
	const struct herd_model *m = c->m;
	const struct herd_model_info *I = &m->info;
	int64_t a, b;
	split(c->nt, ith, nth, &a, &b);
	for (int64_t t = a; t < b; t++) {
		int32_t p = c->pos0 + (int32_t)t;
		const float *cs = c->rope + t * I->n_rot;
		float *q = c->q + t * I->n_embd;
		for (int32_t h = 0; h < I->n_head; h++)
			rope_apply(q + h * m->head_dim, cs, I->n_rot);
		float *k = c->k_cache +
			   ((size_t)c->layer * (size_t)c->n_ctx + (size_t)p) * (size_t)m->kv_dim;
		for (int32_t h = 0; h < I->n_head_kv; h++)
			rope_apply(k + h * m->head_dim, cs, I->n_rot);
	}
}

/* Causal grouped-query attention, one (token, KV head) pair at a time — the query heads
 * sharing that KV head together, so that its cached rows are read once for all of them —
 * taken from a shared counter latest token first (the longest rows first, so that the threads
 * finish together). */
static void ph_attention(void *arg, int ith, int nth)
{
	struct herd_ctx *c = arg;
	(void)nth;
	const struct herd_model *m = c->m;
	const int32_t KV = m->info.n_head_kv, hd = m->head_dim, kvd = m->kv_dim,
		      group = m->info.n_head / KV;
	const float scale = 1.0f / sqrtf((float)hd);
	const size_t layer_off = (size_t)c->layer * (size_t)c->n_ctx * (size_t)kvd;
	float *sc = c->scores + (size_t)ith * (size_t)group * (size_t)c->n_ctx;
	const int64_t total = (int64_t)c->nt * KV;
	for (;;) {
		int64_t i = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
		if (i >= total)
			return;
		int64_t w = total - 1 - i, t = w / KV;
		int32_t kvh = (int32_t)(w % KV);
		int32_t p = c->pos0 + (int32_t)t; /* attends to positions 0..p */
		const size_t qo =
		    (size_t)t * (size_t)m->info.n_embd + (size_t)kvh * (size_t)group * (size_t)hd;
		herd_attend(c->q + qo, group, c->k_cache + layer_off + (size_t)kvh * (size_t)hd,
			    c->v_cache + layer_off + (size_t)kvh * (size_t)hd, (size_t)kvd, p + 1,
			    hd, scale, sc, c->att + qo);
	}
}

/* hb = silu(hb) * hb2, then converted for ffn_down. */
static void ph_swiglu(void *arg, int ith, int nth)
{
	struct herd_ctx *c = arg;
	int64_t F = c->m->info.n_ff, a, b;
	split(c->nt, ith, nth, &a, &b);
	for (int64_t t = a; t < b; t++) {
		float *g = c->hb + t * F;
		const float *u = c->hb2 + t * F;
		herd_silu_mul(g, u, F);
		convert_row(c, t);
	}
}

/* ---- one batch of at most n_batch tokens at position c->pos ---- */

/* How many threads a phase of this much work (about one multiply-add or element per unit)
 * keeps busy. */
static int threads_for(const struct herd_ctx *c, double work)
{
	const double nth = c->min_work > 0 ? work / c->min_work : HERD_MAX_THREADS;
	const int n = herd_pool_size(c->pool);
	return nth < 1 ? 1 : nth >= n ? n : (int)nth;
}

/* Runs one phase on the threads its work keeps busy. */
static void run(struct herd_ctx *c, void (*fn)(void *, int, int), double work)
{
	atomic_store_explicit(&c->next, 0, memory_order_relaxed); /* published by the run */
	herd_pool_run_n(c->pool, threads_for(c, work), fn, c);
}

/* Runs the matrix products planned last: their work is rows x row length x tokens, and each
 * thread's region is an equal run of their chunks. */
static void run_matmul(struct herd_ctx *c)
{
	double work = 0;
	for (int j = 0; j < c->n_jobs; j++)
		work += (double)c->jobs[j].w->ne[0] * (double)c->jobs[j].w->ne[1];
	const int nth = threads_for(c, work * c->nt);
	for (int t = 0; t < nth; t++) { /* published by the run */
		atomic_store_explicit(&c->region[t].next, c->n_chunks * t / nth,
				      memory_order_relaxed);
		c->region[t].end = c->n_chunks * (t + 1) / nth;
	}
	herd_pool_run_n(c->pool, nth, ph_matmul, c);
}

/* Evaluates tokens[0..nt) at c->pos; writes logits of rows [row0, nt) to out (n_vocab apart),
 * or none when out is NULL. */
static void forward_batch(struct herd_ctx *c, const int32_t *tokens, int32_t nt, int32_t row0,
			  float *out)
{
	const struct herd_model *m = c->m;
	const struct herd_model_info *I = &m->info;
	const int64_t E = I->n_embd, F = I->n_ff, KV = m->kv_dim;
	c->tokens = tokens;
	c->nt = nt;
	c->pos0 = c->pos;
	/* per-phase work estimates */
	const double n_rows = nt, embed_work = n_rows * (double)(E + 40 * I->n_rot),
		     norm_work = n_rows * (double)E * 4,
		     rope_work = n_rows * (double)(I->n_head + I->n_head_kv) * (double)I->n_rot,
		     att_work = (double)I->n_head * (double)m->head_dim * 2 *
				(n_rows * (c->pos0 + 1) + n_rows * (n_rows - 1) / 2),
		     convert_work = n_rows * (double)E * 2, swiglu_work = n_rows * (double)F * 10;
	run(c, ph_embed, embed_work);
	for (int32_t l = 0; l < I->n_layer; l++) {
		const struct herd_layer *L = &m->layers[l];
		size_t cache_row = ((size_t)l * (size_t)c->n_ctx + (size_t)c->pos) * (size_t)KV;
		c->layer = l;

		const struct herd_tensor *qkv[3] = {L->wq, L->wk, L->wv};
		float *qkv_y[3] = {c->q, c->k_cache + cache_row, c->v_cache + cache_row};
		int64_t qkv_ld[3] = {E, KV, KV};
		plan(c, qkv, qkv_y, qkv_ld, 3, c->xb, E);
		c->norm_w = L->attn_norm;
		c->add_residual = l > 0;
		c->row0 = 0;
		run(c, ph_norm, norm_work);
		run_matmul(c);
		run(c, ph_rope, rope_work);
		run(c, ph_attention, att_work);

		float *o_y[1] = {c->tmp};
		int64_t o_ld[1] = {E};
		plan(c, &L->wo, o_y, o_ld, 1, c->att, E);
		if (c->in[0].convert)
			run(c, ph_convert, convert_work);
		run_matmul(c);

		const struct herd_tensor *gu[2] = {L->gate, L->up};
		float *gu_y[2] = {c->hb, c->hb2};
		int64_t gu_ld[2] = {F, F};
		plan(c, gu, gu_y, gu_ld, 2, c->xb, E);
		c->norm_w = L->ffn_norm;
		c->add_residual = true;
		run(c, ph_norm, norm_work);
		run_matmul(c);

		float *d_y[1] = {c->tmp};
		int64_t d_ld[1] = {E};
		plan(c, &L->down, d_y, d_ld, 1, c->hb, F);
		run(c, ph_swiglu, swiglu_work);
		run_matmul(c);
	}
	c->pos += nt;
	if (!out)
		return;
	/* final residual, norm and logits for rows [row0, nt) only; the matmul runs over the
	 * nt - row0 rows that were normed */
	c->nt = nt - row0;
	float *y[1] = {out};
	int64_t ld[1] = {I->n_vocab};
	plan(c, &m->output, y, ld, 1, c->xb, E);
	c->nt = nt;
	c->norm_w = m->output_norm;
	c->add_residual = true;
	c->row0 = row0;
	run(c, ph_norm, (nt - row0) * (double)E * 4);
	c->nt = nt - row0;
	run_matmul(c);
	c->nt = nt;
}

/* ---- the public face ---- */

enum herd_err herd_ctx_new(const struct herd_model *m, const struct herd_ctx_params *p,
			   struct herd_ctx **out)
{
	*out = NULL;
	const struct herd_model_info *I = &m->info;
	int32_t n_ctx = p->n_ctx;
	if (n_ctx == 0)
		n_ctx = I->n_ctx_train < 4096 ? I->n_ctx_train : 4096;
	if (n_ctx < 1 || n_ctx > HERD_MAX_CONTEXT)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "n_ctx: must be 1..%d (0 = the model's, at most 4096), got %d",
				 HERD_MAX_CONTEXT, p->n_ctx);
	int32_t n_threads = p->n_threads;
	if (n_threads == 0) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		n_threads = cores < 1		       ? 1
			    : cores > HERD_MAX_THREADS ? HERD_MAX_THREADS
						       : (int32_t)cores;
	}
	if (n_threads < 1 || n_threads > HERD_MAX_THREADS)
		return herd_fail(HERD_ERR_BAD_INPUT,
				 "n_threads: must be 1..%d (0 = all cores), got %d",
				 HERD_MAX_THREADS, p->n_threads);
	if (p->n_batch < 1 || p->n_batch > HERD_MAX_BATCH)
		return herd_fail(HERD_ERR_BAD_INPUT, "n_batch: must be 1..%d, got %d",
				 HERD_MAX_BATCH, p->n_batch);
	int32_t n_batch = p->n_batch < n_ctx ? p->n_batch : n_ctx;

	/* aligned: the chunk counter has a cache line of its own */
	struct herd_ctx *c = aligned_alloc(64, (sizeof *c + 63) / 64 * 64);
	HERD_ASSERT(c);
	memset(c, 0, sizeof *c);
	c->m = m;
	c->min_work = MIN_WORK_PER_THREAD;
	c->x_tile_bytes = X_TILE_BYTES;
	c->n_ctx = n_ctx;
	c->n_batch = n_batch;
	c->pool = herd_pool_new(n_threads);
	if (!c->pool) {
		free(c);
		return HERD_ERR_BAD_INPUT;
	}
	c->region = aligned_alloc(64, (size_t)n_threads * sizeof *c->region);
	HERD_ASSERT(c->region);
	c->prep = herd_xcalloc((size_t)n_threads, sizeof *c->prep);
	const size_t E = (size_t)I->n_embd, F = (size_t)I->n_ff, B = (size_t)n_batch;
	size_t kv = (size_t)I->n_layer * (size_t)n_ctx * (size_t)m->kv_dim;
	c->k_cache = herd_xcalloc(kv, sizeof(float));
	c->v_cache = herd_xcalloc(kv, sizeof(float));
	c->x = herd_xmalloc(B * E * sizeof(float));
	c->xb = herd_xmalloc(B * E * sizeof(float));
	c->q = herd_xmalloc(B * E * sizeof(float));
	c->att = herd_xmalloc(B * E * sizeof(float));
	c->tmp = herd_xmalloc(B * E * sizeof(float));
	c->hb = herd_xmalloc(B * F * sizeof(float));
	c->hb2 = herd_xmalloc(B * F * sizeof(float));
	/* the widest converted row over every matrix input */
	size_t rb = 0;
	for (int32_t l = -1; l < I->n_layer; l++) {
		const struct herd_layer *L = l >= 0 ? &m->layers[l] : NULL;
		const struct herd_tensor *ws[7] = {m->output};
		int nw = 1;
		if (L) {
			const struct herd_tensor *lw[7] = {L->wq,   L->wk, L->wv,  L->wo,
							   L->gate, L->up, L->down};
			memcpy(ws, lw, sizeof lw);
			nw = 7;
		}
		for (int i = 0; i < nw; i++) {
			enum herd_type v = herd_type_ops(ws[i]->type)->vec_dot_type;
			size_t r = herd_type_row_bytes(v, ws[i]->ne[0]);
			if (r > rb)
				rb = r;
		}
	}
	c->xq_row_bytes = rb;
	for (int k = 0; k < MAX_JOBS; k++)
		c->xq[k] = herd_xmalloc(B * rb);
	int nth = herd_pool_size(c->pool);
	c->scores = herd_xmalloc((size_t)nth * (size_t)(I->n_head / I->n_head_kv) * (size_t)n_ctx *
				 sizeof(float));
	c->rope = herd_xmalloc(B * (size_t)I->n_rot * sizeof(float));
	c->logits_cap = 1;
	c->logits = herd_xmalloc((size_t)I->n_vocab * sizeof(float));
	*out = c;
	return HERD_OK;
}

void herd_ctx_free(struct herd_ctx *c)
{
	if (!c)
		return;
	herd_pool_free(c->pool);
	free(c->region);
	free(c->prep);
	free(c->k_cache);
	free(c->v_cache);
	free(c->x);
	free(c->xb);
	free(c->q);
	free(c->att);
	free(c->tmp);
	free(c->hb);
	free(c->hb2);
	for (int k = 0; k < MAX_JOBS; k++)
		free(c->xq[k]);
	free(c->scores);
	free(c->rope);
	free(c->logits);
	free(c);
}

void herd_ctx_tune(struct herd_ctx *c, double min_work_per_thread, size_t x_tile_bytes)
{
	c->min_work = min_work_per_thread;
	c->x_tile_bytes = x_tile_bytes ? x_tile_bytes : X_TILE_BYTES;
}

void herd_ctx_reset(struct herd_ctx *c)
{
	c->pos = 0;
	c->n_logits = 0;
}

const struct herd_model *herd_ctx_model(const struct herd_ctx *c)
{
	return c->m;
}

int32_t herd_ctx_pos(const struct herd_ctx *c)
{
	return c->pos;
}

int32_t herd_ctx_n_ctx(const struct herd_ctx *c)
{
	return c->n_ctx;
}

enum herd_err herd_ctx_eval(struct herd_ctx *c, const int32_t *tokens, int32_t n, bool all_logits)
{
	const int32_t V = c->m->info.n_vocab;
	if (n < 1)
		return herd_fail(HERD_ERR_BAD_INPUT, "tokens: need at least one, got %d", n);
	if (n > c->n_ctx - c->pos)
		return herd_fail(HERD_ERR_LIMIT,
				 "context: %d tokens at position %d exceed n_ctx %d", n, c->pos,
				 c->n_ctx);
	for (int32_t i = 0; i < n; i++)
		if (tokens[i] < 0 || tokens[i] >= V)
			return herd_fail(HERD_ERR_BAD_INPUT,
					 "tokens[%d]: id %d is out of range 0..%d", i, tokens[i],
					 V - 1);
	if (all_logits && n > c->logits_cap) {
		/* grows once to the largest all-logits call; not per token */
		free(c->logits);
		c->logits = herd_xmalloc((size_t)n * (size_t)V * sizeof(float));
		c->logits_cap = n;
	}
	for (int32_t i = 0; i < n; i += c->n_batch) {
		int32_t nb = n - i < c->n_batch ? n - i : c->n_batch;
		bool last = i + nb == n;
		if (all_logits)
			forward_batch(c, tokens + i, nb, 0, c->logits + (size_t)i * (size_t)V);
		else
			forward_batch(c, tokens + i, nb, nb - 1, last ? c->logits : NULL);
	}
	c->n_logits = n;
	c->all_logits = all_logits;
	return HERD_OK;
}

const float *herd_ctx_logits(const struct herd_ctx *c, int32_t i)
{
	if (i < 0 || i >= c->n_logits)
		return NULL;
	if (c->all_logits)
		return c->logits + (size_t)i * (size_t)c->m->info.n_vocab;
	return i == c->n_logits - 1 ? c->logits : NULL;
}
