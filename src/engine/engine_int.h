/* engine_int — what the files of the engine share and nobody else needs: kernels per tensor
 * type, the matrix product, the thread pool. */
#ifndef HERD_ENGINE_INT_H
#define HERD_ENGINE_INT_H

#include "engine.h"

/* ---- kernels per tensor type (quant.c; SIMD versions chosen at run time) ---- */
struct herd_type_ops {
	/* n elements (a multiple of the block size) of this type to floats */
	void (*to_float)(const void *src, float *dst, int64_t n);
	/* floats to n elements of this type (reference quantizer; also used for activations) */
	void (*from_float)(const float *src, void *dst, int64_t n);
	/* the type activations are converted to before a dot product with this type */
	enum herd_type vec_dot_type;
	/* dot of n elements: w of this type, x of vec_dot_type */
	float (*vec_dot)(int64_t n, const void *w, const void *x);
};
/* Fastest kernels this CPU supports, or the portable reference ones; NULL if unsupported. */
const struct herd_type_ops *herd_type_ops(enum herd_type t);
const struct herd_type_ops *herd_type_ops_ref(enum herd_type t);

/* y[t*ldy + r] = dot(row r of W, row t of X) for r in [r0, r1), t in [0, nt).
 * W: rows of n elements of type wtype, w_stride bytes apart. X: nt rows of n elements already
 * converted to herd_type_ops(wtype)->vec_dot_type, x_stride bytes apart. */
void herd_matmul(enum herd_type wtype, const void *w, size_t w_stride, const void *x,
		 size_t x_stride, int64_t n, int64_t nt, int64_t r0, int64_t r1, float *y,
		 int64_t ldy);

/* n_q query heads that share one key/value head (head h: q + h*hd, hd floats) attend to
 * positions 0..n_pos-1 of a key and a value cache (row j of each at k + j*kv_stride,
 * v + j*kv_stride): out + h*hd = softmax(q_h·k_j · scale) · v_j. sc: n_q * n_pos floats of
 * scratch (left holding head h's softmax weights at sc + h*n_pos). attention.c; the _ref
 * version, one head, is the plain one the SIMD one is tested against. */
void herd_attend(const float *q, int32_t n_q, const float *k, const float *v, size_t kv_stride,
		 int32_t n_pos, int32_t hd, float scale, float *sc, float *out);
void herd_attend_head_ref(const float *q, const float *k, const float *v, size_t kv_stride,
			  int32_t n_pos, int32_t hd, float scale, float *sc, float *out);

/* g[i] = silu(g[i]) * u[i], silu(x) = x / (1 + e^-x), for i < n (activation.c). */
void herd_silu_mul(float *g, const float *u, int64_t n);

/* RMSNorm of a row of n (activation.c): x += d first when d is not NULL, then
 * out = x / sqrt(mean(x^2) + eps) * w, rounded as ggml rounds it: float squares summed in
 * double, a float mean, x * scale, then * w. The normed rows are what gets rounded to 8-bit
 * blocks next, so matching llama.cpp bit for bit here keeps quantized models on the same
 * rounding decisions. The squares are summed in 8 interleaved double chains, not one: one
 * chain waited on each add (some 3 µs a norm on tinyllama's 2048); the double sums of float
 * squares then differ from ggml's in the last bits at most, which the float mean rounds away.
 * The same bits with and without SIMD. */
void herd_rmsnorm(float *out, float *x, const float *d, const float *w, int64_t n, float eps);

/* How far ahead the generation kernels prefetch each stream of weights (quant_x16.h), and so
 * how `herd bench --membw` reads: into L1 (the hardware's prefetchers alone left one thread
 * some 10-20% slower; with 4 groups in flight, 1-4 KB ahead were alike within the noise, 16 KB
 * slower), and into L2, where the L1 prefetch then finds its lines while the kernel's
 * arithmetic runs (1 GB of AVX2 Q4_0: ~5% faster with one thread or two; 24-64 KB alike,
 * 16 KB less, into L1 slower). */
#define HERD_PREFETCH_L1_BYTES 2048
#define HERD_PREFETCH_L2_BYTES 32768

/* Tuning of a context (forward.c), for tests and benchmarks: the work (about one multiply-add
 * per unit) a thread must get before a phase wakes it (0 = every phase on every thread), and
 * the bytes of converted activations per tile in prompt processing (0 = the default). */
void herd_ctx_tune(struct herd_ctx *c, double min_work_per_thread, size_t x_tile_bytes);

/* fp16 / bf16 conversions (quant.c) */
float herd_fp16_to_fp32(uint16_t h);
uint16_t herd_fp32_to_fp16(float f);
float herd_bf16_to_fp32(uint16_t h);
uint16_t herd_fp32_to_bf16(float f);

/* ---- thread pool (threadpool.c): persistent workers, work split by ith/nth ---- */
struct herd_pool;
struct herd_pool *herd_pool_new(int n_threads);
void herd_pool_free(struct herd_pool *p);
int herd_pool_size(const struct herd_pool *p);
/* Runs fn(arg, ith, nth) on every thread (the caller is thread 0) and returns when all are done. */
void herd_pool_run(struct herd_pool *p, void (*fn)(void *arg, int ith, int nth), void *arg);
/* The same on threads 0..nth-1 only (nth clamped to 1..size): for work too small to be worth
 * waking every thread. nth <= 1 calls fn(arg, 0, 1) on the caller and touches no other thread. */
void herd_pool_run_n(struct herd_pool *p, int nth, void (*fn)(void *arg, int ith, int nth),
		     void *arg);

#endif
