/*
 * crosvm [--log-level L] [--syslog-tag T] [--no-syslog] [--extended-status] COMMAND [ARGS]
 *
 * The only place that exits. With --extended-status the VM outcome becomes the exit status
 * (0 stop, 32 reset, 33 crash, 34 guest panic, 35 invalid arguments), as crosvm does;
 * without it every VM outcome exits 0 and errors exit 1.
 */
#include "core/vmm/cli.h"
#include "core/log.h"
#include "core/vmm/run.h"
#include "control/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	STATUS_STOP = 0,
	STATUS_RESET = 32,
	STATUS_CRASH = 33,
	STATUS_PANIC = 34,
	STATUS_INVALID = 35,
};

struct globals {
	struct logger log;
	bool extended_status;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: crosvm [GLOBAL OPTIONS] COMMAND [ARGS]\n"
		   "\n"
		   "Global options:\n"
		   "  --log-level LEVEL     error, warn, info (default), debug, trace or off\n"
		   "  --syslog-tag TAG      tag for log lines (default crosvm)\n"
		   "  --no-syslog           do not log to syslog (logs always go to stderr)\n"
		   "  --extended-status     exit with the VM outcome: 0 stop, 32 reset, 33 crash,\n"
		   "                        34 guest panic, 35 invalid arguments\n"
		   "  -h, --help            show this help\n"
		   "\n"
		   "Commands:\n"
		   "  run [OPTIONS] KERNEL          start a VM (crosvm run --help)\n"
		   "  stop SOCKET                   stop the VM\n"
		   "  suspend SOCKET                pause the vCPUs\n"
		   "  resume SOCKET                 resume the vCPUs\n"
		   "  powerbtn SOCKET               press the ACPI power button\n"
		   "  sleepbtn SOCKET               press the ACPI sleep button\n"
		   "  gpe NUM SOCKET                raise ACPI general-purpose event NUM\n"
		   "  balloon SIZE_BYTES SOCKET     set the balloon size\n"
		   "  balloon_stats SOCKET          print balloon statistics (JSON)\n"
		   "  disk resize INDEX BYTES SOCKET  resize a writable disk\n"
		   "  version [SOCKET]              print the version (of the VM at SOCKET)\n");
}

static int vm_status(const struct globals *g, enum vm_exit_reason r)
{
	if (!g->extended_status)
		return 0;
	switch (r) {
	case VM_EXIT_RESET:
		return STATUS_RESET;
	case VM_EXIT_CRASH:
		return STATUS_CRASH;
	case VM_EXIT_PANIC:
		return STATUS_PANIC;
	default:
		return STATUS_STOP;
	}
}

static int error_status(const struct globals *g)
{
	return g->extended_status ? STATUS_INVALID : 1;
}

static int cmd_run(struct globals *g, int argc, char **argv)
{
	struct vm_config cfg;
	enum vm_exit_reason reason = VM_EXIT_NONE;
	int ret;

	config_init(&cfg);
	ret = cli_parse_run(argc, argv, &cfg, &g->log);
	if (ret == CLI_HELP) {
		config_free(&cfg);
		return 0;
	}
	if (ret < 0) {
		config_free(&cfg);
		return error_status(g);
	}
	ret = run_vm(&cfg, &g->log, &reason);
	config_free(&cfg);
	if (ret < 0)
		return error_status(g);
	return vm_status(g, reason);
}

int main(int argc, char **argv)
{
	struct globals g = {.extended_status = false};
	int i;

	log_init(&g.log);
	g.log.to_syslog = true;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		size_t n = strcspn(a, "=");

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(a, "--extended-status") == 0) {
			g.extended_status = true;
			continue;
		}
		if (strcmp(a, "--no-syslog") == 0) {
			g.log.to_syslog = false;
			continue;
		}
		if (strncmp(a, "--log-level", n) == 0 && n == 11) {
			val = a[n] ? a + n + 1 : (i + 1 < argc ? argv[++i] : NULL);
			/* crosvm accepts module filters ("debug,devices=info"); use the first
			 * level. */
			if (!val || log_parse_level(strtok(strdupa(val), ","), &g.log.level) < 0) {
				log_err(&g.log,
					"--log-level: '%s' is not a level (error, warn, info, "
					"debug, trace, off)",
					val ? val : "");
				return error_status(&g);
			}
			continue;
		}
		if (strncmp(a, "--syslog-tag", n) == 0 && n == 12) {
			val = a[n] ? a + n + 1 : (i + 1 < argc ? argv[++i] : NULL);
			if (!val || !*val) {
				log_err(&g.log, "--syslog-tag needs a value");
				return error_status(&g);
			}
			snprintf(g.log.tag, sizeof(g.log.tag), "%s", val);
			continue;
		}
		log_err(&g.log, "unknown global option '%s' (see crosvm --help)", a);
		return error_status(&g);
	}
	if (i >= argc) {
		usage(stderr);
		return error_status(&g);
	}
	log_open_syslog(&g.log);
	if (strcmp(argv[i], "run") == 0)
		return cmd_run(&g, argc - i, argv + i);
	if (strcmp(argv[i], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[i], "version") == 0 && i + 1 >= argc) {
		printf("crosvm %s\n", CROSVM_VERSION);
		return 0;
	}
	{
		int r = control_client_main(argc - i, argv + i, &g.log);

		if (r == -ENOENT) {
			log_err(&g.log, "unknown command '%s' (see crosvm --help)", argv[i]);
			return error_status(&g);
		}
		return r == 0 ? 0 : 1;
	}
}
