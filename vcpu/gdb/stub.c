#include "vcpu/gdb/stub.h"
#include "core/log.h"
#include "vcpu/gdb/hwbp.h"
#include "vcpu/gdb/packet.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGTRAP_GDB 5 /* gdb's signal numbers, in stop replies */
#define SIGINT_GDB  2

enum stub_state {
	ST_STOPPED,  /* every vCPU held: packets are served */
	ST_RUNNING,  /* vCPUs run under the debugger; a stop reply is owed */
	ST_STOPPING, /* waiting for every vCPU to stop, then on_stop */
	ST_FREE,     /* no debugger: the guest runs */
};

enum on_stop {
	ON_STOP_REPORT, /* send the stop reply */
	ON_STOP_ATTACH, /* a new client: stopped quietly, it asks with '?' */
	ON_STOP_DETACH, /* the client left: let everything go */
};

enum action { ACT_NONE, ACT_STOP, ACT_CONT, ACT_STEP };

struct gdb_stub {
	struct gdb_stub_params p;
	struct gdb_rx rx;
	enum stub_state state;
	enum on_stop on_stop;
	bool connected;
	bool interrupted; /* Ctrl-C during this run */
	bool hwbreak;	  /* the client understands the hwbreak stop reason */
	unsigned cur;	  /* Hg and the last stop's thread (vCPU index) */
	long cont;	  /* Hc: -1 or 0 = every thread, else thread id */
	unsigned next_event;
	struct hwbp_set bps;
	uint8_t *act; /* per vCPU, scratch for resume */
	bool *run;
	char stop_reply[96];
	char *xml;
	size_t xml_len;
	uint64_t bad_packets, garbage;
	char reply[GDB_PACKET_MAX + 1];
	size_t reply_len;
	char last[GDB_FRAME_MAX]; /* the last packet sent, for a '-' */
	size_t last_len;
};

/* ---- replies ---- */

static void r_reset(struct gdb_stub *s)
{
	s->reply_len = 0;
}

static void r_fmt(struct gdb_stub *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void r_fmt(struct gdb_stub *s, const char *fmt, ...)
{
	size_t room = sizeof(s->reply) - s->reply_len;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s->reply + s->reply_len, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		s->reply_len += MIN((size_t)n, room - 1);
}

static void r_hex(struct gdb_stub *s, const void *data, size_t n)
{
	n = MIN(n, (GDB_PACKET_MAX - s->reply_len) / 2);
	gdb_hex_encode(data, n, s->reply + s->reply_len);
	s->reply_len += 2 * n;
}

static void send_reply(struct gdb_stub *s)
{
	s->last_len = gdb_frame(s->reply, s->reply_len, s->last);
	s->p.send(s->p.send_ctx, s->last, s->last_len);
	r_reset(s);
}

static void reply_str(struct gdb_stub *s, const char *str)
{
	r_reset(s);
	r_fmt(s, "%s", str);
	send_reply(s);
}

/* "E" and the errno in two hex digits (gdb only sees that it is an error). */
static void reply_err(struct gdb_stub *s, int err)
{
	r_reset(s);
	r_fmt(s, "E%02x", (unsigned)(err < 0 ? -err : err) & 0xff);
	send_reply(s);
}

/* ---- stops ---- */

static void set_stop(struct gdb_stub *s, unsigned cpu, const struct hwbp_hit *hit, int sig)
{
	int n = snprintf(s->stop_reply, sizeof(s->stop_reply), "T%02xthread:%x;", sig, cpu + 1);

	if (hit && hit->kind == HWBP_HIT_WATCH)
		snprintf(s->stop_reply + n, sizeof(s->stop_reply) - (size_t)n, "watch:%llx;",
			 (unsigned long long)hit->addr);
	else if (hit && hit->kind == HWBP_HIT_AWATCH)
		snprintf(s->stop_reply + n, sizeof(s->stop_reply) - (size_t)n, "awatch:%llx;",
			 (unsigned long long)hit->addr);
	else if (hit && hit->kind == HWBP_HIT_BREAK && s->hwbreak)
		snprintf(s->stop_reply + n, sizeof(s->stop_reply) - (size_t)n, "hwbreak:;");
	/* gdb takes the stopped thread as the one g and m now refer to. */
	s->cur = cpu;
}

static void report_stop(struct gdb_stub *s)
{
	s->state = ST_STOPPED;
	reply_str(s, s->stop_reply);
}

/* Every vCPU has stopped after a run: says why, preferring a debug exit to the Ctrl-C. */
static void finish_run(struct gdb_stub *s)
{
	unsigned n = s->p.nr_cpus;

	for (unsigned k = 0; k < n; k++) {
		unsigned cpu = (s->next_event + k) % n;
		struct kvm_debug_exit_arch a;
		struct hwbp_hit hit;

		if (!s->p.ops->take_event(s->p.target, cpu, &a))
			continue;
		hwbp_decode(&s->bps, &a, &hit);
		s->next_event = (cpu + 1) % n; /* the others are looked at first next time */
		set_stop(s, cpu, &hit, SIGTRAP_GDB);
		report_stop(s);
		return;
	}
	set_stop(s, s->cur, NULL, s->interrupted ? SIGINT_GDB : SIGTRAP_GDB);
	report_stop(s);
}

static int set_debug_all(struct gdb_stub *s, const uint8_t *act)
{
	for (unsigned i = 0; i < s->p.nr_cpus; i++) {
		struct kvm_guest_debug dbg;
		int ret;

		hwbp_guest_debug(&s->bps, act && act[i] == ACT_STEP, s->p.kvm_debug_flags, &dbg);
		ret = s->p.ops->set_debug(s->p.target, i, &dbg);
		if (ret < 0) {
			log_warn(s->p.log, "gdb: cannot set the debug state of vcpu%u: %s", i,
				 strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* No debugger any more: the debug registers go back to the guest and every vCPU runs. */
static void release(struct gdb_stub *s)
{
	struct kvm_debug_exit_arch a;

	hwbp_clear(&s->bps);
	(void)set_debug_all(s, NULL);
	for (unsigned i = 0; i < s->p.nr_cpus; i++) {
		while (s->p.ops->take_event(s->p.target, i, &a))
			;
		s->run[i] = true;
	}
	s->state = ST_FREE;
	s->p.ops->resume(s->p.target, s->run);
	log_info(s->p.log, "gdb: the guest runs without the debugger");
}

static void request_stop(struct gdb_stub *s, enum on_stop what)
{
	s->on_stop = what;
	if (s->state != ST_STOPPING)
		s->p.ops->stop(s->p.target);
	s->state = ST_STOPPING;
	gdb_stub_poll(s);
}

void gdb_stub_poll(struct gdb_stub *s)
{
	if (s->state != ST_RUNNING && s->state != ST_STOPPING)
		return;
	if (!s->p.ops->stopped(s->p.target))
		return;
	if (s->state == ST_RUNNING || s->on_stop == ON_STOP_REPORT) {
		finish_run(s);
		return;
	}
	if (s->on_stop == ON_STOP_ATTACH) {
		s->state = ST_STOPPED;
		set_stop(s, s->cur, NULL, SIGTRAP_GDB);
		return;
	}
	release(s);
}

/* Lets the vCPUs go as act says; a data watchpoint hit still unreported is reported now. */
static void resume(struct gdb_stub *s)
{
	bool any = false;

	for (unsigned i = 0; i < s->p.nr_cpus; i++) {
		struct kvm_debug_exit_arch a;
		struct hwbp_hit hit;

		if (s->act[i] == ACT_NONE)
			s->act[i] = ACT_STOP;
		s->run[i] = s->act[i] != ACT_STOP;
		any |= s->run[i];
		if (!s->run[i] || !s->p.ops->take_event(s->p.target, i, &a))
			continue;
		/* A step or an execute breakpoint simply happens again; a data access would not. */
		hwbp_decode(&s->bps, &a, &hit);
		if (hit.kind == HWBP_HIT_WATCH || hit.kind == HWBP_HIT_AWATCH) {
			set_stop(s, i, &hit, SIGTRAP_GDB);
			report_stop(s);
			return;
		}
	}
	if (!any) {
		reply_err(s, -EINVAL);
		return;
	}
	if (set_debug_all(s, s->act) < 0) {
		reply_err(s, -EIO);
		return;
	}
	s->interrupted = false;
	s->state = ST_RUNNING;
	s->p.ops->resume(s->p.target, s->run);
}

/* ---- parsing helpers ---- */

/* A thread id: -1 (all), 0 (any) or a thread; -EINVAL. */
static int parse_tid(const char **p, long *tid)
{
	uint64_t v;

	if ((*p)[0] == '-' && (*p)[1] == '1') {
		*p += 2;
		*tid = -1;
		return 0;
	}
	if (gdb_parse_hex(p, &v) < 0 || v > 0x7fffffff)
		return -EINVAL;
	*tid = (long)v;
	return 0;
}

static bool valid_thread(const struct gdb_stub *s, long tid)
{
	return tid >= 1 && (unsigned long)tid <= s->p.nr_cpus;
}

/* "ADDR,LEN" (then *p is past LEN). */
static int parse_addr_len(const char **p, uint64_t *addr, uint64_t *len)
{
	if (gdb_parse_hex(p, addr) < 0 || **p != ',')
		return -EINVAL;
	(*p)++;
	return gdb_parse_hex(p, len);
}

/* ---- registers ---- */

static int get_regs(struct gdb_stub *s, struct gdb_cpu_state *st)
{
	int ret = s->p.ops->get_regs(s->p.target, s->cur, st);

	if (ret < 0)
		log_warn(s->p.log, "gdb: cannot read the registers of vcpu%u: %s", s->cur,
			 strerror(-ret));
	return ret;
}

static void cmd_read_regs(struct gdb_stub *s)
{
	struct gdb_cpu_state st;
	uint8_t buf[16];
	int ret = get_regs(s, &st);

	if (ret < 0) {
		reply_err(s, ret);
		return;
	}
	r_reset(s);
	for (unsigned i = 0; i < gdb_regs_count(); i++) {
		size_t size = gdb_reg_size(i);

		if (gdb_reg_read(&st, i, buf) == 0)
			r_hex(s, buf, size);
		else
			for (size_t k = 0; k < 2 * size; k++)
				r_fmt(s, "x");
	}
	send_reply(s);
}

static bool unavailable(const char *hex, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (hex[i] != 'x')
			return false;
	return true;
}

/* Register n from its hex text (2 * size digits, or all 'x': left alone). */
static int write_one(struct gdb_cpu_state *st, unsigned n, const char *hex, unsigned *groups)
{
	size_t size = gdb_reg_size(n);
	uint8_t buf[16];

	if (unavailable(hex, 2 * size))
		return 0;
	if (gdb_hex_decode(hex, 2 * size, buf) < 0)
		return -EINVAL;
	return gdb_reg_write(st, n, buf, groups);
}

static void finish_write(struct gdb_stub *s, const struct gdb_cpu_state *st, unsigned groups)
{
	int ret = groups ? s->p.ops->set_regs(s->p.target, s->cur, st, groups) : 0;

	if (ret < 0)
		log_warn(s->p.log, "gdb: KVM refused the new registers of vcpu%u: %s", s->cur,
			 strerror(-ret));
	if (ret < 0)
		reply_err(s, ret);
	else
		reply_str(s, "OK");
}

static void cmd_write_regs(struct gdb_stub *s, const char *hex, size_t len)
{
	struct gdb_cpu_state st;
	unsigned groups = 0;
	int ret;

	if (len != 2 * gdb_regs_size()) {
		reply_err(s, -EINVAL);
		return;
	}
	ret = get_regs(s, &st);
	for (unsigned i = 0; ret == 0 && i < gdb_regs_count(); i++) {
		ret = write_one(&st, i, hex, &groups);
		hex += 2 * gdb_reg_size(i);
	}
	if (ret < 0) {
		reply_err(s, ret);
		return;
	}
	finish_write(s, &st, groups);
}

static void cmd_read_reg(struct gdb_stub *s, const char *p)
{
	struct gdb_cpu_state st;
	uint8_t buf[16];
	uint64_t n;
	int ret;

	if (gdb_parse_hex(&p, &n) < 0 || *p || n >= gdb_regs_count()) {
		reply_err(s, -EINVAL);
		return;
	}
	ret = get_regs(s, &st);
	if (ret < 0) {
		reply_err(s, ret);
		return;
	}
	r_reset(s);
	if (gdb_reg_read(&st, (unsigned)n, buf) == 0)
		r_hex(s, buf, gdb_reg_size((unsigned)n));
	else
		for (size_t k = 0; k < 2 * gdb_reg_size((unsigned)n); k++)
			r_fmt(s, "x");
	send_reply(s);
}

static void cmd_write_reg(struct gdb_stub *s, const char *p, const char *end)
{
	struct gdb_cpu_state st;
	unsigned groups = 0;
	uint64_t n;
	int ret;

	if (gdb_parse_hex(&p, &n) < 0 || *p != '=' || n >= gdb_regs_count() ||
	    (size_t)(end - p - 1) != 2 * gdb_reg_size((unsigned)n)) {
		reply_err(s, -EINVAL);
		return;
	}
	ret = get_regs(s, &st);
	if (ret == 0)
		ret = write_one(&st, (unsigned)n, p + 1, &groups);
	if (ret < 0) {
		if (ret == -ENOTSUP)
			log_warn(s->p.log, "gdb: a segment selector cannot be changed");
		reply_err(s, ret);
		return;
	}
	finish_write(s, &st, groups);
}

/* ---- memory ---- */

static void cmd_read_mem(struct gdb_stub *s, const char *p)
{
	uint8_t buf[GDB_PACKET_MAX / 2];
	uint64_t addr, len;
	size_t done = 0;
	int ret;

	if (parse_addr_len(&p, &addr, &len) < 0 || *p) {
		reply_err(s, -EINVAL);
		return;
	}
	len = MIN(len, sizeof(buf));
	ret = len ? s->p.ops->read_mem(s->p.target, s->cur, addr, buf, (size_t)len, &done) : 0;
	if (ret < 0 || (len && done == 0)) {
		reply_err(s, ret < 0 ? ret : -EFAULT);
		return;
	}
	r_reset(s);
	r_hex(s, buf, done);
	send_reply(s);
}

static void write_mem(struct gdb_stub *s, uint64_t addr, const uint8_t *data, size_t len)
{
	int ret = len ? s->p.ops->write_mem(s->p.target, s->cur, addr, data, len) : 0;

	if (ret < 0)
		reply_err(s, ret);
	else
		reply_str(s, "OK");
}

static void cmd_write_mem_hex(struct gdb_stub *s, const char *p, const char *end)
{
	uint8_t buf[GDB_PACKET_MAX / 2];
	uint64_t addr, len;

	if (parse_addr_len(&p, &addr, &len) < 0 || *p != ':' || len > sizeof(buf) ||
	    (size_t)(end - p - 1) != 2 * len || gdb_hex_decode(p + 1, 2 * len, buf) < 0) {
		reply_err(s, -EINVAL);
		return;
	}
	write_mem(s, addr, buf, (size_t)len);
}

static void cmd_write_mem_bin(struct gdb_stub *s, const char *p, const char *end)
{
	uint8_t buf[GDB_PACKET_MAX];
	uint64_t addr, len;
	size_t n;

	if (parse_addr_len(&p, &addr, &len) < 0 || *p != ':' ||
	    gdb_unescape(p + 1, (size_t)(end - p - 1), buf, &n) < 0 || n != len) {
		reply_err(s, -EINVAL);
		return;
	}
	write_mem(s, addr, buf, n);
}

/* ---- breakpoints and watchpoints ---- */

static void cmd_breakpoint(struct gdb_stub *s, const char *p, bool insert)
{
	struct hwbp_set saved = s->bps;
	uint64_t type, addr, kind;
	enum hwbp_type t;
	int ret;

	/* TYPE,ADDR,KIND (and conditions after a ';', which we do not announce) */
	if (gdb_parse_hex(&p, &type) < 0 || *p++ != ',' || parse_addr_len(&p, &addr, &kind) < 0 ||
	    (*p && *p != ';')) {
		reply_err(s, -EINVAL);
		return;
	}
	switch (type) {
	case 0:
		/* An error, not "unsupported": gdb would plant int3 itself, which the guest
		 * would take as its own. */
		log_warn(s->p.log, "gdb: software breakpoints are not supported: use hbreak");
		reply_err(s, -ENOTSUP);
		return;
	case 1:
		t = HWBP_EXEC;
		break;
	case 2:
		t = HWBP_WRITE;
		break;
	case 4:
		t = HWBP_ACCESS;
		break;
	default:
		/* Z3: the debug registers cannot trap reads alone; gdb then asks for Z4. */
		reply_str(s, "");
		return;
	}
	ret = insert ? hwbp_insert(&s->bps, t, addr, kind) : hwbp_remove(&s->bps, t, addr, kind);
	if (ret == 0)
		ret = set_debug_all(s, NULL);
	if (ret < 0) {
		s->bps = saved;
		(void)set_debug_all(s, NULL);
		reply_err(s, ret);
		return;
	}
	reply_str(s, "OK");
}

/* ---- running ---- */

/* c/s/C/S with Hc: the Hc thread (or the current one) steps or continues; the others
 * continue unless Hc named a thread. An address resumes there. */
static void cmd_resume_legacy(struct gdb_stub *s, const char *p, bool step, bool sig)
{
	unsigned cpu = valid_thread(s, s->cont) ? (unsigned)(s->cont - 1) : s->cur;
	uint64_t v;

	if (sig) {
		if (gdb_parse_hex(&p, &v) < 0) {
			reply_err(s, -EINVAL);
			return;
		}
		if (*p == ';')
			p++;
	}
	if (*p) {
		struct gdb_cpu_state st;
		int ret;

		if (gdb_parse_hex(&p, &v) < 0 || *p) {
			reply_err(s, -EINVAL);
			return;
		}
		ret = s->p.ops->get_regs(s->p.target, cpu, &st);
		st.regs.rip = v;
		if (ret == 0)
			ret = s->p.ops->set_regs(s->p.target, cpu, &st, GDB_REGS_GPR);
		if (ret < 0) {
			reply_err(s, ret);
			return;
		}
	}
	for (unsigned i = 0; i < s->p.nr_cpus; i++)
		s->act[i] = valid_thread(s, s->cont) ? ACT_STOP : ACT_CONT;
	s->act[cpu] = step ? ACT_STEP : ACT_CONT;
	resume(s);
}

/* vCont;ACTION[:TID]...: the leftmost action naming a thread (or naming none) applies to it. */
static void cmd_vcont(struct gdb_stub *s, const char *p)
{
	memset(s->act, ACT_NONE, s->p.nr_cpus);
	while (*p == ';') {
		enum action a;
		uint64_t sig;
		long tid = -1;

		p++;
		switch (*p++) {
		case 'c':
			a = ACT_CONT;
			break;
		case 's':
			a = ACT_STEP;
			break;
		case 'C':
		case 'S':
			a = p[-1] == 'C' ? ACT_CONT : ACT_STEP;
			if (gdb_parse_hex(&p, &sig) < 0) {
				reply_err(s, -EINVAL);
				return;
			}
			break;
		case 't':
			a = ACT_STOP;
			break;
		default:
			reply_err(s, -EINVAL);
			return;
		}
		if (*p == ':') {
			p++;
			if (parse_tid(&p, &tid) < 0 || (tid > 0 && !valid_thread(s, tid))) {
				reply_err(s, -EINVAL);
				return;
			}
		}
		for (unsigned i = 0; i < s->p.nr_cpus; i++)
			if (s->act[i] == ACT_NONE && (tid <= 0 || (unsigned long)tid == i + 1))
				s->act[i] = (uint8_t)a;
	}
	if (*p) {
		reply_err(s, -EINVAL);
		return;
	}
	resume(s);
}

/* ---- threads and queries ---- */

static void cmd_set_thread(struct gdb_stub *s, const char *p)
{
	char op = *p++;
	long tid;

	if ((op != 'g' && op != 'c') || parse_tid(&p, &tid) < 0 || *p ||
	    (tid > 0 && !valid_thread(s, tid))) {
		reply_err(s, -EINVAL);
		return;
	}
	if (op == 'g' && tid > 0)
		s->cur = (unsigned)(tid - 1);
	else if (op == 'c')
		s->cont = tid;
	reply_str(s, "OK");
}

static void cmd_thread_alive(struct gdb_stub *s, const char *p)
{
	long tid;

	if (parse_tid(&p, &tid) < 0 || *p || !valid_thread(s, tid))
		reply_err(s, -ESRCH);
	else
		reply_str(s, "OK");
}

static void cmd_supported(struct gdb_stub *s, const char *features)
{
	const char *h = strstr(features, "hwbreak+");

	s->hwbreak = h && (h == features || h[-1] == ':' || h[-1] == ';');
	r_reset(s);
	r_fmt(s, "PacketSize=%x;qXfer:features:read+;hwbreak+", GDB_PACKET_MAX);
	send_reply(s);
}

/* qXfer:features:read:ANNEX:OFFSET,LENGTH */
static void cmd_xfer_features(struct gdb_stub *s, const char *p)
{
	static const char annex[] = "target.xml:";
	uint64_t off, len;
	size_t used, n;

	if (strncmp(p, annex, sizeof(annex) - 1) != 0) {
		reply_err(s, -ENOENT);
		return;
	}
	p += sizeof(annex) - 1;
	if (parse_addr_len(&p, &off, &len) < 0 || *p || off > s->xml_len) {
		reply_err(s, -EINVAL);
		return;
	}
	len = MIN(len, s->xml_len - off);
	r_reset(s);
	n = gdb_escape((const uint8_t *)s->xml + off, (size_t)len, s->reply + 1,
		       MIN((size_t)len, sizeof(s->reply) - 2), &used);
	s->reply[0] = off + used >= s->xml_len ? 'l' : 'm';
	s->reply_len = 1 + n;
	send_reply(s);
}

static void cmd_query(struct gdb_stub *s, const char *p)
{
	long tid;

	if (strncmp(p, "qSupported", 10) == 0) {
		cmd_supported(s, p + 10);
	} else if (strncmp(p, "qXfer:features:read:", 20) == 0) {
		cmd_xfer_features(s, p + 20);
	} else if (strcmp(p, "qfThreadInfo") == 0) {
		r_reset(s);
		r_fmt(s, "m");
		for (unsigned i = 0; i < s->p.nr_cpus; i++)
			r_fmt(s, i ? ",%x" : "%x", i + 1);
		send_reply(s);
	} else if (strcmp(p, "qsThreadInfo") == 0) {
		reply_str(s, "l");
	} else if (strcmp(p, "qC") == 0) {
		r_reset(s);
		r_fmt(s, "QC%x", s->cur + 1);
		send_reply(s);
	} else if (strcmp(p, "qAttached") == 0) {
		reply_str(s, "1"); /* detaching, not killing, is what quitting gdb should do */
	} else if (strncmp(p, "qThreadExtraInfo,", 17) == 0) {
		char name[32];
		const char *q = p + 17;

		if (parse_tid(&q, &tid) < 0 || *q || !valid_thread(s, tid)) {
			reply_err(s, -ESRCH);
			return;
		}
		snprintf(name, sizeof(name), "vCPU %ld", tid - 1);
		r_reset(s);
		r_hex(s, name, strlen(name));
		send_reply(s);
	} else if (strncmp(p, "qSymbol:", 8) == 0) {
		reply_str(s, "OK");
	} else {
		reply_str(s, "");
	}
}

/* ---- dispatch ---- */

static void handle_packet(struct gdb_stub *s, char *pkt, size_t len, bool *close)
{
	const char *end = pkt + len;

	if (s->state != ST_STOPPED) {
		/* All-stop: only Ctrl-C means something while the guest runs. */
		reply_err(s, -EBUSY);
		return;
	}
	switch (pkt[0]) {
	case '?':
		reply_str(s, s->stop_reply);
		break;
	case 'g':
		cmd_read_regs(s);
		break;
	case 'G':
		cmd_write_regs(s, pkt + 1, len - 1);
		break;
	case 'p':
		cmd_read_reg(s, pkt + 1);
		break;
	case 'P':
		cmd_write_reg(s, pkt + 1, end);
		break;
	case 'm':
		cmd_read_mem(s, pkt + 1);
		break;
	case 'M':
		cmd_write_mem_hex(s, pkt + 1, end);
		break;
	case 'X':
		cmd_write_mem_bin(s, pkt + 1, end);
		break;
	case 'Z':
	case 'z':
		cmd_breakpoint(s, pkt + 1, pkt[0] == 'Z');
		break;
	case 'c':
	case 's':
	case 'C':
	case 'S':
		cmd_resume_legacy(s, pkt + 1, pkt[0] == 's' || pkt[0] == 'S',
				  pkt[0] == 'C' || pkt[0] == 'S');
		break;
	case 'v':
		if (strcmp(pkt, "vCont?") == 0)
			reply_str(s, "vCont;c;C;s;S");
		else if (strncmp(pkt, "vCont", 5) == 0 && (pkt[5] == ';' || !pkt[5]))
			cmd_vcont(s, pkt + 5);
		else
			reply_str(s, "");
		break;
	case 'H':
		cmd_set_thread(s, pkt + 1);
		break;
	case 'T':
		cmd_thread_alive(s, pkt + 1);
		break;
	case 'q':
		cmd_query(s, pkt);
		break;
	case 'D':
		reply_str(s, "OK");
		log_info(s->p.log, "gdb: the debugger detached");
		s->connected = false;
		release(s);
		*close = true;
		break;
	case 'k':
		log_info(s->p.log, "gdb: the debugger killed the VM");
		s->connected = false;
		s->p.ops->kill(s->p.target);
		*close = true;
		break;
	default:
		reply_str(s, "");
		break;
	}
}

size_t gdb_stub_input(struct gdb_stub *s, const uint8_t *buf, size_t len, bool *close)
{
	size_t i;

	*close = false;
	for (i = 0; i < len && !*close && s->state != ST_STOPPING; i++) {
		switch (gdb_rx_feed(&s->rx, buf[i])) {
		case GDB_RX_PACKET:
			s->p.send(s->p.send_ctx, "+", 1);
			handle_packet(s, s->rx.buf, s->rx.len, close);
			break;
		case GDB_RX_BAD:
		case GDB_RX_OVERSIZED:
			if (log_ratelimit(&s->bad_packets))
				log_warn(s->p.log,
					 "gdb: dropped a bad or oversized packet (%llu so far)",
					 (unsigned long long)s->bad_packets);
			s->p.send(s->p.send_ctx, "-", 1);
			break;
		case GDB_RX_INTERRUPT:
			if (s->state == ST_RUNNING) {
				s->interrupted = true;
				request_stop(s, ON_STOP_REPORT);
			}
			break;
		case GDB_RX_NAK:
			if (s->last_len)
				s->p.send(s->p.send_ctx, s->last, s->last_len);
			break;
		case GDB_RX_GARBAGE:
			if (log_ratelimit(&s->garbage))
				log_debug(s->p.log, "gdb: ignored %llu bytes outside packets",
					  (unsigned long long)s->garbage);
			break;
		default:
			break;
		}
	}
	return i;
}

bool gdb_stub_busy(const struct gdb_stub *s)
{
	return s->state == ST_STOPPING;
}

void gdb_stub_connect(struct gdb_stub *s)
{
	s->connected = true;
	s->hwbreak = false;
	s->cont = -1;
	s->last_len = 0;
	gdb_rx_init(&s->rx);
	if (s->state == ST_FREE || s->state == ST_STOPPING)
		request_stop(s, ON_STOP_ATTACH);
	else if (s->state == ST_STOPPED)
		set_stop(s, s->cur, NULL, SIGTRAP_GDB);
}

void gdb_stub_disconnect(struct gdb_stub *s)
{
	if (!s->connected)
		return;
	s->connected = false;
	log_info(s->p.log, "gdb: the debugger disconnected");
	if (s->state == ST_STOPPED)
		release(s);
	else if (s->state == ST_RUNNING || s->state == ST_STOPPING)
		request_stop(s, ON_STOP_DETACH);
}

void gdb_stub_vm_exit(struct gdb_stub *s, int status)
{
	if (!s->connected || (s->state != ST_RUNNING && s->state != ST_STOPPING))
		return;
	r_reset(s);
	r_fmt(s, "W%02x", (unsigned)status & 0xff);
	send_reply(s);
}

int gdb_stub_create(const struct gdb_stub_params *p, struct gdb_stub **out)
{
	struct gdb_stub *s;
	int ret;

	if (!p->nr_cpus)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->p = *p;
	s->act = calloc(p->nr_cpus, 1);
	s->run = calloc(p->nr_cpus, sizeof(bool));
	ret = s->act && s->run ? gdb_regs_target_xml(&s->xml, &s->xml_len) : -ENOMEM;
	if (ret < 0) {
		gdb_stub_destroy(s);
		return ret;
	}
	gdb_rx_init(&s->rx);
	s->state = ST_STOPPED; /* the vCPUs wait for the debugger from the start */
	s->cont = -1;
	set_stop(s, 0, NULL, SIGTRAP_GDB);
	*out = s;
	return 0;
}

void gdb_stub_destroy(struct gdb_stub *s)
{
	if (!s)
		return;
	free(s->xml);
	free(s->run);
	free(s->act);
	free(s);
}
