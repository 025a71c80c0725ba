/*
 * virtio-console (virtio 1.2, section 5.3) with one port and no optional feature, as crosvm
 * makes one device per `--serial ...,hardware=virtio-console`: the guest's hvcN, usable as
 * its console (console=hvcN). Queue 0 carries input to the guest (read from the port's input
 * fd, stdin, only while the guest has buffers for it, so nothing is lost or buffered here),
 * queue 1 output to the host: written to stdout or a file (a chain the fd cannot take yet
 * waits, and the guest with it), logged line by line (syslog), or dropped (sink).
 */
#ifndef CROSVM_VIRTIO_CONSOLE_H
#define CROSVM_VIRTIO_CONSOLE_H

#include "core/util.h"

struct logger;
struct virtio_dev_ops;

#define VIRTIO_CONSOLE_QUEUE_SIZE  256
#define VIRTIO_CONSOLE_CONFIG_SIZE 12 /* cols, rows, max_nr_ports, emerg_wr */
#define VIRTIO_CONSOLE_LINE	   256u

enum virtio_console_out {
	VIRTIO_CONSOLE_SINK,
	VIRTIO_CONSOLE_FD, /* stdout or a file: out_fd */
	VIRTIO_CONSOLE_SYSLOG,
};

struct virtio_console_params {
	unsigned num; /* its --serial num, in logs */
	enum virtio_console_out out;
	int out_fd; /* VIRTIO_CONSOLE_FD; taken on success */
	int in_fd;  /* input (stdin), or -1; taken on success */
	const struct logger *log;
};

int virtio_console_create(const struct virtio_console_params *p, const struct virtio_dev_ops **ops,
			  void **dev) MUST_CHECK;

#endif
