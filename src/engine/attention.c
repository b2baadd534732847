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

/* out[b hd + 0 .. r) = sum over j of w[b n_pos + j] v_j[0 .. r) for nh heads b (r <= 8 lanes of
 * each value row v + j kv_stride). nh is a constant at each call (4 or 1), so that the
 * accumulators stay in registers: with a variable count GCC kept them on the stack. Each lane
 * sums in position order, one FMA a position. */
AVX2 static inline __attribute__((always_inline)) void weigh_values(const float *w, int32_t n_pos,
								    const float *v,
								    size_t kv_stride, int32_t r,
								    int nh, float *out, int32_t hd)
{
	const __m256i m = tail_mask(r);
	__m256 acc[4];
#pragma GCC unroll 4
	for (int b = 0; b < nh; b++)
		acc[b] = _mm256_setzero_ps();
	for (int32_t j = 0; j < n_pos; j++) {
		const float *vj = v + (size_t)j * kv_stride;
		const __m256 x = r == 8 ? _mm256_loadu_ps(vj) : _mm256_maskload_ps(vj, m);
#pragma GCC unroll 4
		for (int b = 0; b < nh; b++)
			acc[b] = _mm256_fmadd_ps(_mm256_set1_ps(w[(size_t)b * (size_t)n_pos + j]),
						 x, acc[b]);
	}
#pragma GCC unroll 4
	for (int b = 0; b < nh; b++) {
		if (r == 8)
			_mm256_storeu_ps(out + (size_t)b * (size_t)hd, acc[b]);
		else
			_mm256_maskstore_ps(out + (size_t)b * (size_t)hd, m, acc[b]);
	}
}

/* herd_attend: the query heads share every key and value row they read. Scores run 8
 * positions at a time (their key rows stay in L1 for all heads), one accumulator each, summed
 * across in one transpose instead of a horizontal sum per position; the weighted sum of values
 * runs 8 lanes at a time for 4 heads (weigh_values), each value chunk loaded once for them. */
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
	for (int32_t i0 = 0; i0 < hd; i0 += 8) {
		const int32_t r = hd - i0 < 8 ? hd - i0 : 8;
		for (int32_t h = 0; h < n_q;) {
			const float *w = sc + (size_t)h * (size_t)n_pos;
			float *o = out + (size_t)h * (size_t)hd + i0;
			if (n_q - h >= 4) {
				weigh_values(w, n_pos, v + i0, kv_stride, r, 4, o, hd);
				h += 4;
			} else {
				weigh_values(w, n_pos, v + i0, kv_stride, r, 1, o, hd);
				h += 1;
			}
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
