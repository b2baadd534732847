/* quant — the tensor types herd computes with: fp16/bf16 conversions, and for every type the
 * reference kernels (dequantize, quantize, dot product) that are the portable fallback and the
 * oracle the SIMD kernels are tested against.
 *
 * The one thing to know: a dot product with a block type multiplies the weight's integers with
 * the activation's integers (the activation first quantized to vec_dot_type, 8-bit blocks) and
 * applies the scales per block, as llama.cpp does, so that herd's logits come close to its.
 * Every type decodes a block into integers plus scales once (decode_*), and both to_float and
 * vec_dot are written on top of that, so the two cannot disagree about a layout. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cpuid.h>

#include "quant_int.h"

const int8_t herd_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
				      1,    13,   25,  38,  53,  69,  89,  113};

/* ---- fp16 / bf16 ---- */

static inline uint32_t f2u(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static inline float u2f(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

float herd_fp16_to_fp32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
	if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in float */
		float v = (float)mant * (1.0f / 16777216.0f);
		return u2f(f2u(v) | sign);
	}
	if (exp == 31) /* inf or nan, payload kept */
		return u2f(sign | 0x7F800000u | (mant << 13));
	return u2f(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t herd_fp32_to_fp16(float f)
{
	uint32_t u = f2u(f);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
	uint32_t x = u & 0x7FFFFFFF;
	if (x > 0x7F800000) /* nan: stays a (quiet) nan */
		return sign | 0x7E00 | (uint16_t)((x >> 13) & 0x3FF);
	if (x >= 0x47800000) /* >= 65536, inf included */
		return sign | 0x7C00;
	if (x < 0x38800000) { /* below 2^-14: subnormal result, round to nearest even */
		float v = nearbyintf(u2f(x) * 16777216.0f); /* exact scaling by 2^24 */
		return sign | (uint16_t)v;                   /* 1024 = smallest normal: still right */
	}
	uint32_t h = ((((x >> 23) - 112) << 10) | ((x >> 13) & 0x3FF));
	uint32_t rem = x & 0x1FFF;
	if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
		h++; /* a carry into the exponent is right, up to inf */
	return sign | (uint16_t)h;
}

float herd_bf16_to_fp32(uint16_t h)
{
	return u2f((uint32_t)h << 16);
}

uint16_t herd_fp32_to_bf16(float f)
{
	uint32_t u = f2u(f);
	if ((u & 0x7FFFFFFF) > 0x7F800000)
		return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
	return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

#define H2F herd_fp16_to_fp32
#define F2H herd_fp32_to_fp16

static inline int nearest_int(float f)
{
	return (int)lrintf(f);
}

static inline int clampi(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---- float types ---- */

static void f32_to_float(const void *src, float *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f32_from_float(const float *src, void *dst, int64_t n)
{
	memcpy(dst, src, (size_t)n * sizeof(float));
}

static float f32_vec_dot(int64_t n, const void *w, const void *x)
{
	const float *a = w, *b = x;
	double s = 0; /* reference: accumulate exactly enough to be an oracle */
	for (int64_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return (float)s;
}

static void f16_to_float(const void *src, float *dst, int64_t n)
{
	const uint16_t *h = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = H2F(h[i]);
}

static void f16_from_float(const float *src, void *dst, int64_t n)
{
	uint16_t *h = dst;
	for (int64_t i = 0; i < n; i++)
		h[i] = F2H(src[i]);
}

static float f16_vec_dot(int64_t n, const void *w, const void *x)
{
	const uint16_t *a = w;
	const float *b = x;
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += (double)H2F(a[i]) * b[i];
	return (float)s;
}

static void bf16_to_float(const void *src, float *dst, int64_t n)
{
	const uint16_t *h = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = herd_bf16_to_fp32(h[i]);
}

static void bf16_from_float(const float *src, void *dst, int64_t n)
{
	uint16_t *h = dst;
	for (int64_t i = 0; i < n; i++)
		h[i] = herd_fp32_to_bf16(src[i]);
}

static float bf16_vec_dot(int64_t n, const void *w, const void *x)
{
	const uint16_t *a = w;
	const float *b = x;
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += (double)herd_bf16_to_fp32(a[i]) * b[i];
	return (float)s;
}

/* ---- 32-element blocks: decode to integers q with x = d*q + m ---- */

struct dec32 {
	int8_t q[QK];
	float d, m;
};

static void decode_q4_0(const struct block_q4_0 *b, struct dec32 *o)
{
	for (int j = 0; j < QK / 2; j++) {
		o->q[j] = (int8_t)((b->qs[j] & 0xF) - 8);
		o->q[j + 16] = (int8_t)((b->qs[j] >> 4) - 8);
	}
	o->d = H2F(b->d);
	o->m = 0;
}

static void decode_q4_1(const struct block_q4_1 *b, struct dec32 *o)
{
	for (int j = 0; j < QK / 2; j++) {
		o->q[j] = (int8_t)(b->qs[j] & 0xF);
		o->q[j + 16] = (int8_t)(b->qs[j] >> 4);
	}
	o->d = H2F(b->d);
	o->m = H2F(b->m);
}

static uint32_t load_qh(const uint8_t qh[4])
{
	return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

static void decode_q5_0(const struct block_q5_0 *b, struct dec32 *o)
{
	uint32_t qh = load_qh(b->qh);
	for (int j = 0; j < QK / 2; j++) {
		o->q[j] = (int8_t)(((b->qs[j] & 0xF) | ((qh >> j) & 1) << 4) - 16);
		o->q[j + 16] = (int8_t)(((b->qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16);
	}
	o->d = H2F(b->d);
	o->m = 0;
}

static void decode_q5_1(const struct block_q5_1 *b, struct dec32 *o)
{
	uint32_t qh = load_qh(b->qh);
	for (int j = 0; j < QK / 2; j++) {
		o->q[j] = (int8_t)((b->qs[j] & 0xF) | ((qh >> j) & 1) << 4);
		o->q[j + 16] = (int8_t)((b->qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
	}
	o->d = H2F(b->d);
	o->m = H2F(b->m);
}

static void decode_q8_0(const struct block_q8_0 *b, struct dec32 *o)
{
	memcpy(o->q, b->qs, QK);
	o->d = H2F(b->d);
	o->m = 0;
}

static void decode_q8_1(const struct block_q8_1 *b, struct dec32 *o)
{
	memcpy(o->q, b->qs, QK);
	o->d = H2F(b->d);
	o->m = 0;
}

static void decode_iq4_nl(const struct block_iq4_nl *b, struct dec32 *o)
{
	for (int j = 0; j < QK / 2; j++) {
		o->q[j] = herd_iq4nl_values[b->qs[j] & 0xF];
		o->q[j + 16] = herd_iq4nl_values[b->qs[j] >> 4];
	}
	o->d = H2F(b->d);
	o->m = 0;
}

/* to_float, and vec_dot against Q8_0 (m == 0) or Q8_1 (x = d*q + m) activations. */
#define DEF_BLOCK32(name, btype, xtype)                                                            \
	static void name##_to_float(const void *src, float *dst, int64_t n)                        \
	{                                                                                          \
		const struct btype *b = src;                                                       \
		struct dec32 o;                                                                    \
		for (int64_t i = 0; i < n / QK; i++) {                                             \
			decode_##name(&b[i], &o);                                                  \
			for (int j = 0; j < QK; j++)                                               \
				dst[i * QK + j] = o.d * o.q[j] + o.m;                              \
		}                                                                                  \
	}                                                                                          \
	static float name##_vec_dot(int64_t n, const void *w, const void *x)                       \
	{                                                                                          \
		const struct btype *b = w;                                                         \
		const struct xtype *a = x;                                                         \
		struct dec32 o;                                                                    \
		float s = 0;                                                                       \
		for (int64_t i = 0; i < n / QK; i++) {                                             \
			decode_##name(&b[i], &o);                                                  \
			int sum = 0;                                                               \
			for (int j = 0; j < QK; j++)                                               \
				sum += o.q[j] * a[i].qs[j];                                        \
			s += dot32_tail(o.d, o.m, sum, a[i].d, xtype##_s(&a[i]));                  \
		}                                                                                  \
		return s;                                                                          \
	}

static inline float block_q8_0_s(const struct block_q8_0 *a)
{
	(void)a;
	return 0;
}

static inline float block_q8_1_s(const struct block_q8_1 *a)
{
	return H2F(a->s);
}

static inline float dot32_tail(float d, float m, int sum, herd_half xd, float xs)
{
	return d * H2F(xd) * (float)sum + m * xs;
}

DEF_BLOCK32(q4_0, block_q4_0, block_q8_0)
DEF_BLOCK32(q4_1, block_q4_1, block_q8_1)
DEF_BLOCK32(q5_0, block_q5_0, block_q8_0)
DEF_BLOCK32(q5_1, block_q5_1, block_q8_1)
DEF_BLOCK32(q8_0, block_q8_0, block_q8_0)
DEF_BLOCK32(iq4_nl, block_iq4_nl, block_q8_0)

static void q8_1_to_float(const void *src, float *dst, int64_t n)
{
	const struct block_q8_1 *b = src;
	struct dec32 o;
	for (int64_t i = 0; i < n / QK; i++) {
		decode_q8_1(&b[i], &o);
		for (int j = 0; j < QK; j++)
			dst[i * QK + j] = o.d * o.q[j];
	}
}

/* ---- 32-element quantizers ---- */

/* The value of largest magnitude, with its sign. */
static float signed_absmax(const float *x, int n, float *amax_out)
{
	float amax = 0, max = 0;
	for (int j = 0; j < n; j++) {
		if (fabsf(x[j]) > amax) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	}
	if (amax_out)
		*amax_out = amax;
	return max;
}

static void q8_0_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q8_0 *b = dst;
	for (int64_t i = 0; i < n / QK; i++) {
		const float *x = src + i * QK;
		float amax;
		signed_absmax(x, QK, &amax);
		float d = amax / 127, id = d ? 1 / d : 0;
		b[i].d = F2H(d);
		for (int j = 0; j < QK; j++)
			b[i].qs[j] = (int8_t)nearest_int(x[j] * id);
	}
}

static void q8_1_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q8_1 *b = dst;
	for (int64_t i = 0; i < n / QK; i++) {
		const float *x = src + i * QK;
		float amax;
		signed_absmax(x, QK, &amax);
		float d = amax / 127, id = d ? 1 / d : 0;
		int sum = 0;
		for (int j = 0; j < QK; j++) {
			b[i].qs[j] = (int8_t)nearest_int(x[j] * id);
			sum += b[i].qs[j];
		}
		b[i].d = F2H(d);
		b[i].s = F2H(d * (float)sum);
	}
}

static void pack_nibbles(uint8_t qs[QK / 2], const uint8_t q[QK])
{
	for (int j = 0; j < QK / 2; j++)
		qs[j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

static void q4_0_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q4_0 *b = dst;
	uint8_t q[QK];
	for (int64_t i = 0; i < n / QK; i++) {
		const float *x = src + i * QK;
		float d = signed_absmax(x, QK, NULL) / -8, id = d ? 1 / d : 0;
		for (int j = 0; j < QK; j++)
			q[j] = (uint8_t)clampi(nearest_int(x[j] * id) + 8, 0, 15);
		b[i].d = F2H(d);
		pack_nibbles(b[i].qs, q);
	}
}

static void q5_0_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q5_0 *b = dst;
	uint8_t q[QK];
	for (int64_t i = 0; i < n / QK; i++) {
		const float *x = src + i * QK;
		float d = signed_absmax(x, QK, NULL) / -16, id = d ? 1 / d : 0;
		uint32_t qh = 0;
		for (int j = 0; j < QK; j++) {
			int v = clampi(nearest_int(x[j] * id) + 16, 0, 31);
			q[j] = (uint8_t)(v & 0xF);
			qh |= (uint32_t)(v >> 4) << j;
		}
		b[i].d = F2H(d);
		pack_nibbles(b[i].qs, q);
		for (int k = 0; k < 4; k++)
			b[i].qh[k] = (uint8_t)(qh >> (8 * k));
	}
}

/* Affine blocks: x = d*q + m with q in 0..nmax. */
static void affine32(const float *x, int nmax, float *d, float *m, uint8_t q[QK])
{
	float lo = x[0], hi = x[0];
	for (int j = 1; j < QK; j++) {
		lo = fminf(lo, x[j]);
		hi = fmaxf(hi, x[j]);
	}
	float dd = (hi - lo) / nmax, id = dd ? 1 / dd : 0;
	*d = dd;
	*m = lo;
	for (int j = 0; j < QK; j++)
		q[j] = (uint8_t)clampi(nearest_int((x[j] - lo) * id), 0, nmax);
}

static void q4_1_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q4_1 *b = dst;
	uint8_t q[QK];
	for (int64_t i = 0; i < n / QK; i++) {
		float d, m;
		affine32(src + i * QK, 15, &d, &m, q);
		b[i].d = F2H(d);
		b[i].m = F2H(m);
		pack_nibbles(b[i].qs, q);
	}
}

static void q5_1_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q5_1 *b = dst;
	uint8_t q[QK], lo[QK];
	for (int64_t i = 0; i < n / QK; i++) {
		float d, m;
		affine32(src + i * QK, 31, &d, &m, q);
		uint32_t qh = 0;
		for (int j = 0; j < QK; j++) {
			lo[j] = q[j] & 0xF;
			qh |= (uint32_t)(q[j] >> 4) << j;
		}
		b[i].d = F2H(d);
		b[i].m = F2H(m);
		pack_nibbles(b[i].qs, lo);
		for (int k = 0; k < 4; k++)
			b[i].qh[k] = (uint8_t)(qh >> (8 * k));
	}
}

static int iq4nl_nearest(float v)
{
	int best = 0;
	float be = fabsf(v - herd_iq4nl_values[0]);
	for (int k = 1; k < 16; k++) {
		float e = fabsf(v - herd_iq4nl_values[k]);
		if (e < be) {
			be = e;
			best = k;
		}
	}
	return best;
}

/* IQ4_NL: a small search over the block scale (the table is not uniform, so the scale that maps
 * the largest value onto an end level is not always best), least-squares refined. */
static void iq4_nl_from_float(const float *src, void *dst, int64_t n)
{
	struct block_iq4_nl *b = dst;
	uint8_t q[QK], tq[QK];
	for (int64_t i = 0; i < n / QK; i++) {
		const float *x = src + i * QK;
		float max = signed_absmax(x, QK, NULL);
		float best_d = 0, best_err = INFINITY;
		memset(q, 0, sizeof q);
		if (max != 0) {
			for (int step = -8; step <= 8; step++) {
				float d0 = max / (-127.0f + 2.0f * step);
				float id = 1 / d0;
				float sxq = 0, sqq = 0;
				for (int j = 0; j < QK; j++) {
					tq[j] = (uint8_t)iq4nl_nearest(x[j] * id);
					float v = herd_iq4nl_values[tq[j]];
					sxq += x[j] * v;
					sqq += v * v;
				}
				float d = sqq > 0 ? sxq / sqq : d0;
				float err = 0;
				for (int j = 0; j < QK; j++) {
					float e = x[j] - d * herd_iq4nl_values[tq[j]];
					err += e * e;
				}
				if (err < best_err) {
					best_err = err;
					best_d = d;
					memcpy(q, tq, QK);
				}
			}
		}
		b[i].d = F2H(best_d);
		pack_nibbles(b[i].qs, q);
	}
}

/* ---- K-quants: decode a super-block into integers and sub-block scales ----
 * x[e] = d * sc[s] * q[e] - dmin * mn[s], s = e / (256 / nsub). */

struct deck {
	int8_t q[QK_K];
	int sc[16], mn[16];
	float d, dmin;
	int nsub;
};

/* Q2_K: element e sits in qs[(e/128)*32 + e%32] at bit 2*((e%128)/32); scale and min e/16. */
static void decode_q2_K(const struct block_q2_K *b, struct deck *o)
{
	for (int e = 0; e < QK_K; e++)
		o->q[e] = (int8_t)((b->qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3);
	for (int s = 0; s < 16; s++) {
		o->sc[s] = b->scales[s] & 0xF;
		o->mn[s] = b->scales[s] >> 4;
	}
	o->d = H2F(b->d);
	o->dmin = H2F(b->dmin);
	o->nsub = 16;
}

/* Q3_K: low two bits as Q2_K; hmask[e%32] bit (e/32) set means the value is not lowered by 4. */
static void decode_q3_K(const struct block_q3_K *b, struct deck *o)
{
	for (int e = 0; e < QK_K; e++) {
		int lo = (b->qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
		int hi = (b->hmask[e % 32] >> (e / 32)) & 1;
		o->q[e] = (int8_t)(lo - (hi ? 0 : 4));
	}
	for (int s = 0; s < 16; s++) {
		o->sc[s] = herd_k3_scale(b->scales, s) - 32;
		o->mn[s] = 0;
	}
	o->d = H2F(b->d);
	o->dmin = 0;
	o->nsub = 16;
}

/* Q4_K: element e in qs[(e/64)*32 + e%32], low nibble for (e%64) < 32; scale/min e/32. */
static void decode_q4_K(const struct block_q4_K *b, struct deck *o)
{
	for (int e = 0; e < QK_K; e++) {
		uint8_t byte = b->qs[(e / 64) * 32 + e % 32];
		o->q[e] = (int8_t)((e % 64) < 32 ? byte & 0xF : byte >> 4);
	}
	for (int s = 0; s < 8; s++)
		herd_k4_scale_min(b->scales, s, &o->sc[s], &o->mn[s]);
	o->d = H2F(b->d);
	o->dmin = H2F(b->dmin);
	o->nsub = 8;
}

/* Q5_K: as Q4_K, plus the fifth bit in qh[e%32] at bit e/32. */
static void decode_q5_K(const struct block_q5_K *b, struct deck *o)
{
	for (int e = 0; e < QK_K; e++) {
		uint8_t byte = b->qs[(e / 64) * 32 + e % 32];
		int lo = (e % 64) < 32 ? byte & 0xF : byte >> 4;
		o->q[e] = (int8_t)(lo | ((b->qh[e % 32] >> (e / 32)) & 1) << 4);
	}
	for (int s = 0; s < 8; s++)
		herd_k4_scale_min(b->scales, s, &o->sc[s], &o->mn[s]);
	o->d = H2F(b->d);
	o->dmin = H2F(b->dmin);
	o->nsub = 8;
}

/* Q6_K: per 128 elements (half h), quarter k = (e%128)/32, l = e%32: low nibble from
 * ql[h*64 + l + 32*(k&1)] (high nibble when k >= 2), two high bits from qh[h*32 + l] at bit 2k;
 * value minus 32; scale e/16. */
static void decode_q6_K(const struct block_q6_K *b, struct deck *o)
{
	for (int e = 0; e < QK_K; e++) {
		int h = e / 128, k = (e % 128) / 32, l = e % 32;
		uint8_t byte = b->ql[h * 64 + l + 32 * (k & 1)];
		int lo = k >= 2 ? byte >> 4 : byte & 0xF;
		int hi = (b->qh[h * 32 + l] >> (2 * k)) & 3;
		o->q[e] = (int8_t)((lo | hi << 4) - 32);
	}
	for (int s = 0; s < 16; s++) {
		o->sc[s] = b->scales[s];
		o->mn[s] = 0;
	}
	o->d = H2F(b->d);
	o->dmin = 0;
	o->nsub = 16;
}

#define DEF_KQUANT(name, btype)                                                                    \
	static void name##_to_float(const void *src, float *dst, int64_t n)                        \
	{                                                                                          \
		const struct btype *b = src;                                                       \
		struct deck o;                                                                     \
		for (int64_t i = 0; i < n / QK_K; i++) {                                           \
			decode_##name(&b[i], &o);                                                  \
			int len = QK_K / o.nsub;                                                   \
			for (int e = 0; e < QK_K; e++) {                                           \
				int s = e / len;                                                   \
				dst[i * QK_K + e] = o.d * (float)o.sc[s] * o.q[e] -                \
						    o.dmin * (float)o.mn[s];                       \
			}                                                                          \
		}                                                                                  \
	}                                                                                          \
	static float name##_vec_dot(int64_t n, const void *w, const void *x)                       \
	{                                                                                          \
		const struct btype *b = w;                                                         \
		const struct block_q8_K *a = x;                                                    \
		struct deck o;                                                                     \
		float s = 0;                                                                       \
		for (int64_t i = 0; i < n / QK_K; i++) {                                           \
			decode_##name(&b[i], &o);                                                  \
			s += deck_dot(&o, &a[i]);                                                  \
		}                                                                                  \
		return s;                                                                          \
	}

/* One super-block's dot with Q8_K: integer sums per sub-block times the scales; the mins
 * use the activation's 16-element sums (bsums), as llama.cpp does. */
static float deck_dot(const struct deck *o, const struct block_q8_K *a)
{
	int len = QK_K / o->nsub;
	int32_t isum = 0, msum = 0;
	for (int s = 0; s < o->nsub; s++) {
		int32_t sum = 0;
		for (int e = s * len; e < (s + 1) * len; e++)
			sum += o->q[e] * a->qs[e];
		isum += o->sc[s] * sum;
		int bs = 0;
		for (int k = s * len / 16; k < (s + 1) * len / 16; k++)
			bs += a->bsums[k];
		msum += o->mn[s] * bs;
	}
	return a->d * (o->d * (float)isum - o->dmin * (float)msum);
}

DEF_KQUANT(q2_K, block_q2_K)
DEF_KQUANT(q3_K, block_q3_K)
DEF_KQUANT(q4_K, block_q4_K)
DEF_KQUANT(q5_K, block_q5_K)
DEF_KQUANT(q6_K, block_q6_K)

static void q8_K_to_float(const void *src, float *dst, int64_t n)
{
	const struct block_q8_K *b = src;
	for (int64_t i = 0; i < n / QK_K; i++)
		for (int e = 0; e < QK_K; e++)
			dst[i * QK_K + e] = b[i].d * b[i].qs[e];
}

static void q8_K_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q8_K *b = dst;
	for (int64_t i = 0; i < n / QK_K; i++) {
		const float *x = src + i * QK_K;
		float amax;
		signed_absmax(x, QK_K, &amax);
		float d = amax / 127, id = d ? 1 / d : 0;
		b[i].d = d;
		for (int k = 0; k < QK_K / 16; k++) {
			int sum = 0;
			for (int j = 0; j < 16; j++) {
				int v = clampi(nearest_int(x[16 * k + j] * id), -127, 127);
				b[i].qs[16 * k + j] = (int8_t)v;
				sum += v;
			}
			b[i].bsums[k] = (int16_t)sum;
		}
	}
}

/* ---- K-quant quantizers ----
 * Per sub-block a float scale (and min) is fitted by least squares, then the scales are
 * themselves quantized against the super-block's d (and dmin), and finally every value is
 * rounded with the scale it will really be decoded with. Simpler than llama.cpp's search, but
 * the blocks are valid and the error is close. */

/* Fits x ~ s*q - m, q in 0..nmax, s >= 0, m >= 0. */
static void fit_affine(const float *x, int n, int nmax, float *s_out, float *m_out)
{
	float lo = 0, hi = x[0];
	for (int j = 0; j < n; j++) {
		lo = fminf(lo, x[j]);
		hi = fmaxf(hi, x[j]);
	}
	float s = (hi - lo) / nmax, m = -lo;
	if (s <= 0) {
		*s_out = 0;
		*m_out = m;
		return;
	}
	float best_s = s, best_m = m, best_err = INFINITY;
	for (int it = 0; it < 4; it++) {
		float id = 1 / s, err = 0;
		double sq = 0, sqq = 0, sx = 0, sxq = 0;
		for (int j = 0; j < n; j++) {
			int q = clampi(nearest_int((x[j] + m) * id), 0, nmax);
			float e = s * q - m - x[j];
			err += e * e;
			sq += q;
			sqq += (double)q * q;
			sx += x[j];
			sxq += (double)x[j] * q;
		}
		if (err < best_err) {
			best_err = err;
			best_s = s;
			best_m = m;
		}
		/* least squares for x = s*q - m, with m kept >= 0 */
		double det = n * sqq - sq * sq;
		if (det <= 0)
			break;
		double ns = (n * sxq - sq * sx) / det;
		double nm = -(sx - ns * sq) / n;
		if (nm < 0) {
			nm = 0;
			ns = sqq > 0 ? sxq / sqq : 0;
		}
		if (ns <= 0)
			break;
		s = (float)ns;
		m = (float)nm;
	}
	*s_out = best_s;
	*m_out = best_m;
}

/* Fits x ~ s*q, q in -nneg..nneg-1 (the largest magnitude maps to -nneg), least squares. */
static float fit_sym(const float *x, int n, int nneg)
{
	float max = signed_absmax(x, n, NULL);
	if (max == 0)
		return 0;
	float s = max / -nneg, best_s = s, best_err = INFINITY;
	for (int it = 0; it < 4; it++) {
		float id = 1 / s, err = 0;
		double sxq = 0, sqq = 0;
		for (int j = 0; j < n; j++) {
			int q = clampi(nearest_int(x[j] * id), -nneg, nneg - 1);
			float e = s * q - x[j];
			err += e * e;
			sxq += (double)x[j] * q;
			sqq += (double)q * q;
		}
		if (err < best_err) {
			best_err = err;
			best_s = s;
		}
		if (sqq <= 0 || sxq == 0)
			break;
		s = (float)(sxq / sqq);
	}
	return best_s;
}

/* Affine super-block: sub-block scales/mins quantized to 0..smax against d/dmin, values
 * rounded to 0..nmax with the decoded scale. Fills the deck (q, sc, mn, d, dmin). */
static void quant_affine_k(const float *x, int nsub, int nmax, int smax, struct deck *o)
{
	int len = QK_K / nsub;
	float s[16], m[16], smx = 0, mmx = 0;
	for (int k = 0; k < nsub; k++) {
		fit_affine(x + k * len, len, nmax, &s[k], &m[k]);
		smx = fmaxf(smx, s[k]);
		mmx = fmaxf(mmx, m[k]);
	}
	float d = smx / smax, dmin = mmx / smax;
	/* stored as fp16: decode with exactly the value that will be read back */
	o->d = H2F(F2H(d));
	o->dmin = H2F(F2H(dmin));
	o->nsub = nsub;
	for (int k = 0; k < nsub; k++) {
		o->sc[k] = o->d > 0 ? clampi(nearest_int(s[k] / o->d), 0, smax) : 0;
		o->mn[k] = o->dmin > 0 ? clampi(nearest_int(m[k] / o->dmin), 0, smax) : 0;
		float se = o->d * o->sc[k], me = o->dmin * o->mn[k];
		for (int j = k * len; j < (k + 1) * len; j++)
			o->q[j] = (int8_t)(se > 0 ? clampi(nearest_int((x[j] + me) / se), 0, nmax) : 0);
	}
}

/* Symmetric super-block: sub-block scales quantized to -sneg..sneg-1 against d, values to
 * -nneg..nneg-1. */
static void quant_sym_k(const float *x, int nneg, int sneg, struct deck *o)
{
	float s[16];
	for (int k = 0; k < 16; k++)
		s[k] = fit_sym(x + k * 16, 16, nneg);
	float smax = signed_absmax(s, 16, NULL);
	o->d = H2F(F2H(smax / -sneg));
	o->dmin = 0;
	o->nsub = 16;
	for (int k = 0; k < 16; k++) {
		o->sc[k] = o->d != 0 ? clampi(nearest_int(s[k] / o->d), -sneg, sneg - 1) : 0;
		o->mn[k] = 0;
		float se = o->d * o->sc[k];
		for (int j = k * 16; j < (k + 1) * 16; j++)
			o->q[j] = (int8_t)(se != 0 ? clampi(nearest_int(x[j] / se), -nneg, nneg - 1) : 0);
	}
}

static void q2_K_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q2_K *b = dst;
	struct deck o;
	for (int64_t i = 0; i < n / QK_K; i++) {
		quant_affine_k(src + i * QK_K, 16, 3, 15, &o);
		memset(&b[i], 0, sizeof b[i]);
		for (int e = 0; e < QK_K; e++)
			b[i].qs[(e / 128) * 32 + e % 32] |= (uint8_t)(o.q[e] << (2 * ((e % 128) / 32)));
		for (int s = 0; s < 16; s++)
			b[i].scales[s] = (uint8_t)(o.sc[s] | o.mn[s] << 4);
		b[i].d = F2H(o.d);
		b[i].dmin = F2H(o.dmin);
	}
}

static void q3_K_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q3_K *b = dst;
	struct deck o;
	for (int64_t i = 0; i < n / QK_K; i++) {
		quant_sym_k(src + i * QK_K, 4, 32, &o);
		memset(&b[i], 0, sizeof b[i]);
		for (int e = 0; e < QK_K; e++) {
			int v = o.q[e] + 4; /* 0..7 */
			b[i].qs[(e / 128) * 32 + e % 32] |= (uint8_t)((v & 3) << (2 * ((e % 128) / 32)));
			b[i].hmask[e % 32] |= (uint8_t)((v >> 2) << (e / 32));
		}
		for (int s = 0; s < 16; s++) {
			int v = o.sc[s] + 32; /* 0..63 */
			if (s < 8)
				b[i].scales[s] |= (uint8_t)(v & 0xF);
			else
				b[i].scales[s - 8] |= (uint8_t)((v & 0xF) << 4);
			b[i].scales[8 + (s & 3)] |= (uint8_t)((v >> 4) << (2 * (s >> 2)));
		}
		b[i].d = F2H(o.d);
	}
}

/* Six-bit scales and mins of Q4_K / Q5_K (the inverse of herd_k4_scale_min). */
static void pack_k4_scales(uint8_t s[K_SCALE_BYTES], const int sc[8], const int mn[8])
{
	for (int j = 0; j < 4; j++) {
		s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
		s[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
		s[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4);
	}
}

static void q4_K_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q4_K *b = dst;
	struct deck o;
	for (int64_t i = 0; i < n / QK_K; i++) {
		quant_affine_k(src + i * QK_K, 8, 15, 63, &o);
		memset(&b[i], 0, sizeof b[i]);
		for (int e = 0; e < QK_K; e++)
			b[i].qs[(e / 64) * 32 + e % 32] |= (uint8_t)(o.q[e] << ((e % 64) < 32 ? 0 : 4));
		pack_k4_scales(b[i].scales, o.sc, o.mn);
		b[i].d = F2H(o.d);
		b[i].dmin = F2H(o.dmin);
	}
}

static void q5_K_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q5_K *b = dst;
	struct deck o;
	for (int64_t i = 0; i < n / QK_K; i++) {
		quant_affine_k(src + i * QK_K, 8, 31, 63, &o);
		memset(&b[i], 0, sizeof b[i]);
		for (int e = 0; e < QK_K; e++) {
			b[i].qs[(e / 64) * 32 + e % 32] |= (uint8_t)((o.q[e] & 0xF) << ((e % 64) < 32 ? 0 : 4));
			b[i].qh[e % 32] |= (uint8_t)((o.q[e] >> 4) << (e / 32));
		}
		pack_k4_scales(b[i].scales, o.sc, o.mn);
		b[i].d = F2H(o.d);
		b[i].dmin = F2H(o.dmin);
	}
}

static void q6_K_from_float(const float *src, void *dst, int64_t n)
{
	struct block_q6_K *b = dst;
	struct deck o;
	for (int64_t i = 0; i < n / QK_K; i++) {
		quant_sym_k(src + i * QK_K, 32, 128, &o);
		memset(&b[i], 0, sizeof b[i]);
		for (int e = 0; e < QK_K; e++) {
			int h = e / 128, k = (e % 128) / 32, l = e % 32;
			int v = o.q[e] + 32; /* 0..63 */
			b[i].ql[h * 64 + l + 32 * (k & 1)] |= (uint8_t)((v & 0xF) << (k >= 2 ? 4 : 0));
			b[i].qh[h * 32 + l] |= (uint8_t)((v >> 4) << (2 * k));
		}
		for (int s = 0; s < 16; s++)
			b[i].scales[s] = (int8_t)o.sc[s];
		b[i].d = F2H(o.d);
	}
}

/* ---- the tables ---- */

bool herd_simd_enabled(void)
{
	static int enabled = -1; /* a benign race: every thread computes the same answer */
	if (enabled < 0) {
		const char *e = getenv("HERD_NO_SIMD");
		bool off = e && *e && strcmp(e, "0") != 0;
		__builtin_cpu_init();
		/* F16C from CPUID leaf 1 (ECX bit 29): clang before 15 has no "f16c" for
		 * __builtin_cpu_supports, and the fuzz build uses clang-14 */
		unsigned a, b, c = 0, d;
		bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
		enabled = !off && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
	}
	return enabled;
}

#define OPS(name, vdt) {name##_to_float, name##_from_float, HERD_TYPE_##vdt, name##_vec_dot}

static const struct herd_type_ops ref_ops[HERD_TYPE_COUNT] = {
	[HERD_TYPE_F32] = OPS(f32, F32),
	[HERD_TYPE_F16] = OPS(f16, F32),
	[HERD_TYPE_BF16] = OPS(bf16, F32),
	[HERD_TYPE_Q4_0] = OPS(q4_0, Q8_0),
	[HERD_TYPE_Q4_1] = OPS(q4_1, Q8_1),
	[HERD_TYPE_Q5_0] = OPS(q5_0, Q8_0),
	[HERD_TYPE_Q5_1] = OPS(q5_1, Q8_1),
	[HERD_TYPE_Q8_0] = OPS(q8_0, Q8_0),
	[HERD_TYPE_IQ4_NL] = OPS(iq4_nl, Q8_0),
	[HERD_TYPE_Q2_K] = OPS(q2_K, Q8_K),
	[HERD_TYPE_Q3_K] = OPS(q3_K, Q8_K),
	[HERD_TYPE_Q4_K] = OPS(q4_K, Q8_K),
	[HERD_TYPE_Q5_K] = OPS(q5_K, Q8_K),
	[HERD_TYPE_Q6_K] = OPS(q6_K, Q8_K),
	/* activation-only types: no dot product of their own */
	[HERD_TYPE_Q8_1] = {q8_1_to_float, q8_1_from_float, HERD_TYPE_Q8_1, NULL},
	[HERD_TYPE_Q8_K] = {q8_K_to_float, q8_K_from_float, HERD_TYPE_Q8_K, NULL},
};

const struct herd_type_ops *herd_type_ops_ref(enum herd_type t)
{
	if ((unsigned)t >= HERD_TYPE_COUNT || !ref_ops[t].to_float)
		return NULL;
	return &ref_ops[t];
}

const struct herd_type_ops *herd_type_ops(enum herd_type t)
{
	const struct herd_type_ops *ops = herd_simd_enabled() ? herd_avx2_type_ops(t) : NULL;
	return ops ? ops : herd_type_ops_ref(t);
}

bool herd_type_supported(enum herd_type t)
{
	const struct herd_type_ops *ops = herd_type_ops_ref(t);
	return ops && ops->vec_dot;
}

/* Reference product: one vec_dot per (row, token). */
static void matmul_ref(const struct herd_type_ops *ops, const void *w, size_t w_stride, const void *x,
		       size_t x_stride, int64_t n, int64_t nt, int64_t r0, int64_t r1, float *y, int64_t ldy)
{
	for (int64_t t = 0; t < nt; t++) {
		const void *xt = (const char *)x + t * x_stride;
		for (int64_t r = r0; r < r1; r++)
			y[t * ldy + r] = ops->vec_dot(n, (const char *)w + r * w_stride, xt);
	}
}

void herd_matmul(enum herd_type wtype, const void *w, size_t w_stride, const void *x, size_t x_stride,
		 int64_t n, int64_t nt, int64_t r0, int64_t r1, float *y, int64_t ldy)
{
	const struct herd_type_ops *ops = herd_type_ops(wtype);
	HERD_ASSERT(ops && ops->vec_dot);
	HERD_ASSERT(n % herd_type_block_size(wtype) == 0 && r0 <= r1);
	if (herd_simd_enabled() && herd_avx2_matmul(wtype, w, w_stride, x, x_stride, n, nt, r0, r1, y, ldy))
		return;
	matmul_ref(ops, w, w_stride, x, x_stride, n, nt, r0, r1, y, ldy);
}
