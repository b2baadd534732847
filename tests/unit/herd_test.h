/* Shared by the unit tests: cmocka, and a main() that runs one named test when given a
 * name (CMake registers each cmocka_unit_test(name) as its own ctest entry). */
#ifndef HERD_TEST_H
#define HERD_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Path of a file under ../shared (models, reference outputs). */
#define HERD_SHARED(rel) HERD_SHARED_DIR "/" rel

#define HERD_TEST_MAIN(tests)                                                                      \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		if (argc > 1)                                                                      \
			cmocka_set_test_filter(argv[1]);                                           \
		return cmocka_run_group_tests(tests, NULL, NULL);                                  \
	}

#endif
