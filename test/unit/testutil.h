/* Shared helpers for the Check unit suites. */
#ifndef CROSVM_TEST_TESTUTIL_H
#define CROSVM_TEST_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* Runs one suite with CK_NORMAL output; returns the process exit status for main(). */
int testutil_run(Suite *s);
/* Writes len bytes to a new temporary file and returns its path (static buffer per call site). */
int testutil_tmpfile(const void *data, size_t len, char *path, size_t path_len);

#endif
