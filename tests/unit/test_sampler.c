/* sampler: each stage on hand-made logits whose answer is known in advance. Where a stage
 * makes a random draw, the test draws many times (seeded, so the counts are reproducible)
 * and checks the set of ids that can appear exactly and the frequencies within a bound far
 * wider than the sampling noise (20000 draws: standard deviation below 0.004). */
#include "herd_test.h"

#include <math.h>
#include <string.h>

#include "engine.h"

#define DRAWS 20000

static struct herd_sampler_params plain(float temp)
{
	struct herd_sampler_params p = herd_sampler_default_params();
	p.temperature = temp;
	p.top_k = 0;
	p.top_p = 1.0f;
	p.min_p = 0.0f;
	p.repeat_penalty = 1.0f;
	p.seed = 1234;
	return p;
}

/* Frequencies of each id over DRAWS draws. */
static void histogram(const struct herd_sampler_params *p, const float *logits, int n, double *freq)
{
	struct herd_sampler *s = herd_sampler_new(p, n);
	assert_non_null(s);
	int counts[64] = {0};
	for (int i = 0; i < DRAWS; i++) {
		int32_t id = herd_sampler_sample(s, logits);
		assert_true(id >= 0 && id < n);
		counts[id]++;
	}
	for (int i = 0; i < n; i++)
		freq[i] = (double)counts[i] / DRAWS;
	herd_sampler_free(s);
}

/* logits whose softmax is exactly probs (up to float rounding) */
static void logits_of(const double *probs, int n, float *logits)
{
	for (int i = 0; i < n; i++)
		logits[i] = (float)log(probs[i]);
}

static void greedy_picks_argmax_lowest_id_on_ties(void **state)
{
	(void)state;
	struct herd_sampler_params p = plain(0.0f);
	p.top_k = 40; /* ignored when greedy */
	struct herd_sampler *s = herd_sampler_new(&p, 6);
	assert_non_null(s);
	const float a[6] = {0.5f, -1.0f, 3.25f, 3.0f, -7.0f, 1.0f};
	assert_int_equal(herd_sampler_sample(s, a), 2);
	const float tie[6] = {1.0f, 4.0f, 2.0f, 4.0f, 4.0f, 0.0f};
	assert_int_equal(herd_sampler_sample(s, tie), 1);
	herd_sampler_free(s);
}

static void temperature_scales_the_distribution(void **state)
{
	(void)state;
	const double probs[2] = {0.25, 0.75};
	float logits[2];
	logits_of(probs, 2, logits);
	double f[2];
	struct herd_sampler_params p = plain(1.0f);
	histogram(&p, logits, 2, f);
	assert_true(fabs(f[1] - 0.75) < 0.02);
	/* T = 0.5 doubles the logits: p ∝ (1/4)^2 : (3/4)^2 = 1 : 9 */
	p = plain(0.5f);
	histogram(&p, logits, 2, f);
	assert_true(fabs(f[1] - 0.9) < 0.02);
	/* T = 2 halves them: p ∝ sqrt(1) : sqrt(3) */
	p = plain(2.0f);
	histogram(&p, logits, 2, f);
	assert_true(fabs(f[1] - sqrt(3.0) / (1.0 + sqrt(3.0))) < 0.02);
}

static void top_k_keeps_exactly_k(void **state)
{
	(void)state;
	const double probs[5] = {0.1, 0.3, 0.05, 0.4, 0.15};
	float logits[5];
	logits_of(probs, 5, logits);
	double f[5];
	struct herd_sampler_params p = plain(1.0f);
	p.top_k = 2; /* ids 3 and 1, renormalised to 4:3 */
	histogram(&p, logits, 5, f);
	assert_true(f[0] == 0 && f[2] == 0 && f[4] == 0);
	assert_true(fabs(f[3] - 4.0 / 7.0) < 0.02);
	p.top_k = 1;
	histogram(&p, logits, 5, f);
	assert_true(f[3] == 1.0);
}

static void top_p_keeps_the_smallest_prefix_reaching_p(void **state)
{
	(void)state;
	const double probs[4] = {0.15, 0.5, 0.05, 0.3};
	float logits[4];
	logits_of(probs, 4, logits);
	double f[4];
	struct herd_sampler_params p = plain(1.0f);
	p.top_p = 0.7f; /* 0.5 < 0.7 <= 0.8: ids 1 and 3 */
	histogram(&p, logits, 4, f);
	assert_true(f[0] == 0 && f[2] == 0);
	assert_true(fabs(f[1] - 0.5 / 0.8) < 0.02);
	p.top_p = 0.9f; /* 0.8 < 0.9 <= 0.95: ids 1, 3 and 0 */
	histogram(&p, logits, 4, f);
	assert_true(f[2] == 0 && f[0] > 0.1);
	assert_true(fabs(f[0] - 0.15 / 0.95) < 0.02);
	p.top_p = 0.4f; /* the best alone already reaches it */
	histogram(&p, logits, 4, f);
	assert_true(f[1] == 1.0);
}

static void min_p_drops_tokens_below_a_fraction_of_the_best(void **state)
{
	(void)state;
	const double probs[4] = {0.5, 0.3, 0.15, 0.05};
	float logits[4];
	logits_of(probs, 4, logits);
	double f[4];
	struct herd_sampler_params p = plain(1.0f);
	p.min_p = 0.2f; /* keeps p >= 0.1: ids 0, 1, 2 */
	histogram(&p, logits, 4, f);
	assert_true(f[3] == 0 && f[2] > 0.1);
	assert_true(fabs(f[2] - 0.15 / 0.95) < 0.02);
	p.min_p = 0.5f; /* keeps p >= 0.25: ids 0, 1 */
	histogram(&p, logits, 4, f);
	assert_true(f[2] == 0 && f[3] == 0);
	assert_true(fabs(f[0] - 0.5 / 0.8) < 0.02);
}

static void repetition_penalty_divides_positive_and_multiplies_negative(void **state)
{
	(void)state;
	struct herd_sampler_params p = plain(0.0f);
	p.repeat_penalty = 2.0f;
	p.repeat_last_n = 2;
	struct herd_sampler *s = herd_sampler_new(&p, 4);
	assert_non_null(s);
	const float a[4] = {2.0f, 1.9f, -1.0f, -1.1f};
	assert_int_equal(herd_sampler_sample(s, a), 0);
	herd_sampler_accept(s, 0); /* 2.0 -> 1.0 < 1.9 */
	assert_int_equal(herd_sampler_sample(s, a), 1);
	herd_sampler_accept(s, 0); /* twice in the window: still penalised once */
	assert_int_equal(herd_sampler_sample(s, a), 1);
	herd_sampler_accept(s, 1); /* 1.9 -> 0.95 < 1.0 */
	assert_int_equal(herd_sampler_sample(s, a), 0);
	herd_sampler_accept(s, 1); /* window of 2 now holds 1, 1: id 0 is free again */
	assert_int_equal(herd_sampler_sample(s, a), 0);
	herd_sampler_free(s);

	/* negative logits move away from zero: -1.0 * 2 = -2.0 < -1.1 */
	p.repeat_last_n = 64;
	s = herd_sampler_new(&p, 4);
	const float b[4] = {-5.0f, -6.0f, -1.0f, -1.1f};
	herd_sampler_accept(s, 2);
	assert_int_equal(herd_sampler_sample(s, b), 3);
	herd_sampler_free(s);
}

static void same_seed_same_tokens(void **state)
{
	(void)state;
	float logits[50];
	for (int i = 0; i < 50; i++)
		logits[i] = (float)sin(i * 1.7) * 2.0f;
	struct herd_sampler_params p = herd_sampler_default_params();
	p.temperature = 1.5f;
	p.top_k = 0;
	p.top_p = 1.0f;
	p.min_p = 0.0f;
	p.seed = 99;
	struct herd_sampler *a = herd_sampler_new(&p, 50), *b = herd_sampler_new(&p, 50);
	p.seed = 100;
	struct herd_sampler *c = herd_sampler_new(&p, 50);
	int differ = 0;
	for (int i = 0; i < 200; i++) {
		int32_t x = herd_sampler_sample(a, logits), y = herd_sampler_sample(b, logits);
		assert_int_equal(x, y);
		differ += herd_sampler_sample(c, logits) != x;
	}
	assert_true(differ > 50); /* another seed is another sequence */
	herd_sampler_free(a);
	herd_sampler_free(b);
	herd_sampler_free(c);
}

static void bad_parameters_are_refused_with_the_field_named(void **state)
{
	(void)state;
	struct herd_sampler_params p = herd_sampler_default_params();
	p.temperature = -0.5f;
	assert_null(herd_sampler_new(&p, 10));
	assert_non_null(strstr(herd_last_error(), "temperature"));
	p = herd_sampler_default_params();
	p.top_p = 0.0f;
	assert_null(herd_sampler_new(&p, 10));
	assert_non_null(strstr(herd_last_error(), "top_p"));
	p = herd_sampler_default_params();
	p.min_p = 1.5f;
	assert_null(herd_sampler_new(&p, 10));
	assert_non_null(strstr(herd_last_error(), "min_p"));
	p = herd_sampler_default_params();
	p.top_k = -1;
	assert_null(herd_sampler_new(&p, 10));
	assert_non_null(strstr(herd_last_error(), "top_k"));
	p = herd_sampler_default_params();
	p.repeat_penalty = NAN;
	assert_null(herd_sampler_new(&p, 10));
	assert_non_null(strstr(herd_last_error(), "repeat_penalty"));
	p = herd_sampler_default_params();
	assert_null(herd_sampler_new(&p, 0));
	assert_non_null(strstr(herd_last_error(), "n_vocab"));
	herd_sampler_free(NULL);
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
    cmocka_unit_test(greedy_picks_argmax_lowest_id_on_ties),
    cmocka_unit_test(temperature_scales_the_distribution),
    cmocka_unit_test(top_k_keeps_exactly_k),
    cmocka_unit_test(top_p_keeps_the_smallest_prefix_reaching_p),
    cmocka_unit_test(min_p_drops_tokens_below_a_fraction_of_the_best),
    cmocka_unit_test(repetition_penalty_divides_positive_and_multiplies_negative),
    cmocka_unit_test(same_seed_same_tokens),
    cmocka_unit_test(bad_parameters_are_refused_with_the_field_named),
}))
