/* quant_simd — what the SIMD kernel files (quant_avx2.c, quant_x16_avx2.c, quant_x16_avx512.c) share. Include it after
 * the file's `#pragma GCC target`, so that these compile for that file's extensions. */
#ifndef HERD_QUANT_SIMD_H
#define HERD_QUANT_SIMD_H

#include <immintrin.h>

#include "quant_int.h"

#define INLINE static inline __attribute__((always_inline))

INLINE float h2f(herd_half h)
{
	return _cvtsh_ss(h);
}

#endif
