/* attention — the query heads that share one KV head against its cached keys and values of
 * positions 0..n_pos-1: scores = q·k_j · scale, softmax, out = Σ softmax_j · v_j. A plain reference
 * version and an AVX2/FMA one (compiled for those extensions through target attributes, chosen at
 * run time with the quantized kernels: herd_simd_enabled(), so HERD_NO_SIMD=1 selects the
 * reference).
 *
 * The one thing to know: the versions differ in the order of the float sums of the dot
 * products, in the exponential of the softmax (libm's expf, or a vector one within 2 ulp) and
 * in FMA rounding of the weighted sum, all of which the unit test bounds. Both sum the softmax
 * in double. The AVX2 scores run 8 positions at a time, summed across in one transpose. */
#include <math.h>
#include <string.h>

#include "quant_int.h"

static void softmax_in_place(float *sc, int32_t n_pos, float mx)
{
	double sum = 0;
	for (int32_t j = 0; j < n_pos; j++) {
		sc[j] = expf(sc[j] - mx);
		sum += sc[j];
	}
	const float inv = (float)(1.0 / sum);
	for (int32_t j = 0; j < n_pos; j++)
		sc[j] *= inv;
}

void herd_attend_head_ref(const float *q, const float *k, const float *v, size_t kv_stride,
			  int32_t n_pos, int32_t hd, float scale, float *sc, float *out)
{
	float mx = -INFINITY;
	for (int32_t j = 0; j < n_pos; j++) {
		const float *kj = k + (size_t)j * kv_stride;
		float s = 0;
		for (int32_t i = 0; i < hd; i++)
			s += q[i] * kj[i];
		s *= scale;
		sc[j] = s;
		if (s > mx)
			mx = s;
	}
	softmax_in_place(sc, n_pos, mx);
	memset(out, 0, (size_t)hd * sizeof *out);
	for (int32_t j = 0; j < n_pos; j++) {
		const float *vj = v + (size_t)j * kv_stride;
		const float wj = sc[j];
		for (int32_t i = 0; i < hd; i++)
			out[i] += wj * vj[i];
	}
}

#if defined(__x86_64__)
#include "avx2_math.h"

AVX2 static inline float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

AVX2 static inline float hmax8(__m256 v)
{
	__m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	m = _mm_max_ps(m, _mm_movehl_ps(m, m));
	m = _mm_max_ss(m, _mm_movehdup_ps(m));
	return _mm_cvtss_f32(m);
}

/* softmax_in_place with exp8, 8 weights at a time (the max found here, the sum still in
 * double). */
AVX2 static void softmax_avx2(float *sc, int32_t n_pos)
{
	__m256 m8 = _mm256_set1_ps(-INFINITY);
	int32_t j = 0;
	for (; j + 8 <= n_pos; j += 8)
		m8 = _mm256_max_ps(m8, _mm256_loadu_ps(sc + j));
	float mx = hmax8(m8);
	for (; j < n_pos; j++)
		if (sc[j] > mx)
			mx = sc[j];
	const __m256 m = _mm256_set1_ps(mx);
	__m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
	for (j = 0; j + 8 <= n_pos; j += 8) {
		const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + j), m));
		_mm256_storeu_ps(sc + j, e);
		s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
		s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
	}
	double part[4], sum = 0;
	_mm256_storeu_pd(part, _mm256_add_pd(s0, s1));
	for (int i = 0; i < 4; i++)
		sum += part[i];
	for (; j < n_pos; j++) {
		sc[j] = expf(sc[j] - mx);
		sum += sc[j];
	}
	const float inv = (float)(1.0 / sum);
	const __m256 iv = _mm256_set1_ps(inv);
	for (j = 0; j + 8 <= n_pos; j += 8)
		_mm256_storeu_ps(sc + j, _mm256_mul_ps(_mm256_loadu_ps(sc + j), iv));
	for (; j < n_pos; j++)
		sc[j] *= inv;
}

/* The 8 sums of a[0..7]'s lanes, in lane order. */
AVX2 static inline __m256 hsum8x8(const __m256 *a)
{
	const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]),
		     t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
	const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
	return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
			     _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* q · k_j, hd = n8 + rem floats. */
AVX2 static inline float dot(const float *q, const float *kj, int32_t n8, int32_t rem, __m256i tm)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	int32_t i = 0;
	for (; i + 16 <= n8; i += 16) {
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kj + i), a0);
		a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(kj + i + 8), a1);
	}
	if (i < n8)
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kj + i), a0);
	if (rem)
		a1 = _mm256_fmadd_ps(_mm256_maskload_ps(q + n8, tm),
				     _mm256_maskload_ps(kj + n8, tm), a1);
	return hsum8(_mm256_add_ps(a0, a1));
}

/* out[b hd + i] = sum over j of w[b n_pos + j] v_j[i] for nh heads b and the first i < 8 (nd - 1)
 * + r lanes of each value row v_j = v + j kv_stride: nd vectors, the last with r (1..8) lanes.
 * nh (4 or 1) and nd (2 or 1) are constants at each call, so that the nh x nd accumulators stay
 * in registers: with a variable count GCC kept them on the stack. 4 x 2 of them are 8
 * independent FMA chains, enough to hide an FMA's latency (4 x 1 waited on it). Each lane sums in
 * position order, one FMA a position. */
AVX2 static inline __attribute__((always_inline)) void
weigh_values(const float *w, int32_t n_pos, const float *v, size_t kv_stride, int nh, int nd,
	     int32_t r, float *out, int32_t hd)
{
	const __m256i m = tail_mask(r);
	__m256 acc[4][2];
#pragma GCC unroll 4
	for (int b = 0; b < nh; b++)
#pragma GCC unroll 2
		for (int d = 0; d < nd; d++)
			acc[b][d] = _mm256_setzero_ps();
	for (int32_t j = 0; j < n_pos; j++) {
		const float *vj = v + (size_t)j * kv_stride;
		__m256 x[2];
#pragma GCC unroll 2
		for (int d = 0; d < nd; d++)
			x[d] = d < nd - 1 || r == 8 ? _mm256_loadu_ps(vj + 8 * d)
						    : _mm256_maskload_ps(vj + 8 * d, m);
#pragma GCC unroll 4
		for (int b = 0; b < nh; b++) {
			const __m256 wb = _mm256_set1_ps(w[(size_t)b * (size_t)n_pos + j]);
#pragma GCC unroll 2
			for (int d = 0; d < nd; d++)
				acc[b][d] = _mm256_fmadd_ps(wb, x[d], acc[b][d]);
		}
	}
#pragma GCC unroll 4
	for (int b = 0; b < nh; b++)
#pragma GCC unroll 2
		for (int d = 0; d < nd; d++) {
			float *o = out + (size_t)b * (size_t)hd + 8 * d;
			if (d < nd - 1 || r == 8)
				_mm256_storeu_ps(o, acc[b][d]);
			else
				_mm256_maskstore_ps(o, m, acc[b][d]);
		}
}

/* herd_attend: the query heads share every key and value row they read. Scores run 8
 * positions at a time (their key rows stay in L1 for all heads), one accumulator each, summed
 * across in one transpose instead of a horizontal sum per position; the weighted sum of values
 * runs 16 lanes at a time for 4 heads (weigh_values), each value chunk loaded once for them. */
AVX2 static void attend_avx2(const float *q, int32_t n_q, const float *k, const float *v,
			     size_t kv_stride, int32_t n_pos, int32_t hd, float scale, float *sc,
			     float *out)
{
	const int32_t n8 = hd & ~7, rem = hd - n8;
	const __m256i tm = tail_mask(rem);
	int32_t j = 0;
	for (; j + 8 <= n_pos; j += 8) {
		const float *kj = k + (size_t)j * kv_stride;
		/* the next block's key rows and this block's value rows, for the weighted sum
		 * below: between two tokens the weights streamed past and evicted them */
		for (int p = 0; p < 8; p++)
			for (int32_t i = 0; i < hd; i += 16) {
				if (j + 8 + p < n_pos)
					_mm_prefetch(
					    (const char *)(kj + (size_t)(8 + p) * kv_stride + i),
					    _MM_HINT_T0);
				_mm_prefetch((const char *)(v + (size_t)(j + p) * kv_stride + i),
					     _MM_HINT_T0);
			}
		for (int32_t h = 0; h < n_q; h++) {
			const float *qh = q + (size_t)h * (size_t)hd;
			__m256 a[8];
#pragma GCC unroll 8
			for (int p = 0; p < 8; p++)
				a[p] = _mm256_setzero_ps();
			for (int32_t i = 0; i < n8; i += 8) {
				const __m256 qi = _mm256_loadu_ps(qh + i);
#pragma GCC unroll 8
				for (int p = 0; p < 8; p++)
					a[p] = _mm256_fmadd_ps(
					    qi, _mm256_loadu_ps(kj + (size_t)p * kv_stride + i),
					    a[p]);
			}
			if (rem) {
				const __m256 qi = _mm256_maskload_ps(qh + n8, tm);
#pragma GCC unroll 8
				for (int p = 0; p < 8; p++)
					a[p] = _mm256_fmadd_ps(
					    qi,
					    _mm256_maskload_ps(kj + (size_t)p * kv_stride + n8, tm),
					    a[p]);
			}
			_mm256_storeu_ps(sc + (size_t)h * (size_t)n_pos + j,
					 _mm256_mul_ps(hsum8x8(a), _mm256_set1_ps(scale)));
		}
	}
	for (; j < n_pos; j++)
		for (int32_t h = 0; h < n_q; h++)
			sc[(size_t)h * (size_t)n_pos + j] =
			    dot(q + (size_t)h * (size_t)hd, k + (size_t)j * kv_stride, n8, rem,
				tm) *
			    scale;
	for (int32_t h = 0; h < n_q; h++)
		softmax_avx2(sc + (size_t)h * (size_t)n_pos, n_pos);
	for (int32_t i0 = 0; i0 < hd; i0 += 16) {
		const int32_t left = hd - i0, r = left > 8 ? (left > 16 ? 8 : left - 8) : left;
		for (int32_t h = 0; h < n_q;) {
			const int nh = n_q - h >= 4 ? 4 : 1;
			const float *w = sc + (size_t)h * (size_t)n_pos, *vi = v + i0;
			float *o = out + (size_t)h * (size_t)hd + i0;
			if (nh == 4 && left > 8)
				weigh_values(w, n_pos, vi, kv_stride, 4, 2, r, o, hd);
			else if (nh == 4)
				weigh_values(w, n_pos, vi, kv_stride, 4, 1, r, o, hd);
			else if (left > 8)
				weigh_values(w, n_pos, vi, kv_stride, 1, 2, r, o, hd);
			else
				weigh_values(w, n_pos, vi, kv_stride, 1, 1, r, o, hd);
			h += nh;
		}
	}
}
#endif

void herd_attend(const float *q, int32_t n_q, const float *k, const float *v, size_t kv_stride,
		 int32_t n_pos, int32_t hd, float scale, float *sc, float *out)
{
#if defined(__x86_64__)
	if (herd_simd_enabled()) {
		attend_avx2(q, n_q, k, v, kv_stride, n_pos, hd, scale, sc, out);
		return;
	}
#endif
	for (int32_t h = 0; h < n_q; h++)
		herd_attend_head_ref(q + (size_t)h * (size_t)hd, k, v, kv_stride, n_pos, hd, scale,
				     sc + (size_t)h * (size_t)n_pos, out + (size_t)h * (size_t)hd);
}
