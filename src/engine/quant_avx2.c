/* quant_avx2 — AVX2 + FMA + F16C kernels, chosen at run time (placeholder until they land). */
#include <stdlib.h>

#include "quant_int.h"

bool herd_simd_enabled(void)
{
	static int enabled = -1;
	if (enabled < 0) {
		const char *e = getenv("HERD_NO_SIMD");
		__builtin_cpu_init();
		enabled = !(e && *e && *e != '0') && __builtin_cpu_supports("avx2") &&
			  __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
	}
	return enabled;
}

const struct herd_type_ops *herd_avx2_type_ops(enum herd_type t)
{
	(void)t;
	return NULL;
}

bool herd_avx2_matmul(enum herd_type wtype, const void *w, size_t w_stride, const void *x, size_t x_stride,
		      int64_t n, int64_t nt, int64_t r0, int64_t r1, float *y, int64_t ldy)
{
	return false;
}
