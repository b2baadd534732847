/* quant_avx2 — AVX2 + FMA + F16C kernels. This file alone is compiled for those extensions
 * (the pragma below); quant.c calls in only after herd_simd_enabled() has checked the CPU, so
 * the rest of the build stays portable. The reference kernels in quant.c are the oracle.
 *
 * The one thing to know: herd_avx2_matmul works on tiles of RT weight rows x CT tokens, so
 * that each weight block, unpacked once into registers, is used for CT tokens (prompt
 * processing), and each activation block for RT rows. With one token it is a plain streaming
 * matrix-vector product. Integer dot products use _mm256_maddubs_epi16 (unsigned x signed
 * bytes), so signed weights are multiplied as |w| x (x with w's sign). */
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#include <pthread.h>
#include <string.h>

#include "quant_simd.h"

INLINE float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* Prefetching: a tile reading block i of rows r..r+RT-1 prefetches block i of the RT rows
 * after them, the next tile's rows. Rows lie back to back, so this runs a whole tile (some
 * 5-9 KB) ahead of the reads along one linear stream — far enough to cover DRAM latency; the
 * hardware prefetcher alone, or a few hundred bytes ahead within a row, left the
 * matrix-vector product at 10 GB/s per thread here, this reaches 20 (measured on tinyllama's
 * Q8_0 matrices, 1 GiB, one thread). Prefetches past the matrix are harmless (they never
 * fault). K-quant tiles are one row: they prefetch PREFETCH_ROWS_K rows ahead. */
#define PREFETCH_ROWS_K 4

/* 16 packed bytes to 32: low nibbles (elements 0..15) then high nibbles (16..31). */
INLINE __m256i nibbles32(const uint8_t *qs)
{
	__m128i b = _mm_loadu_si128((const __m128i *)qs);
	__m256i v = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
	return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* 32 bits to 32 bytes: 0xFF where the bit is set. */
INLINE __m256i bits32(const uint8_t *qh)
{
	uint32_t w;
	memcpy(&w, qh, 4);
	__m256i v = _mm256_set1_epi32((int)w);
	v = _mm256_shuffle_epi8(v, _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
						     0x0101010101010101, 0x0000000000000000));
	__m256i m = _mm256_set1_epi64x((long long)0x8040201008040201ull);
	return _mm256_cmpeq_epi8(_mm256_and_si256(v, m), m);
}

/* ---- 32-element weight blocks against Q8_0 (signed weights) ---- */

INLINE __m256i unpack_q8_0(const void *b, float *d)
{
	const struct block_q8_0 *q = b;
	*d = h2f(q->d);
	return _mm256_loadu_si256((const __m256i *)q->qs);
}

/* Q4_0 and Q5_0 as unsigned values u with w = u - off: u x x needs no sign tricks, and
 * off * sum(x) is computed once per activation block for all rows. */
INLINE __m256i unpacku_q4_0(const void *b, float *d)
{
	const struct block_q4_0 *q = b;
	*d = h2f(q->d);
	return nibbles32(q->qs);
}

INLINE __m256i unpacku_q5_0(const void *b, float *d)
{
	const struct block_q5_0 *q = b;
	*d = h2f(q->d);
	return _mm256_or_si256(nibbles32(q->qs), _mm256_and_si256(bits32(q->qh), _mm256_set1_epi8(0x10)));
}

INLINE __m256i unpack_iq4_nl(const void *b, float *d)
{
	const struct block_iq4_nl *q = b;
	*d = h2f(q->d);
	__m128i t = _mm_loadu_si128((const __m128i *)herd_iq4nl_values);
	return _mm256_shuffle_epi8(_mm256_set_m128i(t, t), nibbles32(q->qs));
}

/* A tile of RT rows x CT tokens for a signed 32-block type; y[t][r] relative. */
#define DEF_TILE_S32(name, btype)                                                                  \
	INLINE void tile_##name(int RT, int CT, int64_t nb, const char *w, size_t ws, const char *x,     \
				size_t xs, float *y, int64_t ldy)                                         \
	{                                                                                          \
		__m256 acc[4][4];                                                                  \
		_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                       \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++)                                               \
				acc[r][t] = _mm256_setzero_ps();                                   \
		for (int64_t i = 0; i < nb; i++) {                                                 \
			__m256i wv[4], aw[4];                                                      \
			float dw[4];                                                               \
			_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) {                                             \
				_mm_prefetch(w + (r + RT) * ws + i * sizeof(struct btype), _MM_HINT_T0); \
				wv[r] = unpack_##name(w + r * ws + i * sizeof(struct btype), &dw[r]);      \
				aw[r] = _mm256_sign_epi8(wv[r], wv[r]);                            \
			}                                                                          \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++) {                                             \
				const struct block_q8_0 *xb = (const struct block_q8_0 *)(x + t * xs) + i; \
				__m256i xv = _mm256_loadu_si256((const __m256i *)xb->qs);          \
				float dx = h2f(xb->d);                                             \
				_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) {                                     \
					__m256i p = dot_u8i8(aw[r], _mm256_sign_epi8(xv, wv[r]));  \
					acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),         \
								    _mm256_set1_ps(dw[r] * dx), acc[r][t]); \
				}                                                                  \
			}                                                                          \
		}                                                                                  \
		_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                       \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++)                                               \
				y[t * ldy + r] = hsum8(acc[r][t]);                                 \
	}

DEF_TILE_S32(q8_0, block_q8_0)
DEF_TILE_S32(iq4_nl, block_iq4_nl)

#define DEF_TILE_OFF32(name, btype, off)                                                           \
	INLINE void tile_##name(int RT, int CT, int64_t nb, const char *w, size_t ws, const char *x,     \
				size_t xs, float *y, int64_t ldy)                                         \
	{                                                                                          \
		__m256 acc[4][4];                                                                  \
		_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                               \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++)                       \
				acc[r][t] = _mm256_setzero_ps();                                   \
		for (int64_t i = 0; i < nb; i++) {                                                 \
			__m256i uv[4];                                                             \
			float dw[4];                                                               \
			_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                       \
			{                                                                          \
				uv[r] = unpacku_##name(w + r * ws + i * sizeof(struct btype), &dw[r]);     \
				_mm_prefetch(w + (r + RT) * ws + i * sizeof(struct btype), _MM_HINT_T0); \
			}                                                                          \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++) {                     \
				const struct block_q8_0 *xb = (const struct block_q8_0 *)(x + t * xs) + i; \
				__m256i xv = _mm256_loadu_si256((const __m256i *)xb->qs);          \
				__m256i xo = dot_u8i8(_mm256_set1_epi8(off), xv);                  \
				float dx = h2f(xb->d);                                             \
				_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) {             \
					__m256i p = _mm256_sub_epi32(dot_u8i8(uv[r], xv), xo);     \
					acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),         \
								    _mm256_set1_ps(dw[r] * dx), acc[r][t]); \
				}                                                                  \
			}                                                                          \
		}                                                                                  \
		_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                               \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++)                       \
				y[t * ldy + r] = hsum8(acc[r][t]);                                 \
	}

DEF_TILE_OFF32(q4_0, block_q4_0, 8)
DEF_TILE_OFF32(q5_0, block_q5_0, 16)

/* ---- 32-element affine blocks against Q8_1: x = d*u + m, u unsigned ---- */

INLINE __m256i unpack_q4_1(const void *b, float *d, float *m)
{
	const struct block_q4_1 *q = b;
	*d = h2f(q->d);
	*m = h2f(q->m);
	return nibbles32(q->qs);
}

INLINE __m256i unpack_q5_1(const void *b, float *d, float *m)
{
	const struct block_q5_1 *q = b;
	*d = h2f(q->d);
	*m = h2f(q->m);
	__m256i hi = _mm256_and_si256(bits32(q->qh), _mm256_set1_epi8(0x10));
	return _mm256_or_si256(nibbles32(q->qs), hi);
}

#define DEF_TILE_U32(name, btype)                                                                  \
	INLINE void tile_##name(int RT, int CT, int64_t nb, const char *w, size_t ws, const char *x,     \
				size_t xs, float *y, int64_t ldy)                                         \
	{                                                                                          \
		__m256 acc[4][4];                                                                  \
		float macc[4][4];                                                                  \
		_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                       \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++) {                                             \
				acc[r][t] = _mm256_setzero_ps();                                   \
				macc[r][t] = 0;                                                    \
			}                                                                          \
		for (int64_t i = 0; i < nb; i++) {                                                 \
			__m256i uv[4];                                                             \
			float dw[4], mw[4];                                                        \
			_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) {                                             \
				_mm_prefetch(w + (r + RT) * ws + i * sizeof(struct btype), _MM_HINT_T0); \
				uv[r] = unpack_##name(w + r * ws + i * sizeof(struct btype), &dw[r], &mw[r]); \
			}                                                                          \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++) {                                             \
				const struct block_q8_1 *xb = (const struct block_q8_1 *)(x + t * xs) + i; \
				__m256i xv = _mm256_loadu_si256((const __m256i *)xb->qs);          \
				float dx = h2f(xb->d), sx = h2f(xb->s);                            \
				_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++) {                                     \
					__m256i p = dot_u8i8(uv[r], xv);                           \
					acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),         \
								    _mm256_set1_ps(dw[r] * dx), acc[r][t]); \
					macc[r][t] += mw[r] * sx;                                  \
				}                                                                  \
			}                                                                          \
		}                                                                                  \
		_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                       \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++)                                               \
				y[t * ldy + r] = hsum8(acc[r][t]) + macc[r][t];                    \
	}

DEF_TILE_U32(q4_1, block_q4_1)
DEF_TILE_U32(q5_1, block_q5_1)

/* ---- float weights against F32 activations ---- */

INLINE __m256 load8_f32(const void *w, int64_t k)
{
	return _mm256_loadu_ps((const float *)w + k);
}

INLINE __m256 load8_f16(const void *w, int64_t k)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + k)));
}

INLINE __m256 load8_bf16(const void *w, int64_t k)
{
	__m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + k)));
	return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

INLINE float get1_f32(const void *w, int64_t k)
{
	return ((const float *)w)[k];
}

INLINE float get1_f16(const void *w, int64_t k)
{
	return h2f(((const uint16_t *)w)[k]);
}

INLINE float get1_bf16(const void *w, int64_t k)
{
	return herd_bf16_to_fp32(((const uint16_t *)w)[k]);
}

/* here nb is the number of elements */
#define DEF_TILE_F(name)                                                                           \
	INLINE void tile_##name(int RT, int CT, int64_t n, const char *w, size_t ws, const char *x,      \
				size_t xs, float *y, int64_t ldy)                                         \
	{                                                                                          \
		__m256 acc[4][4];                                                                  \
		_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                       \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++)                                               \
				acc[r][t] = _mm256_setzero_ps();                                   \
		int64_t k = 0;                                                                     \
		for (; k + 8 <= n; k += 8) {                                                       \
			__m256 wv[4];                                                              \
			_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                               \
				wv[r] = load8_##name(w + r * ws, k);                               \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++) {                                             \
				__m256 xv = _mm256_loadu_ps((const float *)(x + t * xs) + k);      \
				_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                       \
					acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);         \
			}                                                                          \
		}                                                                                  \
		_Pragma("GCC unroll 4") for (int r = 0; r < RT; r++)                                                       \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++) {                                             \
				float s = hsum8(acc[r][t]);                                        \
				for (int64_t j = k; j < n; j++)                                    \
					s += get1_##name(w + r * ws, j) * ((const float *)(x + t * xs))[j]; \
				y[t * ldy + r] = s;                                                \
			}                                                                          \
	}

DEF_TILE_F(f32)
DEF_TILE_F(f16)
DEF_TILE_F(bf16)

/* ---- K-quants against Q8_K ----
 * A super-block is unpacked into 8 chunks of 32 unsigned values u (chunk k = elements
 * 32k..32k+31) with x = d * sc16[g] * (u - off) - dmin * mn16[g] for 16-element group g. The
 * offset and the mins are applied through the activation's 16-element sums (bsums). */
struct kunp {
	__m256i u[8];
	__m256i scv[8]; /* per chunk: int16 scales of its two 16-groups, for _mm256_madd_epi16 */
	__m256i corr;   /* 16 x int16: off * sc16[g] */
	__m256i mins;   /* 16 x int16: mn16[g] */
	float d, dmin;
};

INLINE void kunp_scales(struct kunp *o, const int16_t sc16[16], const int16_t mn16[16], int off)
{
	for (int k = 0; k < 8; k++)
		o->scv[k] = _mm256_set_m128i(_mm_set1_epi16(sc16[2 * k + 1]), _mm_set1_epi16(sc16[2 * k]));
	__m256i s = _mm256_loadu_si256((const __m256i *)sc16);
	o->corr = _mm256_mullo_epi16(s, _mm256_set1_epi16((short)off));
	o->mins = _mm256_loadu_si256((const __m256i *)mn16);
}

INLINE void unpack_q2_K(const void *bp, struct kunp *o)
{
	const struct block_q2_K *b = bp;
	__m256i m3 = _mm256_set1_epi8(3);
	for (int h = 0; h < 2; h++) {
		__m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
		for (int j = 0; j < 4; j++)
			o->u[4 * h + j] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
	}
	int16_t sc[16], mn[16];
	for (int g = 0; g < 16; g++) {
		sc[g] = b->scales[g] & 0xF;
		mn[g] = b->scales[g] >> 4;
	}
	kunp_scales(o, sc, mn, 0);
	o->d = h2f(b->d);
	o->dmin = h2f(b->dmin);
}

INLINE void unpack_q3_K(const void *bp, struct kunp *o)
{
	const struct block_q3_K *b = bp;
	__m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
	__m256i hm = _mm256_loadu_si256((const __m256i *)b->hmask);
	for (int h = 0; h < 2; h++) {
		__m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
		for (int j = 0; j < 4; j++) {
			__m256i lo = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
			__m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), one);
			o->u[4 * h + j] = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2));
		}
	}
	int16_t sc[16], mn[16] = {0};
	for (int g = 0; g < 16; g++)
		sc[g] = (int16_t)(herd_k3_scale(b->scales, g) - 32);
	kunp_scales(o, sc, mn, 4);
	o->d = h2f(b->d);
	o->dmin = 0;
}

INLINE void k4_scales16(const uint8_t *s, int16_t sc[16], int16_t mn[16])
{
	for (int j = 0; j < 8; j++) {
		int a, m;
		herd_k4_scale_min(s, j, &a, &m);
		sc[2 * j] = sc[2 * j + 1] = (int16_t)a;
		mn[2 * j] = mn[2 * j + 1] = (int16_t)m;
	}
}

INLINE void unpack_q4_K(const void *bp, struct kunp *o)
{
	const struct block_q4_K *b = bp;
	__m256i m4 = _mm256_set1_epi8(0xF);
	for (int c = 0; c < 4; c++) {
		__m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
		o->u[2 * c] = _mm256_and_si256(q, m4);
		o->u[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
	}
	int16_t sc[16], mn[16];
	k4_scales16(b->scales, sc, mn);
	kunp_scales(o, sc, mn, 0);
	o->d = h2f(b->d);
	o->dmin = h2f(b->dmin);
}

INLINE void unpack_q5_K(const void *bp, struct kunp *o)
{
	const struct block_q5_K *b = bp;
	__m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
	__m256i qh = _mm256_loadu_si256((const __m256i *)b->qh);
	for (int c = 0; c < 4; c++) {
		__m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
		__m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one);
		__m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one);
		o->u[2 * c] = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(h0, 4));
		o->u[2 * c + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
						  _mm256_slli_epi16(h1, 4));
	}
	int16_t sc[16], mn[16];
	k4_scales16(b->scales, sc, mn);
	kunp_scales(o, sc, mn, 0);
	o->d = h2f(b->d);
	o->dmin = h2f(b->dmin);
}

INLINE void unpack_q6_K(const void *bp, struct kunp *o)
{
	const struct block_q6_K *b = bp;
	__m256i m4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3);
	for (int h = 0; h < 2; h++) {
		__m256i a = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
		__m256i c = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
		__m256i q = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
		__m256i lo[4] = {_mm256_and_si256(a, m4), _mm256_and_si256(c, m4),
				 _mm256_and_si256(_mm256_srli_epi16(a, 4), m4),
				 _mm256_and_si256(_mm256_srli_epi16(c, 4), m4)};
		for (int k = 0; k < 4; k++) {
			__m256i hb = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m3);
			o->u[4 * h + k] = _mm256_or_si256(lo[k], _mm256_slli_epi16(hb, 4));
		}
	}
	int16_t sc[16], mn[16] = {0};
	for (int g = 0; g < 16; g++)
		sc[g] = b->scales[g];
	kunp_scales(o, sc, mn, 32);
	o->d = h2f(b->d);
	o->dmin = 0;
}

/* One row x CT tokens: each super-block is unpacked once and used for every token. */
#define DEF_TILE_K(name, btype)                                                                    \
	INLINE void tile_##name(int RT, int CT, int64_t nb, const char *w, size_t ws, const char *x,     \
				size_t xs, float *y, int64_t ldy)                                         \
	{                                                                                          \
		(void)RT;                                                                          \
		__m256 acc[4];                                                                     \
		_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++)                                                       \
			acc[t] = _mm256_setzero_ps();                                              \
		struct kunp o;                                                                     \
		for (int64_t i = 0; i < nb; i++) {                                                 \
			for (size_t pf = 0; pf < sizeof(struct btype); pf += 64)                   \
				_mm_prefetch(w + PREFETCH_ROWS_K * ws + i * sizeof(struct btype) + pf, _MM_HINT_T0); \
			_mm_prefetch(w + PREFETCH_ROWS_K * ws + (i + 1) * sizeof(struct btype) - 1, _MM_HINT_T0); \
			unpack_##name(w + i * sizeof(struct btype), &o);                           \
			_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++) {                                             \
				const struct block_q8_K *xb = (const struct block_q8_K *)(x + t * xs) + i; \
				__m256i isum = _mm256_setzero_si256();                             \
				_Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {                                      \
					__m256i xv = _mm256_loadu_si256((const __m256i *)(xb->qs + 32 * k)); \
					__m256i p = _mm256_maddubs_epi16(o.u[k], xv);              \
					isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, o.scv[k])); \
				}                                                                  \
				__m256i bs = _mm256_loadu_si256((const __m256i *)xb->bsums);       \
				isum = _mm256_sub_epi32(isum, _mm256_madd_epi16(bs, o.corr));      \
				__m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(o.d)); \
				if (o.dmin != 0) {                                                 \
					__m256i ms = _mm256_madd_epi16(bs, o.mins);                \
					f = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_set1_ps(o.dmin), f); \
				}                                                                  \
				acc[t] = _mm256_fmadd_ps(f, _mm256_set1_ps(xb->d), acc[t]);        \
			}                                                                          \
		}                                                                                  \
		_Pragma("GCC unroll 4") for (int t = 0; t < CT; t++)                                                       \
			y[t * ldy] = hsum8(acc[t]);                                                \
	}

DEF_TILE_K(q2_K, block_q2_K)
DEF_TILE_K(q3_K, block_q3_K)
DEF_TILE_K(q4_K, block_q4_K)
DEF_TILE_K(q5_K, block_q5_K)
DEF_TILE_K(q6_K, block_q6_K)

/* ---- drivers: tiles over [r0, r1) x [0, nt), with smaller tiles at the edges ---- */

#define DEF_DRIVER(name, RTM, CTM, unit)                                                           \
	static void mm_##name(const char *w, size_t ws, const char *x, size_t xs, int64_t n, int64_t nt, \
			      int64_t r0, int64_t r1, float *y, int64_t ldy)                             \
	{                                                                                          \
		int64_t nb = n / (unit);                                                           \
		int64_t r = r0;                                                                    \
		for (; r + RTM <= r1; r += RTM) {                                                  \
			int64_t t = 0;                                                             \
			for (; t + CTM <= nt; t += CTM)                                            \
				tile_##name(RTM, CTM, nb, w + r * ws, ws, x + t * xs, xs, y + t * ldy + r, ldy); \
			for (; t < nt; t++)                                                        \
				tile_##name(RTM, 1, nb, w + r * ws, ws, x + t * xs, xs, y + t * ldy + r, ldy); \
		}                                                                                  \
		for (; r < r1; r++) {                                                              \
			int64_t t = 0;                                                             \
			for (; t + CTM <= nt; t += CTM)                                            \
				tile_##name(1, CTM, nb, w + r * ws, ws, x + t * xs, xs, y + t * ldy + r, ldy); \
			for (; t < nt; t++)                                                        \
				tile_##name(1, 1, nb, w + r * ws, ws, x + t * xs, xs, y + t * ldy + r, ldy); \
		}                                                                                  \
	}                                                                                          \
	static float vd_##name(int64_t n, const void *w, const void *x)                            \
	{                                                                                          \
		float y;                                                                           \
		tile_##name(1, 1, n / (unit), w, 0, x, 0, &y, 0);                                  \
		return y;                                                                          \
	}

/* Tile shapes, measured with bench_kernels: 4 rows x 4 tokens for the 32-element blocks (some
 * accumulators spill to L1, still the fastest of 4x2, 4x3, 3x4, 2x4, 4x4); 4 x 2 for floats (13
 * registers); 1 row x 4 tokens for K-quants (an unpacked super-block fills 8 registers). */
#define S32_RT 4
#define S32_CT 4
DEF_DRIVER(q8_0, S32_RT, S32_CT, QK)
DEF_DRIVER(q4_0, S32_RT, S32_CT, QK)
DEF_DRIVER(q5_0, S32_RT, S32_CT, QK)
DEF_DRIVER(iq4_nl, S32_RT, S32_CT, QK)
DEF_DRIVER(q4_1, S32_RT, S32_CT, QK)
DEF_DRIVER(q5_1, S32_RT, S32_CT, QK)
DEF_DRIVER(f32, 4, 2, 1)
DEF_DRIVER(f16, 4, 2, 1)
DEF_DRIVER(bf16, 4, 2, 1)
DEF_DRIVER(q2_K, 1, 4, QK_K)
DEF_DRIVER(q3_K, 1, 4, QK_K)
DEF_DRIVER(q4_K, 1, 4, QK_K)
DEF_DRIVER(q5_K, 1, 4, QK_K)
DEF_DRIVER(q6_K, 1, 4, QK_K)

/* ---- activation quantizer: Q8_0, the same rounding as the reference (nearest even) ---- */

static void q8_0_from_float_avx2(const float *src, void *dst, int64_t n)
{
	struct block_q8_0 *b = dst;
	const __m256 signbit = _mm256_set1_ps(-0.0f);
	for (int64_t i = 0; i < n / QK; i++) {
		const float *x = src + i * QK;
		__m256 v[4], m = _mm256_setzero_ps();
		for (int k = 0; k < 4; k++) {
			v[k] = _mm256_loadu_ps(x + 8 * k);
			m = _mm256_max_ps(m, _mm256_andnot_ps(signbit, v[k]));
		}
		__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
		m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
		m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
		float amax = _mm_cvtss_f32(m4);
		float d = amax / 127, id = d ? 1 / d : 0;
		b[i].d = (herd_half)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
		__m256 idv = _mm256_set1_ps(id);
		__m256i q[4];
		for (int k = 0; k < 4; k++)
			q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], idv),
								  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
		/* pack 32 int32 to 32 int8 in order (packs work per 128-bit lane: fix with a permute) */
		__m256i a = _mm256_packs_epi32(q[0], q[1]), c = _mm256_packs_epi32(q[2], q[3]);
		__m256i p = _mm256_packs_epi16(a, c);
		p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
		_mm256_storeu_si256((__m256i *)b[i].qs, p);
	}
}

/* ---- tables ---- */

static struct herd_type_ops avx2_ops[HERD_TYPE_COUNT];
static bool avx2_ready;

static void avx2_init(void)
{
	static const struct {
		enum herd_type t;
		float (*vd)(int64_t, const void *, const void *);
	} k[] = {
		{HERD_TYPE_F32, vd_f32},   {HERD_TYPE_F16, vd_f16},   {HERD_TYPE_BF16, vd_bf16},
		{HERD_TYPE_Q8_0, vd_q8_0}, {HERD_TYPE_Q4_0, vd_q4_0}, {HERD_TYPE_Q5_0, vd_q5_0},
		{HERD_TYPE_IQ4_NL, vd_iq4_nl}, {HERD_TYPE_Q4_1, vd_q4_1}, {HERD_TYPE_Q5_1, vd_q5_1},
		{HERD_TYPE_Q2_K, vd_q2_K}, {HERD_TYPE_Q3_K, vd_q3_K}, {HERD_TYPE_Q4_K, vd_q4_K},
		{HERD_TYPE_Q5_K, vd_q5_K}, {HERD_TYPE_Q6_K, vd_q6_K},
	};
	for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
		avx2_ops[k[i].t] = *herd_type_ops_ref(k[i].t);
		avx2_ops[k[i].t].vec_dot = k[i].vd;
	}
	avx2_ops[HERD_TYPE_Q8_0].from_float = q8_0_from_float_avx2;
	avx2_ops[HERD_TYPE_Q8_1] = *herd_type_ops_ref(HERD_TYPE_Q8_1);
	avx2_ops[HERD_TYPE_Q8_K] = *herd_type_ops_ref(HERD_TYPE_Q8_K);
	__atomic_store_n(&avx2_ready, true, __ATOMIC_RELEASE);
}

const struct herd_type_ops *herd_avx2_type_ops(enum herd_type t)
{
	if ((unsigned)t >= HERD_TYPE_COUNT)
		return NULL;
	if (!__atomic_load_n(&avx2_ready, __ATOMIC_ACQUIRE)) {
		static pthread_once_t once = PTHREAD_ONCE_INIT;
		pthread_once(&once, avx2_init);
	}
	return avx2_ops[t].to_float ? &avx2_ops[t] : NULL;
}

bool herd_avx2_matmul(enum herd_type wtype, const void *w, size_t w_stride, const void *x, size_t x_stride,
		      int64_t n, int64_t nt, int64_t r0, int64_t r1, float *y, int64_t ldy)
{
	void (*mm)(const char *, size_t, const char *, size_t, int64_t, int64_t, int64_t, int64_t, float *,
		   int64_t);
	switch (wtype) {
	case HERD_TYPE_F32: mm = mm_f32; break;
	case HERD_TYPE_F16: mm = mm_f16; break;
	case HERD_TYPE_BF16: mm = mm_bf16; break;
	case HERD_TYPE_Q8_0: mm = mm_q8_0; break;
	case HERD_TYPE_Q4_0: mm = mm_q4_0; break;
	case HERD_TYPE_Q5_0: mm = mm_q5_0; break;
	case HERD_TYPE_IQ4_NL: mm = mm_iq4_nl; break;
	case HERD_TYPE_Q4_1: mm = mm_q4_1; break;
	case HERD_TYPE_Q5_1: mm = mm_q5_1; break;
	case HERD_TYPE_Q2_K: mm = mm_q2_K; break;
	case HERD_TYPE_Q3_K: mm = mm_q3_K; break;
	case HERD_TYPE_Q4_K: mm = mm_q4_K; break;
	case HERD_TYPE_Q5_K: mm = mm_q5_K; break;
	case HERD_TYPE_Q6_K: mm = mm_q6_K; break;
	default: return false;
	}
	mm(w, w_stride, x, x_stride, n, nt, r0, r1, y, ldy);
	return true;
}
