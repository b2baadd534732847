/* quant_simd — what the SIMD kernel files share. Include it after the file's
 * `#pragma GCC target`, so that these compile for that file's extensions. The horizontal sum
 * is one definition on purpose: the AVX2 and AVX-512 kernels must give the same bits. */
#ifndef HERD_QUANT_SIMD_H
#define HERD_QUANT_SIMD_H

#include <immintrin.h>

#include "quant_int.h"

#define INLINE static inline __attribute__((always_inline))

INLINE float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

INLINE float h2f(herd_half h)
{
	return _cvtsh_ss(h);
}

#endif
