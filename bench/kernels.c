/* kernels — speed of the matrix kernels per tensor type, one thread: GB/s of weights streamed
 * by the matrix-vector product (generation), and GFLOP/s of the tiled product with 128 tokens
 * (prompt processing), on a 2048 x 5632 matrix (tinyllama's ffn_up: larger than the caches).
 * "pp tok/s" estimates prompt tokens/s of a whole tinyllama-1.1b (0.97e9 matmul weights) at
 * that rate on one thread.
 *
 * usage: bench_kernels [TYPE...]   (default: all types). HERD_NO_SIMD=1 measures the reference;
 * HERD_BENCH_CPUTIME=1 times with the thread's CPU clock (steadier on a shared machine). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_int.h"

static const enum herd_type all[] = {HERD_TYPE_Q8_0, HERD_TYPE_Q4_0, HERD_TYPE_F16,  HERD_TYPE_Q4_K,
				     HERD_TYPE_Q6_K, HERD_TYPE_Q4_1, HERD_TYPE_Q5_0, HERD_TYPE_Q5_1,
				     HERD_TYPE_Q2_K, HERD_TYPE_Q3_K, HERD_TYPE_Q5_K, HERD_TYPE_IQ4_NL,
				     HERD_TYPE_BF16, HERD_TYPE_F32};

static bool use_cputime;

static double now_ms(void)
{
	if (!use_cputime)
		return herd_now_ms();
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	use_cputime = getenv("HERD_BENCH_CPUTIME") && strcmp(getenv("HERD_BENCH_CPUTIME"), "0") != 0;
	const int64_t n = 2048, rows = 5632, nt = 128;
	enum herd_type types[32];
	int ntypes = 0;
	for (int i = 1; i < argc && ntypes < 32; i++)
		if (!herd_type_from_name(argv[i], &types[ntypes++])) {
			fprintf(stderr, "bench_kernels: unknown type '%s'\n", argv[i]);
			return 2;
		}
	if (!ntypes) {
		ntypes = sizeof all / sizeof all[0];
		memcpy(types, all, sizeof all);
	}
	float *f = malloc(n * rows * sizeof *f);
	uint32_t s = 1;
	for (int64_t i = 0; i < n * rows; i++) {
		s = s * 1664525u + 1013904223u;
		f[i] = ((int32_t)s >> 8) * (1.0f / (1 << 23)) * 0.05f;
	}
	float *y = malloc(nt * rows * sizeof *y);
	printf("%-7s %10s %12s %12s %10s\n", "type", "mv GB/s", "mv ms", "pp GFLOP/s", "pp tok/s");
	for (int k = 0; k < ntypes; k++) {
		enum herd_type t = types[k];
		const struct herd_type_ops *ops = herd_type_ops(t);
		if (!ops || !ops->vec_dot)
			continue;
		size_t ws = herd_type_row_bytes(t, n);
		enum herd_type xt = ops->vec_dot_type;
		size_t xs = herd_type_row_bytes(xt, n);
		char *w = malloc(ws * rows), *x = malloc(xs * nt);
		ops->from_float(f, w, n * rows);
		herd_type_ops(xt)->from_float(f, x, n * nt);
		/* matrix-vector: best of 5 */
		double best = 1e30;
		for (int it = 0; it < 5; it++) {
			double t0 = now_ms();
			herd_matmul(t, w, ws, x, xs, n, 1, 0, rows, y, rows);
			double dt = now_ms() - t0;
			best = dt < best ? dt : best;
		}
		double gbs = ws * rows / (best * 1e6);
		/* 128 tokens: best of 2 */
		double bpp = 1e30;
		for (int it = 0; it < 2; it++) {
			double t0 = now_ms();
			herd_matmul(t, w, ws, x, xs, n, nt, 0, rows, y, rows);
			double dt = now_ms() - t0;
			bpp = dt < bpp ? dt : bpp;
		}
		double gflops = 2.0 * n * rows * nt / (bpp * 1e6);
		printf("%-7s %10.2f %12.3f %12.2f %10.2f\n", herd_type_name(t), gbs, best, gflops,
		       gflops * 1e9 / (2 * 0.97e9));
		free(w);
		free(x);
	}
	free(f);
	free(y);
	return 0;
}
