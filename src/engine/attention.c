/* attention — one query head against the cached keys and values of positions 0..n_pos-1:
 * scores = q·k_j · scale, softmax, out = Σ softmax_j · v_j. A plain reference version and an
 * AVX2/FMA one (compiled for those extensions through target attributes, chosen at run time
 * with the quantized kernels: herd_simd_enabled(), so HERD_NO_SIMD=1 selects the reference).
 *
 * The one thing to know: both versions share the softmax (scalar expf, sum in double); they
 * differ only in the order of the float sums of the dot products and in FMA rounding of the
 * weighted sum, which the unit test bounds. */
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
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* The last n % 8 lanes: a mask for maskload / maskstore. */
AVX2 static inline __m256i tail_mask(int32_t rem)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(rem),
				  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

AVX2 static void attend_head_avx2(const float *q, const float *k, const float *v, size_t kv_stride,
				  int32_t n_pos, int32_t hd, float scale, float *sc, float *out)
{
	const int32_t n8 = hd & ~7, rem = hd - n8;
	const __m256i tm = tail_mask(rem);
	float mx = -INFINITY;
	for (int32_t j = 0; j < n_pos; j++) {
		const float *kj = k + (size_t)j * kv_stride;
		__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
		int32_t i = 0;
		for (; i + 16 <= n8; i += 16) {
			a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kj + i), a0);
			a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8),
					     _mm256_loadu_ps(kj + i + 8), a1);
		}
		if (i < n8)
			a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kj + i), a0);
		if (rem)
			a1 = _mm256_fmadd_ps(_mm256_maskload_ps(q + n8, tm),
					     _mm256_maskload_ps(kj + n8, tm), a1);
		float s = hsum8(_mm256_add_ps(a0, a1)) * scale;
		sc[j] = s;
		if (s > mx)
			mx = s;
	}
	softmax_in_place(sc, n_pos, mx);
	/* out = Σ w_j v_j, 8 lanes at a time; a head is at most a few registers wide, so the
	 * accumulators for 32 lanes stay in registers across all positions */
	for (int32_t i0 = 0; i0 < hd; i0 += 32) {
		const int32_t w = hd - i0 < 32 ? hd - i0 : 32;
		const int32_t full = w / 8, r = w % 8;
		const __m256i m = tail_mask(r);
		__m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
				 _mm256_setzero_ps()};
		for (int32_t j = 0; j < n_pos; j++) {
			const float *vj = v + (size_t)j * kv_stride + i0;
			const __m256 wj = _mm256_set1_ps(sc[j]);
			/* constant indices keep acc in registers; the tests are predicted */
#pragma GCC unroll 4
			for (int32_t b = 0; b < 4; b++) {
				if (b < full)
					acc[b] = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 8 * b),
								 acc[b]);
				else if (b == full && r)
					acc[b] = _mm256_fmadd_ps(
					    wj, _mm256_maskload_ps(vj + 8 * b, m), acc[b]);
			}
		}
		for (int32_t b = 0; b < full; b++)
			_mm256_storeu_ps(out + i0 + 8 * b, acc[b]);
		if (r)
			_mm256_maskstore_ps(out + i0 + 8 * full, m, acc[full]);
	}
}
#endif

void herd_attend_head(const float *q, const float *k, const float *v, size_t kv_stride,
		      int32_t n_pos, int32_t hd, float scale, float *sc, float *out)
{
#if defined(__x86_64__)
	if (herd_simd_enabled()) {
		attend_head_avx2(q, k, v, kv_stride, n_pos, hd, scale, sc, out);
		return;
	}
#endif
	herd_attend_head_ref(q, k, v, kv_stride, n_pos, hd, scale, sc, out);
}
