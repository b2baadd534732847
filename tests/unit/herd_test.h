/* Shared by the unit tests: cmocka, and a main() that runs one named test when given a
 * name (CMake registers each cmocka_unit_test(name) as its own ctest entry). */
#ifndef HERD_TEST_H
#define HERD_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

/* Path of a file under ../shared (models, reference outputs). */
#define HERD_SHARED(rel) HERD_SHARED_DIR "/" rel

/* Runs test `name` of this binary again in a child process with environment variable `var`
 * set to 1 (the kernels are chosen once per process), and asserts that it passed. */
static inline void herd_rerun_with(const char *var, const char *name)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv(var, "1", 1);
		execl("/proc/self/exe", "herd-test", name, (char *)NULL);
		_exit(127);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

#define HERD_TEST_MAIN(tests)                                                                      \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		if (argc > 1)                                                                      \
			cmocka_set_test_filter(argv[1]);                                           \
		return cmocka_run_group_tests(tests, NULL, NULL);                                  \
	}

#endif
