#include "cpuinfo.h"
#include "console.h"
#include "fmt.h"
#include "io.h"
#include "str.h"

#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_EDX_MTRR		 (1u << 12)
#define CPUID_EDX_PAT		 (1u << 16)
#define MSR_MTRR_CAP		 0xfe
#define MSR_MTRR_PHYS_BASE0	 0x200
#define MTRR_MASK_VALID		 (1ull << 11)
#define MAX_CACHE_LEVELS	 8

static const uint32_t fixed_mtrrs[] = {0x250, 0x258, 0x259, 0x268, 0x269, 0x26a,
				       0x26b, 0x26c, 0x26d, 0x26e, 0x26f};

static uint32_t max_ext_leaf(void)
{
	uint32_t a, b, c, d;

	cpuid(0x80000000, 0, &a, &b, &c, &d);
	return a;
}

static bool amd(void)
{
	uint32_t a, b, c, d;

	cpuid(0, 0, &a, &b, &c, &d);
	return b == 0x68747541; /* "Auth"enticAMD */
}

bool cpuinfo_has_mtrr(void)
{
	uint32_t a, b, c, d;

	cpuid(1, 0, &a, &b, &c, &d);
	return d & CPUID_EDX_MTRR;
}

static void report_brand(struct guest *g, uint32_t max_ext)
{
	char brand[49] = {0}, esc[49 * 4 + 1];
	size_t start = 0;

	if (max_ext < 0x80000004) {
		report_info(g, "cpu.brand=none");
		return;
	}
	for (uint32_t i = 0; i < 3; i++) {
		uint32_t r[4];

		cpuid(0x80000002 + i, 0, &r[0], &r[1], &r[2], &r[3]);
		memcpy(brand + 16 * i, r, sizeof(r));
	}
	/* Linux trims blanks the same way (Intel pads the string on the left). */
	while (brand[start] == ' ')
		start++;
	for (size_t end = strlen(brand); end > start && brand[end - 1] == ' '; end--)
		brand[end - 1] = '\0';
	con_escape(esc, sizeof(esc), brand + start);
	report_info(g, "cpu.brand=%s", brand[start] ? esc : "none");
}

static void report_caches(struct guest *g, uint32_t max_ext)
{
	uint32_t leaf = 4, max, a, b, c, d;
	static const char type[] = "?DIU";

	cpuid(0, 0, &max, &b, &c, &d);
	if (amd()) {
		if (max_ext >= 0x80000005) {
			cpuid(0x80000005, 0, &a, &b, &c, &d);
			report_info(g, "cpu.l1=0x%x,0x%x", c, d);
		}
		if (max_ext >= 0x80000006) {
			cpuid(0x80000006, 0, &a, &b, &c, &d);
			report_info(g, "cpu.l2=0x%x,0x%x", c, d);
		}
		if (max_ext < 0x8000001d)
			return;
		leaf = 0x8000001d;
	} else if (max < 4) {
		return;
	}
	for (uint32_t i = 0; i < MAX_CACHE_LEVELS; i++) {
		uint64_t size;

		cpuid(leaf, i, &a, &b, &c, &d);
		if (!(a & 0x1f))
			break;
		/* ways * partitions * line size * sets */
		size = (uint64_t)((b >> 22) + 1) * (((b >> 12) & 0x3ff) + 1) * ((b & 0xfff) + 1) *
		       ((uint64_t)c + 1);
		report_info(g, "cache.%u=L%u%c,%lu,%u", i, (a >> 5) & 7, type[(a & 0x1f) & 3], size,
			    ((a >> 14) & 0xfff) + 1);
	}
}

static void report_mtrrs(struct guest *g)
{
	char fixed[sizeof(fixed_mtrrs) / sizeof(fixed_mtrrs[0]) * 19 + 1];
	uint64_t cap = rdmsr(MSR_MTRR_CAP);
	size_t pos = 0;

	report_info(g, "mtrr.cap=0x%lx", cap);
	report_info(g, "mtrr.def_type=0x%lx", rdmsr(MSR_MTRR_DEF_TYPE));
	for (size_t i = 0; i < sizeof(fixed_mtrrs) / sizeof(fixed_mtrrs[0]); i++)
		pos += (size_t)fmt_snprintf(fixed + pos, sizeof(fixed) - pos, "%s0x%lx",
					    i ? "," : "", rdmsr(fixed_mtrrs[i]));
	report_info(g, "mtrr.fixed=%s", fixed);
	for (uint32_t i = 0; i < (cap & 0xff); i++) {
		uint64_t base = rdmsr(MSR_MTRR_PHYS_BASE0 + 2 * i);
		uint64_t mask = rdmsr(MSR_MTRR_PHYS_BASE0 + 2 * i + 1);

		if (mask & MTRR_MASK_VALID)
			report_info(g, "mtrr.var.%u=0x%lx,0x%lx", i, base, mask);
	}
}

void cpuinfo_report(struct guest *g)
{
	uint32_t max_ext = max_ext_leaf(), a, b, c, d;

	report_brand(g, max_ext);
	cpuid(1, 0, &a, &b, &c, &d);
	report_info(g, "cpu.tsc_deadline=%u", !!(c & CPUID_1_ECX_TSC_DEADLINE));
	report_info(g, "cpu.mtrr=%u", !!(d & CPUID_EDX_MTRR));
	report_info(g, "cpu.pat=%u", !!(d & CPUID_EDX_PAT));
	if (max_ext >= 0x80000001) {
		cpuid(0x80000001, 0, &a, &b, &c, &d);
		report_info(g, "cpu.ext_mtrr=%u", !!(d & CPUID_EDX_MTRR));
		report_info(g, "cpu.ext_pat=%u", !!(d & CPUID_EDX_PAT));
	}
	report_caches(g, max_ext);
	if (cpuinfo_has_mtrr())
		report_mtrrs(g);
}
