/* quant_simd — what the SIMD kernel files (quant_avx2.c, quant_x16_avx2.c, quant_x16_avx512.c)
 * share. Include it after the file's `#pragma GCC target`, so that these compile for that
 * file's extensions. */
#ifndef HERD_QUANT_SIMD_H
#define HERD_QUANT_SIMD_H

#include <immintrin.h>

#include "quant_int.h"

INLINE float h2f(herd_half h)
{
	return _cvtsh_ss(h);
}

/* int16 pairs summed to int32 (VPMADDWD by 1) */
INLINE __m256i widen(__m256i p)
{
	return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* unsigned bytes u x signed bytes s, each 4 neighbouring products summed into one int32 lane */
INLINE __m256i dot_u8i8(__m256i u, __m256i s)
{
	return widen(_mm256_maddubs_epi16(u, s));
}

#endif
