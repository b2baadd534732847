/* quant_x16 — what the packed-matrix files share: the layout's constants and the table of
 * kernels that quant_x16_avx512.c and quant_x16_avx2.c each fill for Q8_0 and Q4_0, and that
 * quant_x16.c (layout, packing, dispatch) calls through. */
#ifndef HERD_QUANT_X16_H
#define HERD_QUANT_X16_H

#include <immintrin.h>

#include "quant_int.h"

#define X16_G 16 /* rows per group */
#define X16_TT 4 /* most tokens per prompt pass over a group's blocks */

/* Generation's prefetches (how far ahead: engine_int.h). The helpers are INLINE: as plain
 * inline functions GCC did not inline them into the kernels at -O2, and the prefetches were
 * lost. One line into L1, or into L2 when l2 (the hint must be a constant where the build does
 * not optimize: a branch, which the kernels' inlining removes). */
INLINE void x16_prefetch_line(const uint8_t *p, bool l2)
{
	if (l2)
		_mm_prefetch((const char *)p, _MM_HINT_T1);
	else
		_mm_prefetch((const char *)p, _MM_HINT_T0);
}

INLINE void x16_prefetch(const uint8_t *p, size_t bytes, bool l2)
{
#pragma GCC unroll 8
	for (size_t k = 0; k < bytes; k += 64)
		x16_prefetch_line(p + k, l2);
}

/* Prefetches one block (qb bytes) of a generation stream, off bytes on from the start of group
 * p's weights (end bytes a group); past their end, in the group the stream reads in a later
 * pass (step bytes a pass on), with that group's scales for the block. */
INLINE void x16_prefetch_stream(const uint8_t *p, size_t step, size_t end, size_t qb, size_t off,
				bool l2)
{
	if (off >= end) {
		do {
			off -= end;
			p += step;
		} while (off >= end);
		x16_prefetch_line(p + end + off / qb * 32, l2);
	}
	x16_prefetch(p + off, qb, l2);
}

/* The prefetches for block i of generation's stream g (of ng streams, groups gb bytes apart, q
 * bytes a block), into L1 and into L2, each as far ahead in what the stream reads: in the
 * group's weights, and past their end in the groups the next passes read (ng groups on each),
 * with their scales. Without the part past the end, every pass started its other streams cold
 * (one thread, 1 GB of AVX2 Q4_0: 70% of a plain read's speed instead of 77%). */
INLINE void x16_prefetch_ahead(const uint8_t *q, size_t gb, int64_t nb, size_t qb, int ng, int g,
			       int64_t i)
{
	const uint8_t *p = q + (size_t)g * gb;
	const size_t end = (size_t)nb * qb, step = (size_t)ng * gb, off = (size_t)i * qb;
	x16_prefetch_stream(p, step, end, qb, off + HERD_PREFETCH_L1_BYTES, false);
	x16_prefetch_stream(p, step, end, qb, off + HERD_PREFETCH_L2_BYTES, true);
}

/* Bytes of one block's q part for a group: 16 rows x 32 elements. */
static inline size_t x16_block_q(enum herd_type t)
{
	return t == HERD_TYPE_Q8_0 ? X16_G * QK : X16_G * QK / 2;
}

/* One instruction set's kernels for one type. q: a group's bytes; gb: bytes between groups;
 * nb: blocks a row. rows_wide: `wide` groups (rows1: one) against one token, into
 * y[0 .. 16 x groups); tokens[nt]: one group against nt (2..X16_TT) tokens, into y[t][0..15]. */
struct x16_kernels {
	int wide;
	int offset; /* what makes the weights unsigned: the sums start at -offset x sum(x) */
	void (*rows1)(const uint8_t *q, size_t gb, int64_t nb, const struct block_q8_0 *x,
		      const struct herd_x16_xblock *xb, float *y);
	void (*rows_wide)(const uint8_t *q, size_t gb, int64_t nb, const struct block_q8_0 *x,
			  const struct herd_x16_xblock *xb, float *y);
	void (*tokens[X16_TT + 1])(const uint8_t *q, int64_t nb, const struct block_q8_0 *const *x,
				   const struct herd_x16_xblock *xb, float *const *y);
};

/* o's blocks for token x (nb blocks): start = -off x sum(x), d = d_x (quant_x16_avx2.c; every
 * CPU that runs either kernel set has AVX2). */
void herd_x16_prepare(const struct block_q8_0 *x, int64_t nb, int off, struct herd_x16_xblock *o);

/* The kernels for Q8_0 or Q4_0. The AVX-512 ones take Q8_0 stored as w + 128, the AVX2 ones
 * as w (quant_x16.c packs for the set the CPU runs). */
const struct x16_kernels *herd_x16_avx512_kernels(enum herd_type t);
const struct x16_kernels *herd_x16_avx2_kernels(enum herd_type t);

#endif
