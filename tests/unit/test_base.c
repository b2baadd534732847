/* base: the error space and the thread-local error message. */
#include "herd_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

static void error_message_round_trip(void **state)
{
	(void)state;
	enum herd_err e = herd_fail(HERD_ERR_BAD_INPUT, "params.num_fragments: must be 1..%d, got %d", 4096, 0);
	assert_int_equal(e, HERD_ERR_BAD_INPUT);
	assert_string_equal(herd_last_error(), "params.num_fragments: must be 1..4096, got 0");
	assert_string_equal(herd_errcode(HERD_ERR_BAD_INPUT), "BAD_INPUT");
	assert_string_equal(herd_strerror((enum herd_err)999), "unknown error");
}

static void every_error_has_a_name(void **state)
{
	(void)state;
	for (int e = 0; e < HERD_ERR_COUNT_; e++) {
		assert_non_null(herd_strerror(e));
		assert_true(strlen(herd_errcode(e)) > 0);
	}
}

/* Appends across many reallocations keep every byte, in order, NUL-terminated. */
static void buf_appends_keep_every_byte(void **state)
{
	(void)state;
	struct herd_buf b = {0};
	herd_buf_add(&b, "", 0);
	assert_non_null(b.p);
	assert_string_equal(b.p, "");
	char want[5001];
	for (int i = 0; i < 1000; i++) {
		char piece[6];
		snprintf(piece, sizeof piece, "%04d,", i);
		herd_buf_puts(&b, piece);
		memcpy(want + (size_t)i * 5, piece, 5);
	}
	assert_int_equal(b.len, 5000);
	assert_memory_equal(b.p, want, 5000);
	assert_int_equal(b.p[5000], '\0');
	free(b.p);
}

HERD_TEST_MAIN(((const struct CMUnitTest[]){
	cmocka_unit_test(error_message_round_trip),
	cmocka_unit_test(every_error_has_a_name),
	cmocka_unit_test(buf_appends_keep_every_byte),
}))
