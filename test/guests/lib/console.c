#include "console.h"
#include "fmt.h"

static uint32_t owner_id(void)
{
	return this_cpu()->index;
}

static void put_serial(void *arg, char c)
{
	serial_putc(arg, c);
}

void con_break_own_lock(struct guest *g)
{
	/* This CPU faulted while printing: nobody else will release the lock. */
	if (con_held_here(g))
		spin_unlock(&g->console_lock);
}

bool con_held_here(struct guest *g)
{
	return g->console_lock.locked && g->console_lock.owner == owner_id();
}

static void unlock(struct guest *g)
{
	spin_unlock(&g->console_lock);
}

static void lock(struct guest *g)
{
	spin_lock(&g->console_lock, owner_id());
}

void con_vprintf(struct guest *g, const char *fmt, va_list ap)
{
	lock(g);
	fmt_vformat(put_serial, &g->com1, fmt, ap);
	unlock(g);
}

void con_printf(struct guest *g, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	con_vprintf(g, fmt, ap);
	va_end(ap);
}

void con_write(struct guest *g, const char *s, size_t len)
{
	lock(g);
	for (size_t i = 0; i < len; i++)
		serial_putc(&g->com1, s[i]);
	unlock(g);
}

static void puts_raw(struct guest *g, const char *s)
{
	for (; *s; s++)
		serial_putc(&g->com1, *s);
}

static void line(struct guest *g, const char *prefix, const char *name, const char *fmt, va_list ap)
{
	lock(g);
	puts_raw(g, prefix);
	if (name) {
		puts_raw(g, name);
		puts_raw(g, ": ");
	}
	fmt_vformat(put_serial, &g->com1, fmt, ap);
	serial_putc(&g->com1, '\n');
	unlock(g);
}

void report_info(struct guest *g, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	line(g, "INFO ", NULL, fmt, ap);
	va_end(ap);
}

void report_pass(struct guest *g, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	line(g, "PASS ", NULL, fmt, ap);
	va_end(ap);
}

void report_fail(struct guest *g, const char *name, const char *fmt, ...)
{
	va_list ap;

	__atomic_add_fetch(&g->nfail, 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	line(g, "FAIL ", name, fmt, ap);
	va_end(ap);
}

int report_check(struct guest *g, bool ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		report_pass(g, "%s", name);
		return 0;
	}
	__atomic_add_fetch(&g->nfail, 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	line(g, "FAIL ", name, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void con_escape(char *out, size_t size, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!size)
		return;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= size)
				break;
			out[o++] = (char)c;
		} else {
			if (o + 4 >= size)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}
