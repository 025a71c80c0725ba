#include "fmt.h"

struct spec {
	bool zero, left;
	unsigned width;
	int precision; /* -1: none; only %s uses it (maximum length) */
};

static int emit_padded(fmt_put_fn put, void *arg, const char *s, size_t len, const struct spec *sp)
{
	size_t pad = sp->width > len ? sp->width - len : 0;
	int n = 0;

	if (!sp->left) {
		for (; pad; pad--, n++)
			put(arg, sp->zero ? '0' : ' ');
	}
	for (size_t i = 0; i < len; i++, n++)
		put(arg, s[i]);
	for (; pad; pad--, n++)
		put(arg, ' ');
	return n;
}

static int emit_number(fmt_put_fn put, void *arg, uint64_t v, bool neg, unsigned base, bool upper,
		       const struct spec *sp)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char buf[24];
	size_t i = sizeof(buf);
	int n = 0;

	do {
		buf[--i] = digits[v % base];
		v /= base;
	} while (v);
	if (neg) {
		struct spec rest = *sp;

		/* The sign goes before zero padding: "-0042", not "00-42". */
		if (sp->zero) {
			put(arg, '-');
			if (rest.width)
				rest.width--;
			return 1 + emit_padded(put, arg, buf + i, sizeof(buf) - i, &rest);
		}
		buf[--i] = '-';
	}
	n += emit_padded(put, arg, buf + i, sizeof(buf) - i, sp);
	return n;
}

int fmt_vformat(fmt_put_fn put, void *arg, const char *fmt, va_list ap)
{
	int n = 0;

	for (; *fmt; fmt++) {
		struct spec sp = {.precision = -1};
		int lng = 0;
		const char *start = fmt;

		if (*fmt != '%') {
			put(arg, *fmt);
			n++;
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '0')
				sp.zero = true;
			else if (*fmt == '-')
				sp.left = true;
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9' && sp.width < 1000)
			sp.width = sp.width * 10 + (unsigned)(*fmt++ - '0');
		if (*fmt == '.') {
			fmt++;
			if (*fmt == '*') {
				sp.precision = va_arg(ap, int);
				fmt++;
			} else {
				for (sp.precision = 0;
				     *fmt >= '0' && *fmt <= '9' && sp.precision < 10000;)
					sp.precision = sp.precision * 10 + (*fmt++ - '0');
			}
		}
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		if (sp.left)
			sp.zero = false;
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, long) : va_arg(ap, int);
			uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v;

			n += emit_number(put, arg, mag, v < 0, 10, false, &sp);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);

			n += emit_number(put, arg, v, false, *fmt == 'u' ? 10 : 16, *fmt == 'X',
					 &sp);
			break;
		}
		case 'p': {
			uint64_t v = (uintptr_t)va_arg(ap, void *);

			put(arg, '0');
			put(arg, 'x');
			n += 2 + emit_number(put, arg, v, false, 16, false, &sp);
			break;
		}
		case 'c': {
			char c = (char)va_arg(ap, int);

			n += emit_padded(put, arg, &c, 1, &sp);
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);
			size_t len;

			if (!s)
				s = "(null)";
			for (len = 0; s[len] && (sp.precision < 0 || len < (size_t)sp.precision);
			     len++)
				;
			n += emit_padded(put, arg, s, len, &sp);
			break;
		}
		case '%':
			put(arg, '%');
			n++;
			break;
		default:
			/* Copy the unknown directive so the mistake is visible in the output. */
			for (; start <= fmt && *start; start++, n++)
				put(arg, *start);
			if (!*fmt)
				return n;
			break;
		}
	}
	return n;
}

struct buf_sink {
	char *buf;
	size_t size, pos;
};

static void buf_put(void *arg, char c)
{
	struct buf_sink *b = arg;

	if (b->pos + 1 < b->size)
		b->buf[b->pos] = c;
	b->pos++;
}

int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct buf_sink b = {.buf = buf, .size = size};
	int n = fmt_vformat(buf_put, &b, fmt, ap);

	if (size)
		buf[MIN(b.pos, size - 1)] = '\0';
	return n;
}

int fmt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = fmt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
