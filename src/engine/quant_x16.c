/* quant_x16 — Q8_0 and Q4_0 weight matrices rewritten 16 rows interleaved, and their matrix
 * product with AVX-512 VNNI. Only this file is compiled for those extensions; the model packs a
 * matrix (and forward.c calls in) only after herd_avx512_enabled() has checked the CPU.
 *
 * The one thing to know: in a file, a row's blocks lie back to back, so a kernel must sum each
 * block's 32 products across a register and then scale it alone — per 32 weights a dozen
 * instructions, which kept generation far below the memory's speed. Here 16 rows are one group
 * and each 512-bit register holds the same 4 elements of the 16 rows, one row per int32 lane:
 * VPDPBUSD against those 4 activation bytes broadcast adds 16 rows' partial dot products at once,
 * and the 16 rows' block scales (stored together) convert as one vector. Per 16 rows x 32
 * elements that is 8 products, one conversion and one FMA; no horizontal sums at all.
 *
 * A group of 16 rows and nb blocks per row is laid out as
 *   q[nb][K][16][4] bytes   (K = 8 for Q8_0: element bytes; K = 4 for Q4_0: packed bytes)
 *   d[nb][16]        fp16    (the blocks' scales), padded to 64 bytes so that groups stay
 *                            aligned: the file's size, plus 32 bytes a group when nb is odd
 * where q[i][k][r] holds row r's bytes 4k..4k+3 of block i. Q4_0's byte j holds element j in its
 * low nibble and element j + 16 in its high one (as in the file), so register k gives elements
 * 4k..4k+3 through "& 0x0F" and 16+4k.. through "& 0xF0" (16 times the nibble: that block sum is
 * shifted back once, cheaper than shifting every byte). VPDPBUSD multiplies unsigned by signed
 * bytes: Q8_0 weights are stored as w ^ 0x80 = w + 128 (Q4_0 nibbles u = w + 8 already are
 * unsigned), and the sum starts at -offset * sum(x) so that it ends as sum(w x).
 *
 * Every token goes through the same instructions in the same order, one token or many, so a
 * prompt's logits are bit-identical to generating its tokens one by one. */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "quant_simd.h"

#define G 16 /* rows per group: the int32 lanes of a 512-bit register */
#define TT 4 /* tokens per pass over a group's blocks (prompt processing) */
/* Software prefetch this many bytes ahead in each group's weights (the hardware's prefetchers
 * alone left one thread some 10-20% slower here; with 4 groups in flight, 1-4 KB ahead were
 * alike within the noise, 16 KB slower; the scales' stream is left to the hardware). */
#define PREFETCH 2048

bool herd_avx512_enabled(void)
{
	static int enabled = -1; /* a benign race: every thread computes the same answer */
	if (enabled < 0) {
		const char *e = getenv("HERD_NO_AVX512");
		enabled = !(e && *e && strcmp(e, "0") != 0) && herd_simd_enabled() &&
			  __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
			  __builtin_cpu_supports("avx512vl") &&
			  __builtin_cpu_supports("avx512vnni");
	}
	return enabled;
}

/* Bytes of one block's q part for a group: 16 rows x 32 elements. */
INLINE size_t group_block_q(enum herd_type t)
{
	return t == HERD_TYPE_Q8_0 ? G * QK : G * QK / 2;
}

/* Bytes of one group: its q part, then its scales padded to 64 bytes. */
static size_t group_bytes(enum herd_type t, int64_t nb)
{
	return (size_t)nb * group_block_q(t) + ((size_t)nb * G * sizeof(herd_half) + 63) / 64 * 64;
}

size_t herd_x16_bytes(enum herd_type t, int64_t n, int64_t rows)
{
	return (size_t)(rows / G) * group_bytes(t, n / QK);
}

bool herd_x16_packable(enum herd_type t, int64_t n, int64_t rows)
{
	return (t == HERD_TYPE_Q8_0 || t == HERD_TYPE_Q4_0) && n > 0 && n % QK == 0 &&
	       n / QK <= HERD_X16_MAX_BLOCKS && rows > 0 && rows % G == 0 && herd_avx512_enabled();
}

void herd_x16_pack(enum herd_type t, const void *src, int64_t n, int64_t rows, void *dst)
{
	/* both block types are {fp16 d; bytes qs[]}: d at offset 0, qs right after it */
	const int64_t nb = n / QK;
	const size_t qb = group_block_q(t), bb = sizeof(herd_half) + qb / G;
	const size_t row_bytes = (size_t)nb * bb, gb = group_bytes(t, nb);
	const uint32_t flip = t == HERD_TYPE_Q8_0 ? 0x80808080u : 0; /* Q8_0: w + 128 */
	for (int64_t g = 0; g < rows / G; g++) {
		uint8_t *q = (uint8_t *)dst + (size_t)g * gb;
		herd_half *d = (herd_half *)(q + (size_t)nb * qb);
		for (int r = 0; r < G; r++) {
			const uint8_t *row = (const uint8_t *)src + (size_t)(g * G + r) * row_bytes;
			for (int64_t i = 0; i < nb; i++) {
				const uint8_t *b = row + (size_t)i * bb;
				memcpy(&d[i * G + r], b, sizeof(herd_half));
				for (size_t k = 0; k < qb / (G * 4); k++) {
					uint32_t v;
					memcpy(&v, b + sizeof(herd_half) + 4 * k, 4);
					v ^= flip;
					memcpy(q + (size_t)i * qb + (k * G + (size_t)r) * 4, &v, 4);
				}
			}
		}
	}
}

void herd_x16_row_to_float(enum herd_type t, const void *w, int64_t n, int64_t row, float *dst)
{
	const int64_t nb = n / QK, g = row / G;
	const int r = (int)(row % G);
	const size_t qb = group_block_q(t);
	const uint8_t *q = (const uint8_t *)w + (size_t)g * group_bytes(t, nb);
	const herd_half *d = (const herd_half *)(q + (size_t)nb * qb);
	for (int64_t i = 0; i < nb; i++) {
		const float s = herd_fp16_to_fp32(d[i * G + r]);
		float *o = dst + i * QK;
		for (int k = 0; k < (int)(qb / (G * 4)); k++)
			for (int j = 0; j < 4; j++) {
				uint8_t v = q[(size_t)i * qb + (size_t)(k * G + r) * 4 + (size_t)j];
				if (t == HERD_TYPE_Q8_0) {
					o[4 * k + j] = s * (float)((int)v - 128);
				} else {
					o[4 * k + j] = s * (float)((v & 0xF) - 8);
					o[16 + 4 * k + j] = s * (float)((v >> 4) - 8);
				}
			}
	}
}

/* What every group needs of a token's block i: where the integer sum starts, and d_x. */
struct xblock {
	int32_t start[HERD_X16_MAX_BLOCKS];
	float d[HERD_X16_MAX_BLOCKS];
};

static void prepare(const struct block_q8_0 *x, int64_t nb, int off, struct xblock *o)
{
	const __m256i offv = _mm256_set1_epi8((char)off);
	for (int64_t i = 0; i < nb; i++) {
		__m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), offv,
						_mm256_loadu_si256((const __m256i *)x[i].qs));
		__m128i h =
		    _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
		h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
		h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
		o->start[i] = -_mm_cvtsi128_si32(h);
		o->d[i] = h2f(x[i].d);
	}
}

INLINE __m512i bcast4(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return _mm512_set1_epi32(v);
}

/* Register pair k (0..3) of block i of a group, as unsigned weights: Q8_0's are two stored
 * registers (elements 8k.. and 8k+4..); Q4_0's one register's low nibbles (elements 4k..) and
 * its high ones, masked but not shifted (16 x the nibble, elements 16+4k..: their sum is
 * shifted back once per block instead). elems[2k], elems[2k+1]: those first elements. */
INLINE void pair_q8_0(const uint8_t *q, int k, __m512i *a, __m512i *b)
{
	*a = _mm512_load_si512(q + 128 * k);
	*b = _mm512_load_si512(q + 128 * k + 64);
}

INLINE void pair_q4_0(const uint8_t *q, int k, __m512i *a, __m512i *b)
{
	const __m512i lo = _mm512_set1_epi8(0x0F), v = _mm512_load_si512(q + 64 * k);
	*a = _mm512_and_si512(v, lo);
	*b = _mm512_andnot_si512(lo, v);
}

static const int q8_0_elems[8] = {0, 4, 8, 12, 16, 20, 24, 28};
static const int q4_0_elems[8] = {0, 16, 4, 20, 8, 24, 12, 28};

INLINE void prefetch_block(const uint8_t *q, size_t qb)
{
	for (size_t k = 0; k < qb; k += 64)
		_mm_prefetch((const char *)q + PREFETCH + k, _MM_HINT_T0);
}

/* How every kernel ends a block: the two integer chains (s1 shifted back for Q4_0) to float,
 * times d_w x d_x, into acc. One definition, so that all kernels give the same bits. */
INLINE __m512 finish(__m512 acc, __m512i s0, __m512i s1, int shift, __m512 dw, float dx)
{
	if (shift)
		s1 = _mm512_srai_epi32(s1, shift);
	return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)),
			       _mm512_mul_ps(dw, _mm512_set1_ps(dx)), acc);
}

INLINE __m512 scales(const uint8_t *q, int64_t nb, size_t qb, int64_t i)
{
	return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(q + (size_t)nb * qb) + i));
}

/* Generation: NG groups (gb bytes apart) against one token, y[0 .. 16 NG). The activation
 * bytes are broadcast once for all NG groups, and NG streams of weights are in flight at once:
 * 4 groups ran 1 GB of Q8_0 at 26-31 GB/s on one thread here, 1 group at 21-24. */
#define DEF_ROWS(name, T, SHIFT, NG)                                                               \
	static void rows_##name##_##NG(const uint8_t *q, size_t gb, int64_t nb,                    \
				       const struct block_q8_0 *x, const struct xblock *xb,        \
				       float *y)                                                   \
	{                                                                                          \
		const size_t qb = group_block_q(T);                                                \
		__m512 acc[NG];                                                                    \
		_Pragma("GCC unroll 4") for (int g = 0; g < NG; g++) acc[g] = _mm512_setzero_ps(); \
		for (int64_t i = 0; i < nb; i++) {                                                 \
			const int8_t *qs = x[i].qs;                                                \
			__m512i s0[NG], s1[NG];                                                    \
			_Pragma("GCC unroll 4") for (int g = 0; g < NG; g++)                       \
			{                                                                          \
				prefetch_block(q + g * gb + (size_t)i * qb, qb);                   \
				s0[g] = _mm512_set1_epi32(xb->start[i]);                           \
				s1[g] = _mm512_setzero_si512();                                    \
			}                                                                          \
			_Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)                        \
			{                                                                          \
				const __m512i b0 = bcast4(qs + name##_elems[2 * k]),               \
					      b1 = bcast4(qs + name##_elems[2 * k + 1]);           \
				_Pragma("GCC unroll 4") for (int g = 0; g < NG; g++)               \
				{                                                                  \
					__m512i a, b;                                              \
					pair_##name(q + g * gb + (size_t)i * qb, k, &a, &b);       \
					s0[g] = _mm512_dpbusd_epi32(s0[g], a, b0);                 \
					s1[g] = _mm512_dpbusd_epi32(s1[g], b, b1);                 \
				}                                                                  \
			}                                                                          \
			_Pragma("GCC unroll 4") for (int g = 0; g < NG; g++) acc[g] = finish(      \
			    acc[g], s0[g], s1[g], SHIFT, scales(q + g * gb, nb, qb, i), xb->d[i]); \
		}                                                                                  \
		_Pragma("GCC unroll 4") for (int g = 0; g < NG; g++)                               \
		    _mm512_storeu_ps(y + G * g, acc[g]);                                           \
	}

/* Prompts: one group against NT tokens, y[t][0..15]: the group's block is loaded once for
 * all NT tokens. One function per NT, so that the accumulators stay in registers. */
#define DEF_TOKENS(name, T, SHIFT, NT)                                                             \
	static void tokens_##name##_##NT(const uint8_t *q, int64_t nb,                             \
					 const struct block_q8_0 *const *x,                        \
					 const struct xblock *xb, float *const *y)                 \
	{                                                                                          \
		const size_t qb = group_block_q(T);                                                \
		__m512 acc[NT];                                                                    \
		_Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps(); \
		for (int64_t i = 0; i < nb; i++) {                                                 \
			const uint8_t *qi = q + (size_t)i * qb;                                    \
			prefetch_block(qi, qb);                                                    \
			__m512i u[8];                                                              \
			_Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)                        \
			    pair_##name(qi, k, &u[2 * k], &u[2 * k + 1]);                          \
			const __m512 dw = scales(q, nb, qb, i);                                    \
			_Pragma("GCC unroll 4") for (int t = 0; t < NT; t++)                       \
			{                                                                          \
				const int8_t *qs = x[t][i].qs;                                     \
				__m512i s0 = _mm512_set1_epi32(xb[t].start[i]),                    \
					s1 = _mm512_setzero_si512();                               \
				_Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)                \
				{                                                                  \
					s0 = _mm512_dpbusd_epi32(                                  \
					    s0, u[2 * k], bcast4(qs + name##_elems[2 * k]));       \
					s1 = _mm512_dpbusd_epi32(                                  \
					    s1, u[2 * k + 1],                                      \
					    bcast4(qs + name##_elems[2 * k + 1]));                 \
				}                                                                  \
				acc[t] = finish(acc[t], s0, s1, SHIFT, dw, xb[t].d[i]);            \
			}                                                                          \
		}                                                                                  \
		_Pragma("GCC unroll 4") for (int t = 0; t < NT; t++)                               \
		    _mm512_storeu_ps(y[t], acc[t]);                                                \
	}

#define DEF_KERNELS(name, T, SHIFT)                                                                \
	DEF_ROWS(name, T, SHIFT, 1)                                                                \
	DEF_ROWS(name, T, SHIFT, 4)                                                                \
	DEF_TOKENS(name, T, SHIFT, 2)                                                              \
	DEF_TOKENS(name, T, SHIFT, 3)                                                              \
	DEF_TOKENS(name, T, SHIFT, 4)                                                              \
	static const struct kernels kernels_##name = {                                             \
	    rows_##name##_1,                                                                       \
	    rows_##name##_4,                                                                       \
	    {NULL, NULL, tokens_##name##_2, tokens_##name##_3, tokens_##name##_4}};

struct kernels {
	void (*rows1)(const uint8_t *, size_t, int64_t, const struct block_q8_0 *,
		      const struct xblock *, float *);
	void (*rows4)(const uint8_t *, size_t, int64_t, const struct block_q8_0 *,
		      const struct xblock *, float *);
	void (*tokens[TT + 1])(const uint8_t *, int64_t, const struct block_q8_0 *const *,
			       const struct xblock *, float *const *);
};

DEF_KERNELS(q8_0, HERD_TYPE_Q8_0, 0)
DEF_KERNELS(q4_0, HERD_TYPE_Q4_0, 4)

void herd_x16_matmul(enum herd_type t, const void *w, int64_t n, const void *x, size_t x_stride,
		     int64_t nt, int64_t r0, int64_t r1, float *y, int64_t ldy)
{
	HERD_ASSERT(r0 % G == 0 && r1 % G == 0 && n % QK == 0 && n / QK <= HERD_X16_MAX_BLOCKS);
	const int64_t nb = n / QK;
	const size_t gb = group_bytes(t, nb);
	const struct kernels *K = t == HERD_TYPE_Q8_0 ? &kernels_q8_0 : &kernels_q4_0;
	const uint8_t *q0 = w;
	struct xblock xb[TT];
	for (int64_t t0 = 0; t0 < nt; t0 += TT) {
		const int tn = (int)(nt - t0 < TT ? nt - t0 : TT);
		const struct block_q8_0 *xt[TT];
		for (int k = 0; k < tn; k++) {
			xt[k] = (const struct block_q8_0 *)((const char *)x +
							    (size_t)(t0 + k) * x_stride);
			prepare(xt[k], nb, t == HERD_TYPE_Q8_0 ? 0x80 : 8, &xb[k]);
		}
		if (tn == 1) {
			int64_t r = r0;
			for (; r + 4 * G <= r1; r += 4 * G)
				K->rows4(q0 + (size_t)(r / G) * gb, gb, nb, xt[0], &xb[0],
					 y + t0 * ldy + r);
			for (; r < r1; r += G)
				K->rows1(q0 + (size_t)(r / G) * gb, gb, nb, xt[0], &xb[0],
					 y + t0 * ldy + r);
			continue;
		}
		for (int64_t r = r0; r < r1; r += G) {
			float *yt[TT];
			for (int k = 0; k < tn; k++)
				yt[k] = y + (t0 + k) * ldy + r;
			K->tokens[tn](q0 + (size_t)(r / G) * gb, nb, xt, xb, yt);
		}
	}
}
