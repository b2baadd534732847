/* herd bench — prompt-processing and generation speed of a model on this machine: tokens/s
 * (median of repetitions, with min and max), bytes of weights read per generated token, the
 * effective GB/s, and with --membw the machine's read bandwidth measured in the same run
 * (generation reads every weight once per token, so bandwidth bounds it). */
#define _GNU_SOURCE
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "engine_int.h"
#include "limits.h"

#define USAGE                                                                                      \
	"usage: herd bench -m MODEL [-p 128] [-n 128] [-t THREADS] [-r REPS] [--json] [--membw]\n"
#define MEMBW_BYTES (1u << 30) /* well past any cache */

struct stat3 {
	double med, min, max;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static struct stat3 stats(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return (struct stat3){n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[0], v[n - 1]};
}

struct membw {
	const uint8_t *buf;
	size_t bytes;
	bool prefetch; /* with software prefetch, as the engine's generation kernels read */
	uint64_t sink[64];
};

/* Sum n bytes (a multiple of 256) as 4 streams n/4 apart, 64 bytes of each in turn: without
 * prefetch that is the hardware's prefetchers alone; with it each stream is also prefetched
 * into L1 and into L2 as far ahead as the engine's generation kernels do. */
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p, size_t n, bool prefetch)
{
	__m256i a0 = _mm256_setzero_si256(), a1 = a0;
	const size_t m = n / 4;
	for (size_t i = 0; i + 64 <= m; i += 64)
		for (int s = 0; s < 4; s++) {
			const uint8_t *q = p + (size_t)s * m + i;
			if (prefetch) {
				_mm_prefetch((const char *)q + HERD_PREFETCH_L1_BYTES, _MM_HINT_T0);
				_mm_prefetch((const char *)q + HERD_PREFETCH_L2_BYTES, _MM_HINT_T1);
			}
			a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)q));
			a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(q + 32)));
		}
	a0 = _mm256_add_epi64(a0, a1);
	uint64_t out[4];
	_mm256_storeu_si256((__m256i *)out, a0);
	return out[0] + out[1] + out[2] + out[3];
}

static uint64_t sum_plain(const uint8_t *p, size_t n)
{
	uint64_t s = 0;
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		s += v;
	}
	return s;
}

static void membw_task(void *arg, int ith, int nth)
{
	struct membw *m = arg;
	size_t chunk = m->bytes / (size_t)nth / 256 * 256;
	const uint8_t *p = m->buf + chunk * (size_t)ith;
	m->sink[ith % 64] +=
	    __builtin_cpu_supports("avx2") ? sum_avx2(p, chunk, m->prefetch) : sum_plain(p, chunk);
}

/* The machine's read bandwidth in GB/s with the pool's threads: 1 GiB of huge pages (as the
 * engine gives packed weights) read plainly and read with software prefetch, 5 passes of each
 * in turn; the better of the two medians. The prefetched read is the faster one on some CPUs
 * (here, Intel: 17.4 GB/s against 15 on one thread; 16.6 with the L1 prefetch alone), so that
 * a share of it is a share of what this machine can read, not of what one way of reading
 * gets. */
static double measure_membw(struct herd_pool *pool)
{
	struct membw m = {.bytes = MEMBW_BYTES};
	uint8_t *buf =
	    mmap(NULL, MEMBW_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return 0;
	madvise(buf, MEMBW_BYTES, MADV_HUGEPAGE);
	memset(buf, 1, MEMBW_BYTES);
	m.buf = buf;
	double gbs[2][5];
	for (int r = 0; r < 10; r++) {
		m.prefetch = r % 2;
		double t0 = herd_now_ms();
		herd_pool_run(pool, membw_task, &m);
		gbs[r % 2][r / 2] = (double)MEMBW_BYTES / ((herd_now_ms() - t0) / 1e3) / 1e9;
	}
	munmap(buf, MEMBW_BYTES);
	const double plain = stats(gbs[0], 5).med, ahead = stats(gbs[1], 5).med;
	return plain > ahead ? plain : ahead;
}

/* Peak resident memory of this process so far in bytes (VmHWM), 0 when unknown. */
static uint64_t peak_rss_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t kib = 0;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmHWM:", 6))
			kib = strtoull(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kib * 1024;
}

int herd_cmd_bench(int argc, char **argv)
{
	const char *path = NULL;
	int n_prompt = 128, n_gen = 128, n_threads = 0, reps = 5;
	bool json = false, membw = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int *num = !strcmp(a, "-p")   ? &n_prompt
			   : !strcmp(a, "-n") ? &n_gen
			   : !strcmp(a, "-t") ? &n_threads
			   : !strcmp(a, "-r") ? &reps
					      : NULL;
		long lo = num == &n_threads ? 0 : 1, val;
		long hi = num == &reps	      ? 100
			  : num == &n_threads ? HERD_MAX_THREADS
					      : HERD_MAX_BATCH;
		if (!strcmp(a, "-m") && v) {
			path = v, i++;
		} else if (num) {
			if (!herd_cli_parse_long(v, lo, hi, &val))
				return herd_cli_usage("bench", USAGE,
						      "%s: must be an integer %ld..%ld, got '%s'",
						      a, lo, hi, v ? v : "");
			*num = (int)val, i++;
		} else if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "--membw")) {
			membw = true;
		} else {
			return herd_cli_usage("bench", USAGE, "unknown or incomplete argument '%s'",
					      a);
		}
	}
	if (!path)
		return herd_cli_usage("bench", USAGE, "-m MODEL is required");

	struct herd_model *m;
	if (herd_model_load(path, &m)) {
		fprintf(stderr, "herd bench: %s\n", herd_last_error());
		return 1;
	}
	const struct herd_model_info *info = herd_model_info(m);
	struct herd_ctx_params cp = herd_ctx_default_params();
	cp.n_ctx = (n_prompt > n_gen ? n_prompt : n_gen) + 1;
	cp.n_threads = n_threads;
	cp.n_batch = n_prompt;
	struct herd_ctx *c;
	if (herd_ctx_new(m, &cp, &c)) {
		fprintf(stderr, "herd bench: %s\n", herd_last_error());
		herd_model_free(m);
		return 1;
	}
	int32_t *toks = herd_xmalloc((size_t)n_prompt * sizeof *toks);
	uint64_t x = 12345;
	for (int i = 0; i < n_prompt; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		toks[i] = (int32_t)((x >> 33) % (uint64_t)info->n_vocab);
	}
	double *pp = herd_xcalloc((size_t)reps, sizeof *pp),
	       *tg = herd_xcalloc((size_t)reps, sizeof *tg),
	       *bw = herd_xcalloc((size_t)reps, sizeof *bw),
	       *share = herd_xcalloc((size_t)reps, sizeof *share);
	/* The bandwidth is measured right after each repetition's generation: on a shared machine
	 * it moves between runs, and a share is only meaningful against the bandwidth of its time.
	 */
	struct herd_pool *pool = membw ? herd_pool_new(n_threads) : NULL;
	uint64_t rss = 0;
	enum herd_err e = HERD_OK;
	/* one untimed round first: page in the weights, warm the caches */
	for (int r = -1; r < reps && !e; r++) {
		herd_ctx_reset(c);
		double t0 = herd_now_ms();
		if ((e = herd_ctx_eval(c, toks, n_prompt, false)))
			break;
		double t1 = herd_now_ms();
		/* generation from an empty context, as llama-bench's tg */
		herd_ctx_reset(c);
		int32_t tok = toks[0];
		for (int i = 0; i < n_gen && !e; i++) {
			e = herd_ctx_eval(c, &tok, 1, false);
			tok = (tok * 7 + 13) %
			      info->n_vocab; /* the next id does not change the work */
		}
		double t2 = herd_now_ms();
		if (r < 0) /* before any bandwidth buffer: the model, its KV cache and the rest */
			rss = peak_rss_bytes();
		if (r >= 0) {
			pp[r] = n_prompt / ((t1 - t0) / 1e3);
			tg[r] = n_gen / ((t2 - t1) / 1e3);
			if (pool) {
				bw[r] = measure_membw(pool);
				share[r] = tg[r] * (double)info->weight_bytes / 1e9 / bw[r];
			}
		}
	}
	if (e) {
		fprintf(stderr, "herd bench: %s\n", herd_last_error());
		goto out;
	}
	struct stat3 sp = stats(pp, reps), sg = stats(tg, reps);
	double gbs = sg.med * (double)info->weight_bytes / 1e9;
	const uint64_t kv = 2ull * (uint64_t)info->n_layer * (uint64_t)herd_ctx_n_ctx(c) *
			    (uint64_t)(info->n_embd / info->n_head * info->n_head_kv) *
			    sizeof(float);
	const double bw_med = stats(bw, reps).med, share_med = stats(share, reps).med;
	int threads = n_threads ? n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (json) {
		json_t *o = json_pack("{s:s, s:s, s:I, s:i, s:i, s:i, s:{s:f, s:f, s:f}, s:{s:f, "
				      "s:f, s:f}, s:I, s:f}",
				      "model", path, "name", info->name, "file_bytes",
				      (json_int_t)info->file_bytes, "threads", threads, "n_prompt",
				      n_prompt, "n_gen", n_gen, "pp_tok_s", "median", sp.med, "min",
				      sp.min, "max", sp.max, "tg_tok_s", "median", sg.med, "min",
				      sg.min, "max", sg.max, "weight_bytes_per_token",
				      (json_int_t)info->weight_bytes, "tg_gb_s", gbs);
		json_object_set_new(o, "peak_rss_bytes", json_integer((json_int_t)rss));
		json_object_set_new(o, "kv_cache_bytes", json_integer((json_int_t)kv));
		if (membw) {
			json_object_set_new(o, "membw_gb_s", json_real(bw_med));
			json_object_set_new(o, "tg_share_of_membw", json_real(share_med));
		}
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(o);
	} else {
		printf("model      %s (%s, %.1f MB)\n", path, info->name, info->file_bytes / 1e6);
		printf("threads    %d, %d repetitions\n", threads, reps);
		printf("prompt     %6.1f tok/s  (pp%d; min %.1f, max %.1f)\n", sp.med, n_prompt,
		       sp.min, sp.max);
		printf("generate   %6.1f tok/s  (tg%d; min %.1f, max %.1f)\n", sg.med, n_gen,
		       sg.min, sg.max);
		printf("weights    %.1f MB read per token, %.2f GB/s\n", info->weight_bytes / 1e6,
		       gbs);
		printf("memory     %.1f MB peak resident (file %.1f MB, KV cache %.1f MB)\n",
		       rss / 1e6, info->file_bytes / 1e6, kv / 1e6);
		if (membw)
			printf(
			    "membw      %.2f GB/s read; generation at %.0f%% of it (median of each "
			    "repetition's share)\n",
			    bw_med, 100 * share_med);
	}
out:
	herd_pool_free(pool);
	free(pp);
	free(tg);
	free(bw);
	free(share);
	free(toks);
	herd_ctx_free(c);
	herd_model_free(m);
	return e ? 1 : 0;
}
