/* avx2_math — float helpers for the AVX2 code compiled by target attribute (attention.c,
 * activation.c): a mask for a row's last n % 8 floats and e^x on 8 floats. Included by those
 * files only, on x86-64. */
#ifndef HERD_AVX2_MATH_H
#define HERD_AVX2_MATH_H

#include <immintrin.h>
#include <stdint.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* The first rem (< 8) lanes: a mask for maskload / maskstore. */
AVX2 static inline __m256i tail_mask(int32_t rem)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(rem),
				  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* e^x for x <= 0 (softmax's inputs), within 2 ulp: e^x = 2^n e^r with n = round(x / ln 2) and
 * |r| <= ln 2 / 2, e^r by its Taylor series to r^7 (the rest is below 5e-9 relative); 0 below
 * -87.3, where 2^n would leave the normal floats (expf gives 1e-38 and less there). */
AVX2 static inline __m256 exp8(__m256 x)
{
	const __m256 lim = _mm256_set1_ps(-87.3f);
	const __m256 keep = _mm256_cmp_ps(x, lim, _CMP_GE_OQ);
	x = _mm256_max_ps(x, lim);
	const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
					 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	/* r = x - n ln 2, ln 2 split in a part exact in float times n and the rest */
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860682e-6f), r);
	__m256 p = _mm256_set1_ps(1.0f / 5040);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
	const __m256i e =
	    _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
	return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

#endif
