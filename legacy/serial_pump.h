/*
 * The host side of a sandboxed UART: a device with no guest-visible registers that copies
 * bytes between pipes to the UART and the host's files, in its own jailed process.
 *
 * The UART's register model (legacy/serial.c) runs in the main process, on the vCPU thread
 * that touches a register, as the i8042, CMOS and ACPI PM models do: it is a fixed set of
 * eight byte registers and a 64-byte FIFO with no guest-controlled length, pointer or host
 * resource, and it is fuzzed (test/fuzz/fuzz_serial.c). What touches the host - the terminal,
 * output files, stdin - stays jailed here: the model writes transmitted bytes into the TX
 * pipe (blocking, so a reader that stalls throttles the guest rather than losing its
 * output), the pump copies them out in blocks; the pump copies input into the RX pipe, which
 * the model reads while its FIFO has room.
 *
 * Why: proxied, every guest register access was a message to the device process, and every
 * status read a round trip, so a console byte cost two context switches and more (64 KiB
 * printed took 1.6x as long as unsandboxed). Now a byte costs one pipe write, as it costs one
 * stdout write unsandboxed, and the pump (SCHED_BATCH: it does not preempt the vCPU thread
 * it serves) moves many bytes per wake-up.
 */
#ifndef CROSVM_LEGACY_SERIAL_PUMP_H
#define CROSVM_LEGACY_SERIAL_PUMP_H

#include "core/util.h"

struct device;
struct logger;

#define SERIAL_PUMP_BUF 4096 /* bytes moved per read, each way */

struct serial_pump_params {
	unsigned num; /* 1..4, for the process name and logs */
	int tx_in;    /* read end of the TX pipe (non-blocking), or -1 */
	int out_fd;   /* where transmitted bytes go (stdout, a file), or -1 */
	int in_fd;    /* where received bytes come from (stdin), or -1 */
	int rx_out;   /* write end of the RX pipe (non-blocking), or -1 */
	const struct logger *log;
};

/*
 * Creates the pump (no regions; policy serial_device). It owns the four fds on success
 * (and closes in the main process those only the pump uses once it runs in its own
 * process); on failure the caller keeps them. A direction needs both its fds.
 */
int serial_pump_create(const struct serial_pump_params *p, struct device **out) MUST_CHECK;

/*
 * Puts a pump between a UART and its host fds: on success p->out_fd and p->in_fd are the
 * UART's ends of two new pipes (TX blocking, RX non-blocking), and *out the pump, which
 * took the host fds and the pipes' other ends. A port without host fds (sink, syslog
 * without stdin) needs none: *out is NULL and p unchanged. On failure p is unchanged.
 */
struct serial_params;
int serial_pump_wrap(struct serial_params *p, struct device **out) MUST_CHECK;

#endif
