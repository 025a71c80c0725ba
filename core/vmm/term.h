/*
 * The host terminal behind the console. While a VM owns stdin it is in raw mode (every key,
 * Ctrl-C included, goes to the guest, as with crosvm); the saved state is restored on every
 * exit path by term_restore.
 */
#ifndef CROSVM_CORE_VMM_TERM_H
#define CROSVM_CORE_VMM_TERM_H

#include <stdbool.h>
#include <termios.h>

struct term {
	int fd;
	bool raw;
	struct termios saved;
};

/* Puts fd in raw mode if it is a terminal; a no-op (0) otherwise. */
int term_raw(struct term *t, int fd);
void term_restore(struct term *t);

#endif
